"""Python `websockets` 17.4 (asyncio API): server and client processes (`peer_websockets`)."""

from __future__ import annotations

import sys

from .harness import Config, parse_json_event

__all__ = ["STACK"]

PEER = "stormcheck.conformance.stacks.peer_websockets"


class WebsocketsStack:
    key = "websockets"
    stack = "websockets-17.4"
    library = "websockets 17.4 (PyPI), asyncio server and client"
    preset = "stacks/python-websockets"
    rollouts = ("rollouts/python-websockets-ping-60",)
    # websockets takes float seconds: a model second is 0.05 s (20 s ping_interval -> 1 s).
    scale = 0.05
    # Frozen control: the server's keepalive fires at open + I (sleep) + T (pong wait); pipe
    # latency and close_timeout (0.05 s) add a little. Tolerance: -1 / +3 model s.
    def tolerance_for(self, config: Config) -> tuple[float, float]:
        return (1.0, 3.0)

    def missing(self) -> str | None:
        try:
            import websockets  # noqa: F401
        except ImportError:
            return "Python websockets 17.4 (pip install websockets==17.4, or bin/test's [test] extra)"
        return None

    def _times(self, config: Config) -> list[str]:
        return ["--interval", f"{config.interval * self.scale:g}", "--timeout", f"{config.timeout * self.scale:g}"]

    def start_server(self, h, name: str, port: int, config: Config):
        argv = [sys.executable, "-m", PEER, "server", "--port", str(port), *self._times(config)]
        return h.ps.start(name, argv, ready_line='"ev": "listening"', timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = [sys.executable, "-m", PEER, "client", "--ports", ",".join(map(str, ports)),
                *self._times(config), "--retry", f"{h.params_retry * self.scale:g}"]
        return h.ps.start(name, argv)

    def parse(self, proc: str, text: str) -> dict | None:
        return parse_json_event(text)


STACK = WebsocketsStack()
