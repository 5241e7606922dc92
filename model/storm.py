"""Storm dynamics: the fleet through a fault, second by second, at any size.

The exhaustive model (`model.fleet`) asks what *can* happen to a few
clients. This module asks what *does* happen to tens of thousands of them
once load, snapshot cost and the adjuster's feedback are in play: whether
the reconnect storm a fault starts dies out or keeps itself going after the
fault is gone (a metastable failure, the second half of the 2015 outage).

The protocol is the model's, not a copy of it
---------------------------------------------
Every protocol decision is taken by `model.fleet`'s own rules, on the same
records (`Client`, `Session`, `Server`):

* a client's own steps (a held heartbeat answered, the next one arriving and
  refreshing its session or refused by the existence check, a reconnect
  through the load balancer) are the rule table's effects
  (``fleet.RULE[kind].apply``) applied to a one-client state: how long a
  server holds a heartbeat (`Params.hold`), whose interval spaces the next
  one (`fleet.reply_level`), what a handshake records in the session
  (`fleet.new_session`), every `[heartbeat]` stack's cycle;
* the reapers' sweeps ask the model's decision functions: whose level a path
  judges by (`fleet.judged_level_of`), which servers judge a session (shared
  or local store, `fleet.judges_of`), the reap age of that level
  (`fleet.reap_age`, from `Params.cutoff`), and the extra judges' cutoffs
  (`Params.judge_age`), for the paths the stack has (`Heartbeat.paths`);
* the tuner's moves (a server's adjuster, a fleet-wide change, its
  propagation deadline, a staged change's reaper and advice halves) are the
  rule table's guards and effects on the servers' records.

The advice levels are not the scenario's: each (T, I) the adjuster computes
from its samples (`model.load`) is added to a level table the run grows, and
the model's functions read that table as `Params.levels`. Whether T/I may move
at all is the model's `Params.load_moves` (a scenario with one load level has
nothing to move between, in every engine).

What the simulation adds is what a state-space search leaves out: how many
clients, how much work each reconnect is, and when. Each choice the model
leaves open it makes one way: the RTT is the scenario's largest (the slow
case is the one that matters); a shared store's GC sweeps once a minute,
servers in turn (Gitter's Redis lock), while a socket's own liveness timer
(a local store) and an extra judge fire at the second their cutoff passes;
every up server publishes every ``publish_every`` seconds; the adjuster
acts every 10 s; a fleet-wide change reaches every server at its
propagation deadline, a staged one as soon as its guard allows. Reconnects
follow the run's policy (`model.policies`) instead of the model's one fixed
delay, and arrive the policy's delay plus the RTT after the drop, as the
model's retry does (`Params.retry_delay`). A reply's round trip is the
RTT, plus, with ``reply_share``, its server's delay behind queued work
(`model.load`): the model's ``reply`` with that value, which the model's own
RTT choices may not include (certification then adds it to them, and says so). Page reloads (``churn_per_hour``)
are not a protocol step: a reloading user abandons the session and
handshakes anew. Nor is a setup given up at the client's deadline
(`model.setup`): the handshake is the model's, then, like a reload, the
client leaves the session it made and reconnects by its policy.

One simulator, two ways of counting
-----------------------------------
Clients that are interchangeable (same server, same session, same phase,
same next event, same retry state) form a *group*. Where the protocol makes
a random choice (which server the load balancer picks, how long a jittered
retry waits, whether a user reloads the page), a group is either

* ``fluid``: split over every outcome in proportion to its probability
  (fractional client counts: the counting abstraction, deterministic, and
  its cost does not grow with the number of clients), or
* ``sampled``: each client draws its own outcome from a seeded RNG (the
  per-client model, for small fleets).

Everything else is the same code, so the two differ only by sampling noise
(`tests/test_storm.py` measures how much).

Time and events
---------------
Whole seconds. Each second: the run's fault acts (`model.faults`: a server
loss starts or ends, a batch restarts, clients hang or return, a server's
capacity drops or comes back); the groups due fire;
reconnects are admitted and handshake; the reapers sweep and the extra
judges fire; backlogs drain; the tuner acts. A reaped or refused client's
socket is closed and it reconnects. A session abandoned by a dropped
socket stays in a shared store until a reaper destroys it (a dead session:
correct to reap); a local one goes with its socket.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..properties.core import NotEncoded
from . import fleet
from .events import Handshake, Reaped
from .faults import FaultRun
from .groups import DEAD, HUNG, _RETRYING, Group as _Group
from .history import Pieces, Recording
from .load import ADJUST_EVERY, SampleWindow, StormError, StormParams
from .params import REAPER_PATHS, Heartbeat, Judge, Level, Params, adjuster_advice
from .state import HELD, RETRY, WAITING, Action, Client, Server, Session, State

if TYPE_CHECKING:  # imported on use, by a simulation: the CLI loads this module for every command
    import numpy as np

__all__ = ["StormParams", "Series", "simulate", "refuse_unsimulated", "unsimulated", "MODES", "StormError",
           "SIMULATED", "UNSIMULATED"]

MODES = ("fluid", "sampled")
GC_EVERY = 60  # a shared store's GC: one sweep a minute, servers in turn


@dataclass
class Series:
    """Per-second time series of one run (numpy arrays, index = second)."""

    reconnects: np.ndarray  # handshakes admitted (page reloads included)
    rejected: np.ndarray  # reconnect attempts turned away by admission control
    reaped_valid: np.ndarray  # sessions of live clients destroyed or refused
    reaped_dead: np.ndarray  # sessions of gone clients destroyed
    latency_ms: np.ndarray  # [t, server] mean of the adjuster's sample window
    backlog_s: np.ndarray  # [t, server]
    timeout: np.ndarray  # [t, server] the T each server advises
    interval: np.ndarray  # [t, server] the I each server advises
    abandoned: np.ndarray | None = None  # setups admitted that second whose clients give up at their deadline
    fault: tuple[int, int, int] = (0, 0, -1)  # (start, end, server); server -1: none, or fleet-wide
    fault_label: str = ""  # the fault in a few words (`model.faults`); empty: the run has none
    meta: dict = field(default_factory=dict)
    history: Recording | None = None  # what certification replays (`simulate(..., record=True)`)


# ------------------------------------------------------------ what it covers

_INSTEAD = "check it with the exhaustive engine (stormcheck check, or --property storm_subsides for the lasso)"

# What the simulation covers, by the model's rule table (`fleet.RULES`): the
# kinds whose effect it applies (in its own time steps, over counts of
# clients) and, for every other kind, the scenario feature that enables it,
# which `refuse_unsimulated` refuses by name. tests/test_rules.py fails when
# a kind is in neither.
SIMULATED = ("reply", "arrive", "reconnect", "restore", "deadline", "publish", "gc", "load", "adopt",
             "adopt_reaper", "adopt_advice", "lose", "crash", "cut", "tick", "expire")
UNSIMULATED = {
    "launch": "a configuration rollout ([rollout])",
    "restart": "a configuration rollout ([rollout])",
    "upgrade": "a configuration rollout ([rollout])",
    "reconfigure": "a configuration rollout ([rollout])",
}


# The generalisations of Faye's model (`Params.extensions`) the simulation
# applies, in the model's own words: every `[heartbeat]` stack's cycle and
# judges, the interval in use as a cutoff's I term, client-side judges and
# proxies. Any other one the model names (a rollout, spacing strikes,
# resumption, the published Faye stack, milliseconds, or one it gains later)
# is refused.
_SIMULATED_FEATURES = frozenset(Params(
    heartbeat=Heartbeat(hold="none", store="local", interval_term="in-use"),
    judges=(Judge("client", "client", "handshake"), Judge("proxy", "proxy", "fixed", timeout=1)),
).extensions())


def unsimulated(params: Params) -> tuple[str, ...]:
    """The rules of `params`' fleet the simulation does not apply, each as the scenario names it."""
    return tuple(f for f in params.extensions() if f not in _SIMULATED_FEATURES)


