"""Socket.IO 4 / Engine.IO 4: python-socketio 5.18 + python-engineio 4.15 (`peer_socketio`)."""

from __future__ import annotations

import signal
import sys

from .harness import Config, parse_json_event

__all__ = ["STACK"]

PEER = "stormcheck.conformance.stacks.peer_socketio"


class SocketIO4Stack:
    key = "socketio-4"
    stack = "python-socketio-5.18/python-engineio-4.15"
    library = "python-socketio 5.18.0 + python-engineio 4.15.1 (PyPI), aiohttp server, asyncio client"
    preset = "stacks/socketio-4"
    rollouts = ("rollouts/socketio-4-ping-60", "rollouts/socketio-4-live-ping-60")
    # Engine.IO advertises pingInterval in whole seconds (int(ping_interval) * 1000), and the
    # client judges by it: 0.04 keeps A's 25 s at exactly 1 s; B's 60 s (2.4 s) is advertised
    # as 2 s, which shortens the client's margin by 0.4 s (10 model s) in B.
    scale = 0.04
    live_signal = signal.SIGUSR1  # peer_socketio: switch the running server to its --live-* settings
    # Frozen control: the server pings at open + I and its service task, waking every
    # ping_timeout / sockets, closes the socket at the first wake past ping + T: the close lies
    # in [I + T, I + 2T]. Tolerance: -1 model s / + T + 3 model s.
    def tolerance_for(self, config: Config) -> tuple[float, float]:
        return (1.0, config.timeout + 3.0)

    def missing(self) -> str | None:
        try:
            import aiohttp  # noqa: F401
            import socketio  # noqa: F401
        except ImportError:
            return ("python-socketio 5.18 and python-engineio 4.15 with aiohttp "
                    "(pip install python-socketio==5.18.0 python-engineio==4.15.1 aiohttp)")
        return None

    def start_server(self, h, name: str, port: int, config: Config, live: Config | None = None):
        argv = [sys.executable, "-m", PEER, "server", "--port", str(port),
                "--interval", f"{config.interval * self.scale:g}", "--timeout", f"{config.timeout * self.scale:g}"]
        if live is not None:
            argv += ["--live-interval", f"{live.interval * self.scale:g}", "--live-timeout", f"{live.timeout * self.scale:g}"]
        return h.ps.start(name, argv, ready_line='"ev": "listening"', timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = [sys.executable, "-m", PEER, "client", "--ports", ",".join(map(str, ports)),
                "--retry", f"{h.params_retry * self.scale:g}"]
        return h.ps.start(name, argv)

    def parse(self, proc: str, text: str) -> dict | None:
        return parse_json_event(text)


STACK = SocketIO4Stack()
