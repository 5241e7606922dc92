"""Drive a stored trace through a real Faye fleet and match what the real stack does against it.

Theory of operation. A trace's steps are of two sorts:

- *driven* steps are the adversary's and the environment's: a server's loss
  and return (the switchboard), a load change (the adjuster: the server's
  control endpoint sets its one T and I), a publish, a GC sweep, a client's
  crash (its process killed) or cut. The harness does them at model time t,
  i.e. at wall time ``origin + (t + offset) x scale``.
- *observed* steps are the clients' and servers' own: a re-handshake, a held
  connect answered, a connect arriving and held, a socket dropped, a session
  reaped. The real processes do them on their own timers; the harness waits
  for the matching event in their logs and accepts it within ``tolerance``
  model seconds of the time the trace says.

``offset`` is re-set at every observed step to how early or late the real
event came, so that a driven step keeps its distance to the client step it
follows (the model's RTT is a range; the real one is ~0). Driven steps are
applied ``LEAD`` model seconds early, so that they precede, as in the trace,
the client steps of the same instant. Before each driven step, every
session's age is read from Redis and compared with the model's.

The published engine's publish path races the server that holds an expired
subscriber's socket (the delete against that server's flush). A trace says
which order it took; for the delete-first order the harness freezes the
holder (SIGSTOP) until the delete is done, as a lagging event loop would.

Which server a re-handshake lands on is the model's choice: the switchboard
routes the client there as soon as its socket drops.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from stormcheck.traces.itf import plain_integers

from . import time_unit_refusal
from .faye_fleet import Event, Fleet

__all__ = ["LEAD", "Step", "TraceRun", "Unexpressible", "drive", "load_trace", "refusal", "tolerance"]

LEAD = 1.5  # model seconds a driven step is applied early (see module docstring)
POLL = 0.01  # wall seconds between looks at the logs
AGE_SETTLE = 0.1  # wall seconds to let a logged connect's ping reach Redis before its age is judged
STAMP = 0.001  # wall seconds: the resolution of the real processes' log stamps
SETTLE = 0.05  # wall seconds a stalled holder stays frozen after the publisher's delete went out
STALL_MAX = 2.0  # wall seconds a holder is frozen at the most
DRIVEN = {"lose", "restore", "load", "publish", "gc", "crash", "cut"}
OBSERVED = {"reconnect", "reply", "arrive"}
SUPPORTED_DESIGNS = {"off", "per-server", "fleet-wide"}


class Unexpressible(ValueError):
    """A trace the real Faye stack has no knob for; the message says why."""


def tolerance(config: dict) -> float:
    """How far (model seconds) a real client step may be from the trace's: the RTT range, plus 2 s."""
    rtt = config.get("protocol", {}).get("rtt", [0, 0])
    return float(max(rtt) - min(rtt) + 2)


