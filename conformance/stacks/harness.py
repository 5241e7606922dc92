"""Run a stack's real server and client processes through a scenario, in scaled real time.

Design rules:

- A *stack* (one module per stack, e.g. `websockets_stack`) knows only how to
  start its real server and client (argv), how to read their output into
  events, and its time scale. Everything else lives here, once: the runs, the
  rollout's phases, the verdicts.
- A model second lasts ``stack.scale`` real seconds. Every setting handed to
  a library is scaled the same way; observed times are scaled back.
- Verdicts come from what the processes printed, never from the model: a run
  *violated* when a healthy client's connection was ended by a heartbeat judge
  (on either side; ``judged`` events), and a frozen client is *reaped* when the
  server's judge ended its connection. A close caused by a restart or reload
  is not a judge's doing.
- Every process is started in a `procs.Processes` group and stopped by PID
  when the run ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stormcheck.model.params import Params
from stormcheck.model.rollout import Phase

from ..procs import Processes, Proc, free_port

__all__ = ["Config", "Event", "Outcome", "Harness", "parse_json_event", "server_config"]


@dataclass(frozen=True)
class Config:
    """One side's heartbeat settings in model seconds: T (timeout) and I (interval)."""

    timeout: float
    interval: float


@dataclass(frozen=True)
class Event:
    """One event a process reported, stamped with the monotonic time it was read."""

    at: float
    proc: str
    ev: str
    fields: dict


@dataclass
class Outcome:
    """What one real run showed."""

    real: str  # "holds" | "violated"
    detail: str
    seconds: float  # wall time
    observed: float | None = None  # frozen-client: model seconds from open to the judge's close
    events: list[Event] = field(default_factory=list)


def parse_json_event(text: str) -> dict | None:
    """A peer's JSON event line, or None for any other output (library logs)."""
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def levels(params: Params) -> tuple[Config, Config | None]:
    a = params.levels[0]
    b = params.levels[1] if len(params.levels) > 1 else None
    return Config(a.timeout, a.interval), (Config(b.timeout, b.interval) if b else None)


def server_config(judge: Config, advice: Config) -> Config:
    """A server process running `judge`'s timeout and `advice`'s interval.

    The libraries have one knob for each: the timeout a side waits for its
    peer's answer (the judge) and the interval of the beats it sends or
    advertises (the advice). A restart moving one part keeps the other.
    """
    return Config(judge.timeout, advice.interval)


class Harness:
    """One run's processes and events; ``with Harness(stack) as h: ...``."""

    def __init__(self, stack, params: Params, log_dir: Path | None = None) -> None:
        self.stack = stack
        self.params_retry = params.retry  # model s from a client's drop to its next attempt
        # The idle timeout (model s) of a [[proxy]] judge, for stacks that put a real proxy in front.
        self.proxy_idle = next((j.timeout for j in params.judges if j.side == "proxy"), None)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"stormcheck-{stack.key}-")
        self.dir = Path(self._tmp.name)
        self.ps = Processes(log_dir or self.dir / "logs")
        self.ports: list[int] = []
        self.servers: list[Proc | None] = []
        self.clients: list[Proc] = []
        self._starts: dict[int, int] = {}  # server index -> restarts so far (names its log)
        self.t0 = time.monotonic()

    def __enter__(self) -> "Harness":
        self.ps.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.ps.__exit__(*exc)
        finally:
            self._tmp.cleanup()

    # time -------------------------------------------------------------
    def sleep(self, model_seconds: float) -> None:
        time.sleep(max(0.0, model_seconds) * self.stack.scale)

    def model_seconds(self, real: float) -> float:
        return real / self.stack.scale

    # processes --------------------------------------------------------
    def start_server(self, index: int, config: Config, **extra) -> Proc:
        while len(self.ports) <= index:
            self.ports.append(free_port())
            self.servers.append(None)
        self._starts[index] = self._starts.get(index, -1) + 1
        name = f"server{index}-{self._starts[index]}"
        proc = self.stack.start_server(self, name, self.ports[index], config, **extra)
        self.servers[index] = proc
        return proc

    def stop_server(self, index: int) -> None:
        proc = self.servers[index]
        if proc is not None:
            proc.stop()
            self.servers[index] = None

    def start_client(self, config: Config, ports: list[int] | None = None) -> Proc:
        name = f"client{len(self.clients)}"
        proc = self.stack.start_client(self, name, ports or self.ports, config)
        self.clients.append(proc)
        return proc

    def events(self, proc: Proc | None = None) -> list[Event]:
        out = []
        for p in ([proc] if proc else self.ps.procs):
            for line in p.snapshot():
                fields = self.stack.parse(p.name, line.text)
                if fields is not None:
                    out.append(Event(line.at, p.name, fields["ev"], fields))
        return sorted(out, key=lambda e: e.at)

    def wait_event(self, proc: Proc, ev: str, model_timeout: float, start: float = 0.0, **match) -> Event | None:
        deadline = time.monotonic() + model_timeout * self.stack.scale
        while True:
            for e in self.events(proc):
                if e.at >= start and e.ev == ev and all(e.fields.get(k) == v for k, v in match.items()):
                    return e
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    def judged(self, healthy: list[Proc] | None = None) -> list[Event]:
        """Every close a heartbeat judge made (servers' and the given healthy clients')."""
        procs = [p for p in self.ps.procs if p.name.startswith("server") or p.name.startswith("broker")]
        procs += healthy if healthy is not None else self.clients
        return [e for p in procs for e in self.events(p) if e.ev == "close" and e.fields.get("judged")]

    # verdicts ---------------------------------------------------------
    def verdict(self, what: str) -> Outcome:
        judged = self.judged()
        seconds = time.monotonic() - self.t0
        if judged:
            e = judged[0]
            at = self.model_seconds(e.at - self.t0)
            return Outcome("violated", f"{what}: {e.proc} judged a healthy client's connection at "
                           f"t={at:.0f} model s ({e.fields.get('why', '')!s})", seconds, events=self.events())
        return Outcome("holds", f"{what}: no heartbeat judge dropped the healthy client", seconds,
                       events=self.events())


def freeze(proc: Proc) -> None:
    """Stop a client dead (SIGSTOP): it answers nothing, its sockets stay open."""
    proc.signal(signal.SIGSTOP)


def thaw(proc: Proc) -> None:
    proc.signal(signal.SIGCONT)