def refuse_unsimulated(params: Params) -> None:
    """Raise `NotEncoded` for a fleet with rules the simulator does not apply, before it starts."""
    features = unsimulated(params)
    if features:
        raise NotEncoded("storm simulation", "; ".join(features), _INSTEAD)


# ------------------------------------------------------------ advice levels


class _Lazy(dict):
    """A table filled on first use: ``table[key]`` is ``make(key)``, computed once."""

    __slots__ = ("make",)

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


class _Table(Params):
    """`Params` over the levels a run has met so far; reap ages computed per level on first use.

    The model tabulates `reap_ages` for every level at once; a run meets its
    levels one by one (hundreds of them in a long storm), so here each entry
    is `Params.reap_age` of that level, when some rule first reads it.
    """

    @cached_property
    def reap_ages(self):
        return {path: _Lazy(lambda level, path=path: self.reap_age(path, level)) for path in REAPER_PATHS}

    @cached_property
    def reap_ages_in_use(self):
        return {path: _Lazy(lambda level, path=path: _Lazy(lambda j, level=level: self.reap_age(path, level, j)))
                for path in REAPER_PATHS}


class _Levels:
    """The advice levels a run has met: level 0 is the scenario's base; the adjuster adds the others."""

    def __init__(self, params: Params, threshold_ms: int) -> None:
        self.params, self.threshold = params, threshold_ms
        base = params.levels[0]
        self.levels = [base]
        self.index = {(base.timeout, base.interval): 0}
        self.table = self._build()

    def _build(self) -> _Table:
        values = {f.name: getattr(self.params, f.name) for f in dataclasses.fields(Params)}
        # The simulation's load input is its own load model: the table lets
        # it move freely (the scenario's trigger abstracts what is computed here).
        return _Table(**{**values, "levels": tuple(self.levels), "load_trigger": "free"})

    def of(self, avg_ms: float) -> int:
        """The level Gitter's adjuster advises for a mean subscribe latency of `avg_ms`."""
        p = self.params
        advice = adjuster_advice(avg_ms, p.t0, p.i0, self.threshold)
        found = self.index.get(advice)
        if found is None:
            # A whole number of ms with the same advice (`Level.avg_ms` orders
            # levels: the model tells a rise from a fall by it). Boundaries of
            # T and I are over 300 ms apart, so one of floor/ceil is it.
            lo = math.floor(avg_ms)
            ms = lo if adjuster_advice(lo, p.t0, p.i0, self.threshold) == advice else lo + 1
            found = self.index[advice] = len(self.levels)
            self.levels.append(Level(ms, *advice))
            self.table = self._build()
        return found