def load_trace(path: Path) -> dict:
    """Read an ITF trace written by ``stormcheck check``; ValueError names what is wrong."""
    try:  # integers as plain numbers, whichever way the trace wrote them (ADR-015 now: "#bigint")
        doc = plain_integers(json.loads(Path(path).read_text()))
    except RecursionError:
        raise ValueError(f"trace {path}: its JSON is nested too deeply to read") from None
    except OSError as exc:
        raise ValueError(f"trace {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"trace {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or "#meta" not in doc or not isinstance(doc.get("states"), list) \
            or len(doc["states"]) < 2 or "scenario_config" not in doc["#meta"]:
        raise ValueError(f"trace {path}: not a stormcheck ITF trace (needs #meta.scenario_config and states)")
    return doc


def refusal(doc: dict) -> str | None:
    """Why the real Faye stack cannot express this trace, or None when it can."""
    meta, config = doc["#meta"], doc["#meta"]["scenario_config"]
    if (why := time_unit_refusal(config)) is not None:
        return why
    design = meta.get("design")
    if design not in SUPPORTED_DESIGNS:
        return (f"design {design!r}: Faye has one timeout per process, read by advice, hold and every reaper; "
                f"it cannot stage a change or judge a session by a timeout of its own "
                f"(conform drives {', '.join(sorted(SUPPORTED_DESIGNS))})")
    for table in ("heartbeat", "rollout"):
        if table in config:
            return f"[{table}] table: the trace is not of the Faye stack (conform drives Faye + faye-redis)"
    if config.get("protocol", {}).get("skew"):
        return "[protocol] skew: the real servers share one clock on loopback; clock skew has no knob"
    if (config.get("protocol", {}).get("publish_multiplier", 1.6), config.get("protocol", {}).get(
            "gc_multiplier", 2.0)) != (1.6, 2.0):
        return "[protocol] publish_multiplier/gc_multiplier: faye-redis fixes them at 1.6 and 2"
    for i, s in enumerate(doc["states"]):
        kind = s["action"]["kind"]
        if i and kind != "tick" and kind not in DRIVEN | OBSERVED:
            return f"step {i}: action {kind!r} has no counterpart in the real stack"
        for e in s.get("events", []):
            if e.get("event") == "Adjusted" and e.get("what") != "both":
                return (f"step {i}: {e.get('what')!r} change on s{e.get('server')}: Faye's advice and reapers "
                        f"read one field, they cannot change apart")
    for c, client in enumerate(doc["states"][0]["clients"]):
        if client["phase"] != "held":
            return f"initial state: c{c} is {client['phase']!r}; conform starts every client held by a server"
    return None


@dataclass
class Step:
    """One trace step and what the real stack showed for it."""

    index: int
    at: float  # model time in the trace
    kind: str
    model: list[str]
    real: list[str] = field(default_factory=list)
    ok: bool = True
    why: str = ""


@dataclass
class TraceRun:
    """The outcome of driving one trace."""

    trace: str
    engine: str
    scale: float
    tolerance: float
    steps: list[Step]
    finding: str  # the trace's property and verdict
    reproduced: bool  # every step matched and the finding happened on the real stack
    divergence: Step | None
    wall_seconds: float
    ages: list[dict] = field(default_factory=list)


def _describe(e: dict) -> str:
    return e["event"] + " " + ", ".join(f"{k}={v}" for k, v in e.items() if k != "event")


class _Driver:
    def __init__(self, doc: dict, fleet: Fleet, tol: float) -> None:
        self.doc, self.fleet, self.tol = doc, fleet, tol
        self.states = doc["states"]
        self.offset = 0.0
        self.cursor = {}  # who -> index into that process's events already consumed
        self.ids: dict[str, str] = {}  # client -> its current Faye client id
        self.seq = 0
        self.ages: list[dict] = []
        self.floor = float("-inf")  # model time before which no event can match a later step

    # -- setup --------------------------------------------------------------
    def start(self) -> None:
        init = self.states[0]
        after_drop = self.doc["#meta"]["scenario_config"].get("client", {}).get("after_drop", "rehandshake")
        for c, client in enumerate(init["clients"]):
            self.fleet.start_client(f"c{c}", f"s{client['server']}", after_drop=after_drop)
        self.fleet.origin = time.time()
        for c, client in enumerate(init["clients"]):  # t=0: each client's connect is held
            e = self._await(lambda e, c=c, s=client["server"]: e.who == f"s{s}" and e.ev == "connect"
                            and self._is_new_id(f"c{c}", e), deadline=30.0 / self.fleet.scale, what="first connect")
            if e is None:
                raise RuntimeError(f"c{c} never held its first connect on s{client['server']}")
        self.fleet.origin = time.time()
        self.floor = 0.0

    # -- matching helpers -------------------------------------------------------
    def _is_new_id(self, client: str, e: Event) -> bool:
        cid = e.data.get("client")
        for ce in self.fleet.events():
            if ce.who == client and ce.ev == "reply" and ce.data.get("channel") == "/meta/handshake" \
                    and ce.data.get("id") == cid:
                if self.ids.get(client) != cid:
                    self.ids[client] = cid
                    return True
        return False

    def _await(self, match, deadline: float, what: str) -> Event | None:
        """The first unconsumed event satisfying `match` before model time `deadline`, or None."""
        while True:
            for e in self.fleet.events():
                key = (e.who, e.data.get("t"), e.ev, json.dumps(e.data, sort_keys=True))
                # Node stamps its lines in whole milliseconds (Date.now()), so a reply logged within
                # a millisecond of the floor can carry a stamp just below it.
                if key in self.cursor or e.at < self.floor - STAMP / self.fleet.scale:
                    continue
                if match(e):
                    self.cursor[key] = True
                    self.floor = max(self.floor, e.at)
                    return e
            if self.fleet.model_time() > deadline:
                return None
            time.sleep(POLL)

    def _recent(self, who: str, since: float) -> list[str]:
        """Every logged event of `who` since model time `since`, matched or not (for a divergence's report)."""
        return [f"{e}  (seen)" for e in self.fleet.events() if e.who == who and e.at >= since]

    def _client_events(self, client: str, ev: str, **fields):
        def match(e: Event) -> bool:
            return e.who == client and e.ev == ev and all(e.data.get(k) == v for k, v in fields.items())
        return match

    # -- steps --------------------------------------------------------------
    def run_step(self, i: int) -> Step:
        s = self.states[i]
        kind, act = s["action"]["kind"], s["action"]
        step = Step(i, s["now"], kind, [_describe(e) for e in s["events"]])
        if kind == "tick":
            return step
        if kind in DRIVEN:
            self._wait_until(s["now"] - LEAD)
            self._check_ages(i, step)
            self._drive(kind, act, s, step)
        else:
            self._observe(kind, act, s, step)
        if step.ok:
            self._observe_events(s, step)
        return step

    def _wait_until(self, t: float) -> None:
        while self.fleet.model_time() < t + self.offset:
            time.sleep(POLL)

    def _check_ages(self, i: int, step: Step) -> None:
        ages = self._ages(i)
        if any(self._off(model, got) for _, model, got in ages):
            # The server logs a connect as it arrives, before its engine's ping reaches Redis: a
            # step observed by that log line can be read back from Redis a moment too soon.
            time.sleep(AGE_SETTLE)
            ages = self._ages(i)
        for c, model, got in ages:
            self.ages.append({"step": i, "client": f"c{c}", "model": model,
                              "real": None if got is None else round(got, 1)})
            if model is not None or got is not None:
                shown = "none" if got is None else f"{got + LEAD:.1f}"
                step.real.append(f"Redis: c{c}'s session age {shown} at the step (model {model})")
            if self._off(model, got):
                step.ok, step.why = False, f"c{c}'s session age in Redis is {got:.1f}, the model's {model}"

    def _ages(self, i: int) -> list[tuple[int, int | None, float | None]]:
        """Each client's session age before step `i`: (client, the model's, Redis's now)."""
        real = self.fleet.session_ages()
        out = []
        for c, client in enumerate(self.states[i - 1]["clients"]):
            cid = self.ids.get(f"c{c}")
            out.append((c, client["session"]["age"] if client["session"] else None, real.get(cid) if cid else None))
        return out

    def _off(self, model: int | None, got: float | None) -> bool:
        """A real age further from the model's than the tolerance (the step is applied LEAD early)."""
        return model is not None and got is not None and abs(got + LEAD - model) > self.tol

    def _drive(self, kind: str, act: dict, s: dict, step: Step) -> None:
        f, server = self.fleet, f"s{act['server']}"
        self.floor = max(self.floor, f.model_time())
        if kind == "lose":
            f.switchboard.lose_server(server)
        elif kind == "restore":
            f.switchboard.restore_server(server)
        elif kind == "load":
            for e in s["events"]:
                if e["event"] == "Adjusted":
                    f.set_advice(f"s{e['server']}", e["timeout"], e["interval"])
        elif kind == "publish":
            self.seq += 1
            self._publish(server, s, step)
        elif kind == "gc":
            f.sweep(server)
        elif kind == "crash":
            f.kill_client(f"c{act['client']}")
        elif kind == "cut":
            f.switchboard.cut_client(f"c{act['client']}")
        step.real.append(f"t={f.model_time():7.1f}  harness: {kind} {server if act['server'] >= 0 else ''}")
        self._route_after_drops(step.index)

    def _publish(self, server: str, s: dict, step: Step) -> None:
        """Publish; where the trace has the delete beat a holder's flush, hold that server back.

        Each holder stays frozen until the publisher has logged its expiry
        check of the holder's subscriber (the delete is sent just before that
        log line), plus ``SETTLE`` wall seconds, and at most ``STALL_MAX``.
        """
        racing = [e for e in s["events"] if e["event"] == "QueueDropped" and e.get("lost", True)
                  and e.get("holder", -1) >= 0]
        holders = sorted({f"s{e['holder']}" for e in racing})
        with self.fleet.stalled(holders):
            self.fleet.publish(server, self.seq)
            give_up = time.monotonic() + STALL_MAX
            for e in racing:
                cid = self.ids.get(f"c{e['client']}")
                while time.monotonic() < give_up and not any(
                        ev.who == server and ev.ev == "expired" and ev.data.get("client") == cid
                        for ev in self.fleet.events()):
                    time.sleep(POLL)
            if holders:
                time.sleep(SETTLE)
        if holders:
            step.real.append(f"harness: {', '.join(holders)} held back (SIGSTOP) until {server}'s delete "
                             f"was done: the race's delete-first order")

    def _route_after_drops(self, i: int) -> None:
        """A client whose socket dropped is routed to where its next re-handshake lands in the trace."""
        for e in self.states[i]["events"]:
            if e["event"] == "Dropped":
                nxt = next((t["action"]["server"] for t in self.states[i + 1:]
                            if t["action"]["kind"] == "reconnect" and t["action"]["client"] == e["client"]), None)
                if nxt is not None:
                    self.fleet.switchboard.route(f"c{e['client']}", f"s{nxt}")

    def _observe(self, kind: str, act: dict, s: dict, step: Step) -> None:
        client = f"c{act['client']}"
        lo, hi = s["now"] - self.tol, s["now"] + self.tol
        if kind == "reconnect":
            server = f"s{act['server']}"
            match = lambda e: e.who == server and e.ev == "connect" and self._is_new_id(client, e)  # noqa: E731
        elif kind == "arrive":
            server = f"s{s['clients'][act['client']]['server']}"
            match = lambda e: e.who == server and e.ev == "connect" and e.data.get("client") == self.ids.get(client)  # noqa: E731
        else:  # reply
            match = lambda e: e.who == client and e.ev == "reply" and e.data.get("channel") == "/meta/connect"  # noqa: E731
        e = self._await(match, hi + self.offset, kind)
        if e is None:
            step.ok, step.why = False, f"no real {kind} of {client} by t={hi:.0f} (+{self.offset:.1f})"
            return
        step.real.append(str(e))
        if e.at - self.offset < lo - 1e-9:
            step.ok, step.why = False, f"real {kind} at t={e.at:.1f}, before the window [{lo:.0f}, {hi:.0f}]"
            return
        self.offset = e.at - s["now"]
        self._check_advice(s, e, step)

    def _check_advice(self, s: dict, e: Event, step: Step) -> None:
        for me in s["events"]:
            if me["event"] == "Replied":
                adv = e.data.get("advice") or {}
                want = (round(me["timeout"] * self.fleet.scale * 1000), round(me["interval"] * self.fleet.scale * 1000))
                if (adv.get("timeout"), adv.get("interval")) != want:
                    step.ok, step.why = False, f"real advice {adv}, the model's T={me['timeout']} I={me['interval']}"
            if me["event"] == "Refreshed":
                hold = e.data.get("hold_s", 0) / self.fleet.scale
                if abs(hold - me["hold"]) > 0.5:
                    step.ok, step.why = False, f"real hold {hold:.1f} s, the model's {me['hold']}"

    def _observe_lost(self, me: dict, client: str, hi: float, step: Step) -> None:
        """The published engine's publish path: the subscriber judged expired, the message never arrives."""
        cid, seq = self.ids.get(client), self.seq
        e = self._await(lambda e: e.ev == "expired" and e.data.get("client") == cid, hi, "queue drop")
        if e is None or e.who != f"s{me['server']}":
            step.ok, step.why = False, f"s{me['server']}'s publish path did not judge {client} expired"
            return
        step.real.append(str(e) + f"  (age {e.data['age_ms'] / 1000 / self.fleet.scale:.1f})")
        got = self._await(lambda e: e.who == client and e.ev == "message" and e.data.get("seq") == seq,
                          hi + self.tol, "message")
        if me.get("lost", True):
            if got is not None:
                step.ok, step.why = False, f"{client} received message {seq} after all: {got}"
            else:
                step.real.append(f"{client} never received message {seq} (waited to t={hi + self.tol:.0f})")
        elif got is None:  # the trace has the holder's flush win the race
            step.ok, step.why = False, f"{client} never received message {seq}, which s{me['holder']} flushes first"
        else:
            step.real.append(str(got))

    def _max_interval(self) -> float:
        return max([e["interval"] for st in self.states for e in st["events"] if "interval" in e] or [0])

    def _observe_events(self, s: dict, step: Step) -> None:
        """The step's reaps, refusals and drops must show in the real logs."""
        hi = s["now"] + self.tol + self.offset
        for me in s["events"]:
            client = f"c{me.get('client')}"
            if me["event"] == "Reaped":
                cid = self.ids.get(client)
                e = self._await(lambda e: e.ev == "destroy" and e.data.get("client") == cid, hi, "reap")
                if e is None or e.data.get("path") != me["path"] or e.who != f"s{me['server']}":
                    step.ok = False
                    step.why = f"{client}'s session was not reaped by s{me['server']}'s {me['path']} path"
                    if e is not None:
                        step.why += f" (real: {e.who} {e.data.get('path')})"
                else:
                    step.real.append(str(e) + f"  (age {e.data['age_ms'] / 1000 / self.fleet.scale:.1f})")
            elif me["event"] == "QueueDropped":
                self._observe_lost(me, client, hi, step)
            elif me["event"] == "Dropped":
                # A reaped session's socket is closed by the holding server; when the close races
                # the end of a hold, the client learns it from a 401 or re-handshakes instead.
                # If the hold had just ended, no socket is closed: the client learns at its next
                # connect, one advised interval later (a 401), so the window grows by that interval.
                reaped = me["reason"] == "session reaped"
                gone = {"down", "401"} if reaped else {"down"}
                e = self._await(lambda e: e.who == client and (e.ev in gone or (
                    reaped and e.ev == "send" and e.data.get("channel") == "/meta/handshake")),
                    hi + (self._max_interval() if reaped else 0), "drop")
                if e is None:
                    step.ok, step.why = False, f"{client}'s socket did not drop"
                    step.real.extend(self._recent(client, s["now"] - 2 + self.offset))
                else:
                    step.real.append(str(e))
            elif me["event"] == "Refused":
                e = self._await(self._client_events(client, "401"), hi, "401")
                if e is None:
                    step.ok, step.why = False, f"{client} got no 401"
                else:
                    step.real.append(str(e))
            if not step.ok:
                return


def drive(doc: dict, path: str, engine: str, scale: float, progress=None) -> TraceRun:
    """Drive trace `doc` through a fresh real fleet; the caller checked :func:`refusal` first."""
    meta, config = doc["#meta"], doc["#meta"]["scenario_config"]
    tol = tolerance(config)
    proto = config.get("protocol", {})
    started = time.monotonic()
    steps: list[Step] = []
    with Fleet(servers=config["topology"]["servers"], engine=engine, scale=scale,
               timeout=proto.get("timeout", 45), interval=proto.get("interval", 1), retry=proto.get("retry", 5)) as fleet:
        d = _Driver(doc, fleet, tol)
        d.start()
        for i in range(1, len(doc["states"])):
            step = d.run_step(i)
            steps.append(step)
            if progress and step.kind != "tick":
                progress(step)
            if not step.ok:
                break
    divergence = next((s for s in steps if not s.ok), None)
    finding = f"{meta.get('property')} {meta.get('verdict')}"
    reproduced = divergence is None and len(steps) == len(doc["states"]) - 1
    return TraceRun(path, engine, scale, tol, steps, finding, reproduced, divergence,
                    time.monotonic() - started, d.ages)
