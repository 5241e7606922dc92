"""MQTT 3.1.1: the Debian `mosquitto` broker and a paho-mqtt 2.x client (`peer_mqtt`).

Each server of the scenario is one mosquitto process on a free loopback port,
with a config file written to the run's temporary directory (no persistence,
log to stderr, which is unbuffered). Its judge is the keep-alive check (``mosquitto`` 2.0:
disconnects a client silent for 1.5 x its declared K, logging "Client ... has
exceeded timeout, disconnecting."), which is read from that log.
"""

from __future__ import annotations

import re
import shutil
import sys

from .harness import Config, parse_json_event

__all__ = ["STACK"]

PEER = "stormcheck.conformance.stacks.peer_mqtt"
MOSQUITTO = "mosquitto"
_OPEN = re.compile(r"New client connected from \S+ as (\S+) \(.*k(\d+)")
_TIMEOUT = re.compile(r"Client (\S+) has exceeded timeout, disconnecting")
_CLOSED = re.compile(r"Client (\S+) (?:disconnected|closed its connection)")


class MqttStack:
    key = "mqtt"
    stack = "mosquitto-2.0/paho-mqtt-2.1"
    library = "mosquitto 2.0 (Debian) broker + paho-mqtt 2.1.0 (PyPI) client, MQTT 3.1.1"
    preset = "stacks/mqtt"
    rollouts = ("rollouts/mqtt-keepalive-120",)
    # MQTT keep-alives are whole seconds: a model second is 1/30 s (K 60 s -> 2 s, 120 s -> 4 s).
    scale = 1 / 30
    # Frozen control: mosquitto 2.0.11 sweeps keep-alives every 5 s of its whole-second clock
    # (measured here with raw CONNECTs: K=1 -> 4.7 s, K=2 -> 4.0-4.3 s, K=3 -> 9.6 s, K=4 -> 8.9-9.2 s,
    # K=6 -> 14.4 s, K=8 -> 14.0 s), so a silent client is closed at the first sweep past 1.5 x K:
    # in [1.5 K, 1.5 K + 5 s]. Tolerance: -1 s / +5.5 s real, i.e. -30 / +165 model s.
    def tolerance_for(self, config: Config) -> tuple[float, float]:
        return (30.0, 165.0)

    def missing(self) -> str | None:
        if shutil.which(MOSQUITTO) is None and not shutil.os.path.exists("/usr/sbin/mosquitto"):
            return "the mosquitto broker (apt-get install mosquitto)"
        try:
            import paho.mqtt  # noqa: F401
        except ImportError:
            return "paho-mqtt 2.x (pip install paho-mqtt==2.1.0)"
        return None

    def _binary(self) -> str:
        return shutil.which(MOSQUITTO) or "/usr/sbin/mosquitto"

    def keepalive(self, config: Config) -> int:
        k = config.interval * self.scale
        if abs(k - round(k)) > 1e-9 or k < 1:
            raise ValueError(f"MQTT keep-alive {config.interval:g} model s is {k:g} real s at this scale: "
                             "MQTT takes whole seconds (>= 1)")
        return round(k)

    def start_server(self, h, name: str, port: int, config: Config):
        conf = h.dir / f"{name}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "log_dest stderr\nlog_type all\nconnection_messages true\n")
        return h.ps.start(name.replace("server", "broker"), [self._binary(), "-c", str(conf)],
                          ready_port=port, timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = [sys.executable, "-m", PEER, "--ports", ",".join(map(str, ports)),
                "--keepalive", str(self.keepalive(config)), "--retry", f"{h.params_retry * self.scale:g}",
                "--id", name]
        return h.ps.start(name, argv)

    def parse(self, proc: str, text: str) -> dict | None:
        if not proc.startswith("broker"):
            return parse_json_event(text)
        if m := _OPEN.search(text):
            return {"ev": "open", "conn": m.group(1), "keepalive": int(m.group(2))}
        if m := _TIMEOUT.search(text):
            return {"ev": "close", "conn": m.group(1), "judged": True, "why": "exceeded timeout"}
        if m := _CLOSED.search(text):
            return {"ev": "close", "conn": m.group(1), "judged": False, "why": "client closed"}
        return None


STACK = MqttStack()