# ------------------------------------------------------------ groups


class _Sim:
    def __init__(self, params: Params, storm: StormParams, mode: str, seed: int, record: bool = False) -> None:
        if mode not in MODES:
            raise StormError(f"mode {mode!r}: must be one of {', '.join(MODES)}")
        if record and mode != "sampled":
            raise StormError("recording per-client histories needs --mode sampled: fluid clients are fractions")
        refuse_unsimulated(params)
        import numpy as np

        self.p, self.s, self.mode, self.rng = params, storm, mode, np.random.default_rng(seed)
        self.fluid = mode == "fluid"
        self.n_srv = params.servers
        self.rtt = params.rtt_max
        self.levels = _Levels(params, storm.threshold_ms)
        self.moves = params.load_moves
        self.servers = tuple(Server(0, 0, 0, 0, False) for _ in range(self.n_srv))
        self.deadline_at = -1  # a fleet-wide change's propagation deadline (-1: none)
        self.windows = [SampleWindow() for _ in range(self.n_srv)]
        self.backlog = [0.0] * self.n_srv
        self.work = [0.0] * self.n_srv
        self.down_until = [0] * self.n_srv
        self.calendar: dict[int, dict[tuple, _Group]] = {}
        hb = params.heartbeat
        self.local = hb.store == "local"
        self.lingers = not self.local  # an abandoned session stays in a shared store until reaped
        self.paths = tuple(p for p in ("publish", "gc") if p in hb.paths)
        self.source = {p: fleet.judge_source(params, p) for p in self.paths}
        self.in_use = hb.interval_term == "in-use"
        # Reaper path -> bucket -> heap of (key, seq, group). A bucket holds
        # sessions whose cutoff on a given server is one number: those of one
        # holder (a local store: only it judges them) and, where the level
        # comes from the session and the interval term from the judging
        # server, of one level. The key is the session's `base`, or, where
        # the session alone fixes the cutoff, the base plus its reap age
        # (then the heap is ordered by expiry). Stale entries (a group
        # refreshed, merged or reaped since) are skipped when they surface.
        self.index: dict[str, dict[tuple, list]] = {p: {} for p in self.paths}
        self.judge_heaps: list[list] = [[] for _ in params.judges]
        self.seq = 0
        self.gc_turn = 0
        self.loads = [storm.load] * self.n_srv  # each server's load model (a capacity fault changes one)
        self.reply_share = storm.load.reply_share
        self.late_replies, self.latest_reply = 0.0, 0  # replies past the largest RTT, and the latest one
        self.faults = FaultRun(self, storm.fault, storm.fault_at)
        self.fault = self.faults.window
        self.churn_s = storm.churn_per_hour / 3600.0
        self.admitted = [0.0] * self.n_srv
        # Setups abandoned this second, by the clients' retry state: how many, and their histories if recorded.
        self.gave_up: dict[tuple, tuple[float, list]] = {}
        self.left_behind: dict[tuple, _Group] = {}  # the dead sessions they left, by server and session
        self.memo: dict = {}
        self.memo_for: tuple = (None, None)
        # Per-client histories and the servers' moves, for certification
        # (`model.history`); None: not recorded, and nothing below costs.
        self.rec = Recording() if record else None

    # ------------------------------------------------------------ the model's rules

    @property
    def table(self) -> Params:
        return self.levels.table

    def step(self, client: Client, action: Action):
        """The model's effect of `action` on a fleet of this one client: (the client after it, its events).

        The effect is a pure function of the client, the servers and the
        level table, so it is kept until either of the last two changes:
        interchangeable clients meet the same steps again and again.
        """
        if self.servers is not self.memo_for[0] or self.table is not self.memo_for[1]:
            self.memo, self.memo_for = {}, (self.servers, self.table)
        key = (client, action)
        found = self.memo.get(key)
        if found is None:
            state = State((client,), self.servers, 0, 0, 0, 0, 0)
            st = fleet.RULE[action.kind].apply(self.table, state, action)
            found = self.memo[key] = (st.state.clients[0], st.events)
        return found

    def client(self, g: _Group, t: int) -> Client:
        return Client(g.phase, g.server, 0, g.session(t))

    def tune(self, action: Action, tuner_timer: int = 0) -> bool:
        """Apply a tuner move to the servers if the model's guard allows it now; True if it did."""
        rule = fleet.RULE[action.kind]
        state = State((), self.servers, tuner_timer, 0, 0, 0, 0)
        if action not in rule.enabled(self.table, state):
            return False
        self.servers = rule.apply(self.table, state, action).state.servers
        if self.rec:
            self.rec.server_move(self.t, action, self.servers)
        return True

    # ------------------------------------------------------------ bookkeeping

    def now(self, t: int, s: int) -> int:
        return t + self.p.offset(s)

    def schedule(self, due: int, g: _Group, stored: bool = False) -> None:
        """Put `g` in the calendar at `due`, merged with an identical group if one is there.

        A group with a session enters the reapers' index too, unless it is
        there already (`stored`: the same group moving on to its next event).
        A group merged away is marked dead; its index entries, if any, are
        then skipped, since the group it merged into stands for the same session.
        """
        slot = self.calendar.setdefault(due, {})
        key = g.key()
        other = slot.get(key)
        if other is None:
            slot[key] = g
            if g.phase != RETRY and not stored:
                self.remember(g)
        else:
            other.n += g.n
            g.alive = False

    def remember(self, g: _Group) -> None:
        self.seq += 1
        session = g.session(0)
        for path in self.paths:
            bucket, key = self.slot(path, g, session)
            heapq.heappush(self.index[path].setdefault(bucket, []), (key, self.seq, g))
        if g.phase != DEAD:
            # An extra judge watches a running client's connection (the model's
            # `expired_judges`); an abandoned session has none, and a hung
            # client's own judge is frozen with it (a proxy's still runs).
            for j, judge in enumerate(self.p.judges):
                if g.phase == HUNG and judge.side == "client":
                    continue
                heapq.heappush(self.judge_heaps[j], (g.t_ref + self.table.judge_age(judge, g.hs), self.seq, g))

    def slot(self, path: str, g: _Group, session: Session) -> tuple[tuple, int]:
        holder = g.server if self.local else -1
        if self.source[path] == "server":
            return (holder, -1), g.base
        level, _ = fleet.judged_level_of(self.table, path, session, -1)
        if self.in_use:
            return (holder, level), g.base
        return (holder, -1), g.base + fleet.reap_age(self.table, path, level, level)

    def choose(self, n: float, outcomes):
        """Split `n` clients over ``(probability, outcome)`` pairs: yields (count, outcome).

        Fluid: in proportion. Sampled: each client draws its own outcome
        (a multinomial draw over the group), so clients that happen to share
        a group still choose independently.
        """
        outcomes = [(w, o) for w, o in outcomes if w > 0]
        if self.fluid:
            for weight, outcome in outcomes:
                yield n * weight, outcome
            return
        import numpy as np

        weights = np.array([w for w, _ in outcomes])
        counts = self.rng.multinomial(int(round(n)), weights / weights.sum())
        for count, (_, outcome) in zip(counts, outcomes):
            if count:
                yield float(count), outcome

    # ------------------------------------------------------------ the fleet

    def populate(self) -> None:
        """Every client connected, spread evenly over servers and over its heartbeat cycle.

        Each starts as the model's initial state has it (its heartbeat just
        arrived on its server); k seconds into the cycle it is still held, or
        answered and waiting to send the next one.
        """
        one = dataclasses.replace(self.table, clients=1)
        start = {st.clients[0].server: st.clients[0] for st in fleet.initial_states(one)}
        hold = start[0].timer
        waited, _ = self.step(start[0], Action("reply", client=0, value=self.rtt))
        cycle = max(1, hold + waited.timer)
        n = self.s.clients
        if self.fluid:
            share = n / (self.n_srv * cycle)
            cells = [(share, s, k) for s in range(self.n_srv) for k in range(cycle)]
        else:
            cells = [(1.0, int(s), int(k)) for s, k in zip(self.rng.integers(self.n_srv, size=n),
                                                             self.rng.integers(cycle, size=n))]
        for count, s, k in cells:
            session = start[s].session
            phase, due = (HELD, hold - k) if k < hold else (WAITING, cycle - k)
            hist = self.rec.start(-k, s) if self.rec else None
            if hist and phase == WAITING:  # its reply came before the run began
                reply = Action("reply", client=0, value=self.rtt)
                answered = start[s]._replace(timer=0, session=start[s].session._replace(age=hold))
                hist = self.rec.note(hist, hold - k, "reply", -1, self.step(answered, reply)[0], value=self.rtt)
            self.schedule(due, _Group(count, phase, s, -k, session.stamp, session.hs_level, session.ref_level,
                                      hist=hist))

    def run(self, progress=None) -> Series:
        import numpy as np

        H, S = self.s.horizon, self.n_srv
        out = Series(*(np.zeros(H) for _ in range(4)), *(np.zeros((H, S)) for _ in range(4)), fault=self.fault,
                     abandoned=np.zeros(H))
        self.out = out
        self.populate()
        shared_gc = "gc" in self.paths and not self.local
        for t in range(H):
            self.t = t
            self.faults.at(t)
            self.admitted = [0.0] * S
            self.work = [0.0] * S
            handshakes: list[tuple[_Group, int]] = []
            for g in list(self.calendar.pop(t, {}).values()):
                if not g.alive:
                    continue
                if g.phase == HELD:
                    self.reply(g, t)
                elif g.phase == WAITING:
                    self.arrive(g, t, handshakes)
                elif g.phase == HUNG:
                    self.faults.resume(g, t, handshakes)
                else:
                    handshakes.append((g, -1))
            self.handshake(handshakes, t)
            ups = self.up(t)
            if "publish" in self.paths and t % self.s.publish_every == 0:
                for s in ups:
                    self.reap(s, "publish", t, ups)
            if shared_gc:
                if t % GC_EVERY == 0 and ups:
                    self.reap(ups[self.gc_turn % len(ups)], "gc", t, ups)
                    self.gc_turn += 1
            elif "gc" in self.paths:
                for s in ups:  # each socket's own liveness timer
                    self.reap(s, "gc", t, ups)
            self.expire(t)
            self.drain_and_adjust(t)
            self.record(t)
            if progress is not None and t % 600 == 599:
                progress({"second": t + 1, "horizon": H})
        return out

    def up(self, t: int) -> list[int]:
        return [s for s in range(self.n_srv) if self.down_until[s] <= t]

    def drop(self, g: _Group, after: Client, t: int) -> None:
        """`g`'s socket closed and the model sent it to reconnect; an abandoned session may linger."""
        if after.phase != RETRY or after.session:
            raise StormError(f"the model left a dropped client {after.phase} with session {after.session}: "
                             "not a reconnect the simulation covers")
        self.abandon(g)
        self.retry(g.n, g, t)

    def abandon(self, g: _Group, n: float | None = None) -> _Group | None:
        """`g`'s clients leave their sessions; in a shared store they linger, dead, until a reaper comes (returned)."""
        dead = None
        if self.lingers:
            dead = _Group(g.n if n is None else n, DEAD, g.server, g.t_ref, g.stamp, g.hs, g.ref)
            self.remember(dead)
        if n is None:
            g.alive = False
        return dead

    def retry(self, n: float, g: _Group, t: int, pieces: Pieces | None = None) -> None:
        """`n` clients of `g` lost their socket: they reconnect by their policy.

        With a recording, `pieces` (default: `g`'s history) are their histories.
        """
        # Capped where the policy stops changing, so such clients share a group.
        attempt = min(g.attempt + 1, self.s.policy.saturates_at) if g.phase == RETRY else 1
        prev = g.prev if g.phase == RETRY else 0
        for count, (delay, nxt_prev) in self.choose(
            n, ((p, (d, nx)) for d, p, nx in self.s.policy.delays(attempt, prev))
        ):
            # The retry arrives the policy's delay plus a round trip after the
            # drop (the model's `Params.retry_delay` for its fixed policy).
            for part, hist in pieces.take(count) if pieces else ((count, g.hist),):
                self.schedule(t + max(delay + self.rtt, 1), _Group(part, RETRY, attempt=attempt, prev=nxt_prev,
                                                                   wstart=g.wstart, used=g.used, hist=hist))

    def place(self, g: _Group, after: Client, t: int, n: float | None = None) -> None:
        """Schedule `n` of `g`'s clients (default: all) as the model left them (`after`): held or waiting.

        Where their session is still `g`'s, `g` itself moves on (its index
        entries stay valid); otherwise they form a new group.
        """
        session = after.session
        t_ref = t - session.age
        same = n is None and g.phase != RETRY and \
            (t_ref, session.stamp, session.hs_level, session.ref_level) == (g.t_ref, g.stamp, g.hs, g.ref)
        if same:
            g.phase, g.server = after.phase, after.server
        else:
            if n is None:
                g.alive = False
            g = _Group(g.n if n is None else n, after.phase, after.server, t_ref, session.stamp, session.hs_level,
                       session.ref_level, wstart=g.wstart, used=g.used, hist=g.hist)
        if after.phase == HELD and after.timer == 0:
            # Answered at once (a ping/pong stack): the reply is due now.
            if not same:
                self.remember(g)
            self.reply(g, t)
            return
        # A next heartbeat due at once (no interval, no RTT) waits for the next second.
        self.schedule(t + max(after.timer, 1), g, stored=same)

    def reply(self, g: _Group, t: int) -> None:
        # The model's reply, its round trip the RTT plus the server's delay
        # behind its queued work (`LoadModel.reply_delay_s`; none by default).
        rtt = self.rtt + self.reply_delay(g.server) if self.reply_share else self.rtt
        if rtt > self.rtt:
            # Later than any round trip the scenario allows ([protocol] rtt): what the model and
            # `check` prove assumes none is, so the output says how many were (`meta["late_replies"]`).
            self.late_replies += g.n
            self.latest_reply = max(self.latest_reply, rtt)
        after, _ = self.step(self.client(g, t), Action("reply", client=0, value=rtt))
        if self.rec:
            g.hist = self.rec.note(g.hist, t, "reply", -1, after, value=rtt)
        self.place(g, after, t)

    def reply_delay(self, s: int) -> int:
        lm = self.loads[s]
        return lm.reply_delay_s(self.backlog[s] + self.work[s] / lm.capacity)

    def arrive(self, g: _Group, t: int, handshakes: list) -> None:
        # A reload: the user opens the page anew instead of sending the next
        # heartbeat; the old session is abandoned.
        q = min(1.0, self.churn_s * (t - g.t_ref))
        rec, before = self.rec, g.hist
        for n, reload in self.choose(g.n, ((q, True), (1 - q, False))):
            if reload:
                self.abandon(g, n)
                hist = rec.note(before, t, "reload") if rec else None
                handshakes.append((_Group(n, RETRY, attempt=0, wstart=g.wstart, used=g.used, hist=hist), -1))
                continue
            after, events = self.step(self.client(g, t), Action("arrive", client=0))
            if any(isinstance(e, Reaped) for e in events):
                # The existence check refused it (a valid client): the model's
                # client handshakes again at once, on the same server.
                self.out.reaped_valid[t] += n
                hist = rec.reap(before, t, g.server, "existence", n) if rec else None
                handshakes.append((_Group(n, RETRY, attempt=1, wstart=g.wstart, used=g.used, hist=hist), g.server))
                continue
            if rec:
                g.hist = rec.note(before, t, "arrive", -1, after)
            self.place(g, after, t, n)
        g.alive = False

    def handshake(self, groups: list, t: int) -> None:
        ups = self.up(t)
        S, budget, window = self.s, self.s.budget, self.s.budget_window
        # Clients reconnecting in the same second with the same retry state
        # are one batch (its mean latency is that of the parts, one after another).
        # (A recording hands the batch's clients out to its histories in
        # order, `Pieces`: the draws stay the batch's, as without one.)
        pooled: dict[tuple, tuple[_Group, int]] = {}
        parts: dict[tuple, list] = {}
        for g, fixed in groups:
            key = (g.attempt, g.prev, g.wstart, g.used, fixed)
            if self.rec:
                parts.setdefault(key, []).append((g.n, g.hist))
            if key in pooled:
                pooled[key][0].n += g.n
            else:
                pooled[key] = (g, fixed)
        for key, (g, fixed) in pooled.items():
            pieces = Pieces(parts[key]) if self.rec else None
            wstart, used = g.wstart, g.used
            if budget and g.attempt > 0:
                # Budgets count reconnects per fixed window [k W, (k+1) W):
                # a sliding window would make the start a per-client state.
                if t - wstart >= window:
                    wstart, used = t - t % window, 0
                if used >= budget:
                    # Out of budget: wait for the window to end, then try again.
                    for n, hist in pieces.take(g.n) if pieces else ((g.n, None),):
                        self.schedule(wstart + window, _Group(n, RETRY, attempt=g.attempt, prev=g.prev,
                                                              wstart=wstart, used=used, hist=hist))
                    continue
                used += 1
            targets = [fixed] if fixed in ups else ups
            if not targets:  # nowhere to connect: the attempt fails and is retried later
                self.retry(g.n, g, t, pieces)
                continue
            for n, s in self.choose(g.n, ((1.0 / len(targets), s) for s in targets)):
                lm, setup = self.loads[s], S.setup
                wait = self.backlog[s] + self.work[s] / lm.capacity  # seconds of queue ahead of this batch
                room = S.admission - self.admitted[s] if S.admission else n
                take = max(0.0, min(n, room, setup.room(wait, lm)))  # admission control, then load shedding
                admitted = pieces.take(take) if pieces else ()
                if take < n:
                    self.out.rejected[t] += n - take
                    self.retry(n - take, _Group(0, RETRY, attempt=g.attempt, prev=g.prev, wstart=wstart, used=used),
                               t, Pieces(pieces.take(n - take)) if pieces else None)
                if take <= 0:
                    continue
                self.admitted[s] += take
                # Past the deadline a client gives up; the server does the work
                # of those in time, and of the others unless it cancels it.
                done = setup.finished(take, wait, lm)
                worked = done if setup.cancels else take
                self.windows[s].add(lm.batch_latency_ms(wait, worked), worked * lm.channels)
                self.work[s] += worked * lm.reconnect_work_s
                self.out.reconnects[t] += take
                # The model's reconnect: a handshake and its first heartbeat, one step.
                after, events = self.step(_RETRYING, Action("reconnect", client=0, server=s))
                if not any(isinstance(e, Handshake) for e in events):
                    raise StormError(f"a reconnect to s{s} did not handshake ({events}): not covered")
                g.wstart, g.used = wstart, used
                # `done` of them set up in time (which of the batch's interchangeable
                # clients are late is a labelling: the first ones, here).
                kept = Pieces(admitted) if pieces else None
                if done < take:
                    self.give_up(take - done, g, after, t, kept.take(take - done) if kept else None)
                if done > 0 and not pieces:
                    self.place(g, after, t, done)
                for n, hist in kept.take(done) if kept else ():
                    g.hist = self.rec.note(hist, t, "reconnect", s, after)
                    self.place(g, after, t, n)
        if self.gave_up:
            self.reconnect_abandoned(t)
        self.left_behind.clear()

    def give_up(self, n: float, g: _Group, after: Client, t: int, pieces: list | None = None) -> None:
        """`n` of `g`'s clients, handshaken at `t` (`after`), abandon their setup at its deadline.

        The session the handshake made is left behind (in a shared store it
        lingers, dead, until a reaper comes), and the clients reconnect by
        their policy from the deadline on, one failed attempt more. A
        recording notes the abandonment in each one's history (`pieces`).
        """
        self.out.abandoned[t] += n
        session = after.session
        # The sessions this second's abandoned setups leave on one server are
        # alike: one dead group for them all, grown by each batch.
        left = (after.server, t - session.age, session.stamp, session.hs_level, session.ref_level)
        dead = self.left_behind.get(left)
        if dead is not None:
            dead.n += n
        else:
            self.left_behind[left] = self.abandon(_Group(n, after.phase, *left))
        key = (g.attempt, g.prev, g.wstart, g.used)
        total, parts = self.gave_up.get(key, (0.0, []))
        parts += [(m, self.rec.note(hist, t, "abandoned", after.server)) for m, hist in pieces or ()]
        self.gave_up[key] = (total + n, parts)

    def reconnect_abandoned(self, t: int) -> None:
        """The clients that gave up a setup started at `t` reconnect by their policy from its deadline.

        Those with the same retry state are split over the policy's delays
        together: in a storm of abandoned setups, every server's and every
        batch's share is one split (with a jittered policy, a group per delay).
        """
        for (attempt, prev, wstart, used), (n, parts) in self.gave_up.items():
            self.retry(n, _Group(0, RETRY, attempt=attempt, prev=prev, wstart=wstart, used=used),
                       t + self.s.setup.deadline, Pieces(parts) if self.rec else None)
        self.gave_up.clear()

    def reap(self, s: int, path: str, t: int, ups: list[int]) -> None:
        """Reaper `path` on `s` destroys every session it judges past its cutoff."""
        now, srv = self.now(t, s), self.servers[s]
        source, table = self.source[path], self.table
        for (holder, level), heap in self.index[path].items():
            if not heap or s not in fleet.judges_of(table, holder if self.local else -1, ups):
                continue
            if source == "server" or self.in_use:
                if source == "server":
                    level, _ = fleet.judged_level_of(table, path, (), srv.reap)
                limit = now - fleet.reap_age(table, path, level, fleet.interval_level_of(table, level, srv.adv))
            else:
                limit = now  # keys are expiry instants
            while heap and (not heap[0][2].alive or heap[0][0] <= limit):
                _, _, g = heapq.heappop(heap)
                if g.alive:
                    self.destroy(g, t, s, path)

    def destroy(self, g: _Group, t: int, s: int, path: str) -> None:
        """`path` on `s` (a reaper; -1 and ``judge:J`` for an extra judge) destroys `g`'s session."""
        g.alive = False
        if g.phase in (DEAD, HUNG):  # no running client's: correct to reap
            self.out.reaped_dead[t] += g.n
            if g.phase == HUNG:
                self.faults.hung_reaped(g)
        else:
            # A running client's session: its socket is closed, it reconnects.
            self.out.reaped_valid[t] += g.n
            if self.rec:
                g.hist = self.rec.reap(g.hist, t, s, path, g.n)
            self.retry(g.n, g, t)

    def expire(self, t: int) -> None:
        """Each extra judge closes the connections silent past its cutoff (the model's ``expire``)."""
        for j, heap in enumerate(self.judge_heaps):
            while heap and (not heap[0][2].alive or heap[0][0] <= t):
                _, _, g = heapq.heappop(heap)
                if g.alive:
                    self.destroy(g, t, g.server, f"judge:{j}")

    def drain_and_adjust(self, t: int) -> None:
        design = self.p.design
        for s in range(self.n_srv):
            self.backlog[s] = max(0.0, self.backlog[s] + self.work[s] / self.loads[s].capacity - 1.0)
        if not self.moves:
            return
        if design.tuner == "per-server":
            for s in self.up(t):
                if t % ADJUST_EVERY == (3 * s) % ADJUST_EVERY:
                    avg = self.windows[s].mean()
                    if avg is not None:
                        level = self.levels.of(avg)
                        if level != self.servers[s].target:
                            self.tune(Action("load", server=s, value=level))
            return
        # A fleet-wide tuner: one value from the most loaded server, everywhere.
        if t == self.deadline_at:
            self.tune(Action("deadline"), tuner_timer=-1)
            self.deadline_at = -1
        if t % ADJUST_EVERY == 0:
            means = [m for m in (w.mean() for w in self.windows) if m is not None]
            if means:
                level = self.levels.of(max(means))
                if level != self.servers[0].target and self.tune(Action("load", value=level)):
                    if design.propagation_delay:
                        self.deadline_at = t + design.propagation_delay
        if design.tuner == "fleet-staged":
            self.stage()

    def stage(self) -> None:
        """A staged change moves each half as soon as the model's guard lets it."""
        if all(srv.adv == srv.target and srv.reap == srv.target for srv in self.servers):
            return
        clients = self.representatives()
        for _ in range(2 * self.n_srv + 1):
            state = State(clients, self.servers, 0, 0, 0, 0, 0)
            moves = fleet.RULE["adopt_reaper"].enabled(self.table, state) or \
                fleet.RULE["adopt_advice"].enabled(self.table, state)
            if not moves:
                return
            self.servers = fleet.RULE[moves[0].kind].apply(self.table, state, moves[0]).state.servers
            if self.rec:
                self.rec.server_move(self.t, moves[0], self.servers)

    def representatives(self) -> tuple[Client, ...]:
        """One client per distinct refresh level among the running clients' sessions (what a staged guard reads)."""
        refs = {g.ref for slot in self.calendar.values() for g in slot.values() if g.alive and g.phase != RETRY}
        return tuple(Client(HELD, 0, 0, Session(0, 0, 0, ref)) for ref in sorted(refs))

    def record(self, t: int) -> None:
        o = self.out
        levels = self.levels.levels
        for s in range(self.n_srv):
            m = self.windows[s].mean()
            o.latency_ms[t, s] = m if m is not None else 0.0
            o.backlog_s[t, s] = self.backlog[s]
            advice = levels[self.servers[s].adv]
            o.timeout[t, s] = advice.timeout
            o.interval[t, s] = advice.interval


