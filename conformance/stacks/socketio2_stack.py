"""Socket.IO 2 / Engine.IO 3: npm socket.io 2.5.1 and socket.io-client 2.5.0 (`conformance/socketio-node`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .harness import Config, parse_json_event

__all__ = ["STACK", "NODE_DIR"]

NODE_DIR = Path(__file__).resolve().parent.parent / "socketio-node"


class SocketIO2Stack:
    key = "socketio-2"
    stack = "socket.io-2.5/engine.io-3"
    library = "socket.io 2.5.1 + socket.io-client 2.5.0 (npm, Node 20)"
    preset = "stacks/socketio-2"
    rollouts = ("rollouts/socketio-2-ping-60",)
    # Engine.IO 3 takes milliseconds; 0.06 keeps the 5 s pingTimeout at 300 ms, well above the
    # loopback round trip even on a loaded machine.
    scale = 0.06
    # Frozen control: the server's timer is reset at open and at every ping, and fires
    # pingInterval + pingTimeout later. Tolerance: -1 / +2 model s (pipe and timer latency).
    def tolerance_for(self, config: Config) -> tuple[float, float]:
        return (1.0, 2.0)

    def missing(self) -> str | None:
        if shutil.which("node") is None:
            return "Node.js 20 (apt-get install nodejs npm)"
        if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
            return f"the npm packages of {NODE_DIR} (cd {NODE_DIR} && npm ci)"
        return None

    def start_server(self, h, name: str, port: int, config: Config):
        argv = ["node", str(NODE_DIR / "peer.js"), "server", "--port", str(port),
                "--interval", str(round(config.interval * self.scale * 1000)),
                "--timeout", str(round(config.timeout * self.scale * 1000))]
        return h.ps.start(name, argv, cwd=NODE_DIR, ready_line='"ev":"listening"', timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = ["node", str(NODE_DIR / "peer.js"), "client", "--ports", ",".join(map(str, ports)),
                "--retry", str(round(h.params_retry * self.scale * 1000))]
        return h.ps.start(name, argv, cwd=NODE_DIR)

    def parse(self, proc: str, text: str) -> dict | None:
        return parse_json_event(text)


STACK = SocketIO2Stack()
