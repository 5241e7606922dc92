"""A real Faye fleet on loopback: one Redis, N Faye servers, M stock Faye clients, one switchboard.

Times are scaled: a model second is ``scale`` wall seconds (0.1 by default),
so a server advised T=45 runs with a Faye timeout of 4.5 s. Every process logs
one JSON event per line (see ``conformance/faye/server.js`` and ``client.js``);
:meth:`Fleet.events` merges them in time order as :class:`Event` values whose
``at`` is in model seconds since the run's origin.

A missing component (redis-server, node, the Node packages) raises
:class:`StackMissing`, whose message says what to install; the Node packages
are installed with ``npm ci`` from the committed lockfile when npm is there.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .procs import LOOPBACK, Processes, StartError, free_port
from .switchboard import Switchboard

__all__ = ["NODE_DIR", "CHANNEL", "Event", "Fleet", "StackMissing", "ensure_stack", "missing_components"]

NODE_DIR = Path(__file__).resolve().parent / "faye"
CHANNEL = "/room"
NEVER_GC = 1e6  # seconds: faye-redis's own GC timer kept out of a driven run (sweeps are trace steps)


class StackMissing(RuntimeError):
    """A component of the real stack is not installed; the message says what to install."""


def missing_components() -> list[str]:
    """What is missing to run the fleet, each as an install hint (empty when all is there)."""
    hints = []
    if not shutil.which("redis-server"):
        hints.append("redis-server (apt-get install redis-server)")
    if not shutil.which("node"):
        hints.append("node >= 18 (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "faye-redis").is_dir():
        hints.append(f"the Node packages (cd {NODE_DIR} && npm ci)")
    return hints


def ensure_stack(install: bool = True) -> None:
    """Raise :class:`StackMissing` unless the stack can start; runs ``npm ci`` first when it can."""
    if install and shutil.which("npm") and not (NODE_DIR / "node_modules" / "faye-redis").is_dir():
        try:
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                           timeout=300, check=True)
        except (subprocess.SubprocessError, OSError):
            pass  # reported below with the command to run by hand
    hints = missing_components()
    if hints:
        raise StackMissing("the real Faye stack cannot start; install " + ", ".join(hints))


@dataclass(frozen=True)
class Event:
    """One logged event of a real process; ``at`` in model seconds since the origin."""

    at: float
    who: str  # s0.. or c0..
    ev: str
    data: dict = field(compare=False)

    def __str__(self) -> str:
        keep = {k: round(v, 3) if isinstance(v, float) else v for k, v in self.data.items()
                if k not in ("t", "ev", "server", "client") and v is not None}  # times in wall s, as logged
        return f"t={self.at:7.1f}  {self.who} {self.ev} {json.dumps(keep, sort_keys=True)}"


class Fleet:
    """Start with ``with Fleet(servers=3, engine="published", scale=0.1, timeout=45, interval=1) as f``."""

    def __init__(self, servers: int, engine: str, scale: float, timeout: float, interval: float,
                 retry: float = 5, rtt: float = 0.0, gc_period: float | None = None,
                 log_dir: Path | None = None) -> None:
        self.n_servers, self.engine, self.scale = servers, engine, scale
        self.timeout, self.interval, self.retry, self.rtt = timeout, interval, retry, rtt
        self.gc_period = gc_period
        self._tmp = None if log_dir else tempfile.TemporaryDirectory(prefix="stormcheck-conform-")
        self.log_dir = Path(log_dir or self._tmp.name)
        self.procs = Processes(self.log_dir)
        self.ports: dict[str, tuple[int, int]] = {}  # server -> (bayeux port, control port)
        self.clients: dict[str, object] = {}
        self.servers: dict[str, object] = {}
        self.origin = time.time()  # wall time of model t=0 (set by the driver)
        self.switchboard: Switchboard | None = None

    # -- lifecycle ------------------------------------------------------
    def __enter__(self) -> "Fleet":
        ensure_stack()
        self.procs.__enter__()
        try:
            self._start_redis()
            for i in range(self.n_servers):
                self._start_server(f"s{i}")
            self.switchboard = Switchboard({s: p[0] for s, p in self.ports.items()}, self.rtt * self.scale)
            self.switchboard.__enter__()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.switchboard:
                self.switchboard.close()
        finally:
            self.procs.__exit__(*exc)
            if self._tmp:
                self._tmp.cleanup()

    def _start_redis(self) -> None:
        self.redis_port = free_port()
        self.procs.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", LOOPBACK,
                                   "--save", "", "--appendonly", "no"],
                         ready_line="Ready to accept connections", ready_port=self.redis_port, timeout=10)

    def _start_server(self, name: str) -> None:
        port, control = free_port(), free_port()
        gc = self.gc_period * self.scale if self.gc_period else NEVER_GC
        self.servers[name] = self.procs.start(name, ["node", str(NODE_DIR / "server.js"), "--name", name, "--port", str(port),
                                "--control", str(control), "--redis", str(self.redis_port),
                                "--engine", self.engine, "--timeout", str(self.timeout * self.scale),
                                "--interval", str(self.interval * self.scale), "--gc", str(gc)],
                         ready_line='"ev":"ready"', timeout=15)
        self.ports[name] = (port, control)

    def start_client(self, name: str, server: str, after_drop: str = "same-id") -> None:
        """Start a stock Faye client behind its own front port, routed to `server`."""
        front = self.switchboard.add_client(name, server)
        self.clients[name] = self.procs.start(
            name, ["node", str(NODE_DIR / "client.js"), "--name", name,
                   "--url", f"http://{LOOPBACK}:{front}/bayeux", "--channel", CHANNEL,
                   "--retry", str(self.retry * self.scale), "--after-drop", after_drop],
            ready_line='"ev":"ready"', timeout=15)

    @contextmanager
    def stalled(self, servers: Iterable[str]) -> Iterator[None]:
        """Freeze `servers` (SIGSTOP) for the block: their event loops lag, as a loaded server's does.

        The published engine's publish path races the server holding an
        expired subscriber's socket (`model.rules_reapers._publishes`); a trace
        whose publish takes the delete-first order is driven by holding that
        server back until the delete is done. SIGCONT always follows.
        """
        procs = [self.servers[s] for s in servers]
        for p in procs:
            p.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for p in procs:
                p.signal(signal.SIGCONT)

    def kill_client(self, name: str) -> None:
        """A client crash: its process is killed."""
        self.clients[name].kill()

    # -- control endpoints ------------------------------------------------
    def control(self, server: str, path: str, **query) -> dict:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        url = f"http://{LOOPBACK}:{self.ports[server][1]}/{path}" + (f"?{qs}" if qs else "")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST" if path != "sessions" else "GET"),
                                        timeout=5) as r:
                return json.loads(r.read())
        except OSError as exc:
            raise StartError(f"{server}'s control endpoint did not answer {path}: {exc}") from None

    def set_advice(self, server: str, timeout: float, interval: float) -> None:
        self.control(server, "advice", timeout=timeout * self.scale, interval=interval * self.scale)

    def sweep(self, server: str) -> None:
        self.control(server, "gc")

    def publish(self, server: str, seq: int) -> None:
        self.control(server, "publish", channel=CHANNEL, seq=seq)

    def session_ages(self) -> dict[str, float]:
        """Every session's age in model seconds, read from Redis now (through any server)."""
        got = self.control("s0", "sessions")
        return {cid: (got["now"] - score) / 1000 / self.scale for cid, score in got["scores"].items()}

    # -- observation ------------------------------------------------------
    def model_time(self) -> float:
        return (time.time() - self.origin) / self.scale

    def events(self) -> list[Event]:
        """Every event logged so far by every server and client, in time order."""
        out = []
        for proc in self.procs.procs:
            if proc.name == "redis":
                continue
            for line in proc.snapshot():
                try:
                    d = json.loads(line.text)
                except ValueError:
                    continue
                if isinstance(d, dict) and "ev" in d:
                    out.append(Event((d["t"] / 1000 - self.origin) / self.scale, proc.name, d["ev"], d))
        out.sort(key=lambda e: e.at)
        return out