def simulate(params: Params, storm: StormParams, mode: str = "fluid", seed: int = 0, progress=None,
             record: bool = False) -> Series:
    """Run the fleet of `params` (design included) through its server loss.

    With `record` (sampled mode only), `Series.history` keeps each client's
    protocol steps and the servers' moves, for `checkers.certify` to replay.

    Examples
    --------
    >>> from stormcheck.model.scenario import load_scenario
    >>> p = load_scenario("gitter-2015", design="off").params
    >>> s = simulate(p, StormParams(clients=3000, horizon=900))
    >>> int(s.reaped_valid[s.fault[1]:].sum())  # the adjuster off: nothing valid reaped
    0
    """
    sim = _Sim(params, storm, mode, seed, record)
    series = sim.run(progress)
    series.fault_label = storm.fault.label(series.fault)
    if sim.rec:
        series.history = sim.rec.finish(sim.levels.levels)
    # Every client is in exactly one scheduled group at any time: the count
    # at the end is a conservation check (tests compare it with `clients`).
    at_end = sum(g.n for slot in sim.calendar.values() for g in slot.values() if g.alive and g.phase != DEAD)
    series.meta = {"mode": mode, "seed": seed, "design": params.design.name, "policy": storm.policy.name,
                   "clients": storm.clients, "servers": params.servers, "clients_at_end": at_end,
                   "levels": len(sim.levels.levels), "fault": storm.fault.kind,
                   "reaped_hung": sim.faults.reaped_hung,
                   "late_replies": sim.late_replies, "latest_reply": sim.latest_reply}
    return series


def storm_params(scenario, **overrides) -> StormParams:
    """The `StormParams` of a scenario's ``[storm]`` table (defaults where absent).

    The fixed policy waits the scenario's ``[protocol] retry``; the
    adjuster's threshold is ``[load] threshold_ms``.
    """
    from .faults import Fault
    from .load import LoadModel
    from .policies import Policy
    from .setup import Setup

    cfg = scenario.config.get("storm", {})
    d = StormParams()
    get = lambda key, default: cfg.get(key, default)  # noqa: E731
    policy = Policy(get("policy", d.policy.name), retry=scenario.params.retry, base=get("base", d.policy.base),
                    cap=get("cap", d.policy.cap), breaker_after=get("breaker_after", d.policy.breaker_after),
                    breaker_open=get("breaker_open", d.policy.breaker_open))
    load = LoadModel(get("channels", d.load.channels), float(get("capacity", d.load.capacity)),
                     float(get("handshake_ms", d.load.handshake_ms)), float(get("subscribe_ms", d.load.subscribe_ms)),
                     float(get("reply_share", d.load.reply_share)))
    f = d.fault
    fault = Fault(get("fault", f.kind), get("fault_for", f.fault_for), get("restart_batch", f.restart_batch),
                  get("restart_pace", f.restart_pace), get("restart_down", f.restart_down),
                  float(get("hung_share", f.hung_share)), float(get("capacity_left", f.capacity_left)))
    values = dict(
        clients=get("clients", d.clients), load=load, churn_per_hour=float(get("churn_per_hour", d.churn_per_hour)),
        publish_every=get("publish_every", d.publish_every), policy=policy, budget=get("budget", d.budget),
        budget_window=get("budget_window", d.budget_window), admission=float(get("admission", d.admission)),
        setup=Setup(get("setup_deadline", d.setup.deadline), get("abandoned_work", d.setup.abandoned_work),
                    get("queue_limit", d.setup.queue_limit)),
        threshold_ms=scenario.config["load"]["threshold_ms"], fault=fault, fault_at=get("fault_at", d.fault_at),
        horizon=get("horizon", d.horizon), subside_within=get("subside_within", d.subside_within),
    )
    values.update(overrides)
    return StormParams(**values)
