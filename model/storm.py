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

Parts
-----
The simulation is one class, `_Sim`, whose steps live in one module per
concern, each a base class of it: `model.storm_clients` (a group's own
steps: replies, heartbeats, reloads, drops, reconnects and their
admission), `model.storm_reapers` (the reapers' and extra judges' index
and sweeps) and `model.storm_tuner` (the advice levels a run grows, the
servers' backlogs and the tuner's moves). `model.storm_scenario` reads a
scenario's ``[storm]`` table and refuses, by name, the fleets the
simulation does not cover. This module keeps the run: the model's rules
applied to one client, the calendar, the fluid or sampled split, the
fleet at the start, the order of each second (`_Sim.run`) and `simulate`;
the names callers import from it are re-exported here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import fleet
from .faults import FaultRun
from .groups import DEAD, HUNG, Group as _Group
from .history import Recording
from .load import LONGEST_RUN, SampleWindow, StormError, StormParams
from .params import Params
from .state import HELD, RETRY, WAITING, Action, Client, Server, State
from .storm_clients import ClientSteps
from .storm_reapers import Reapers
# Re-exported: callers import these from here.
from .storm_scenario import SIMULATED, UNSIMULATED, refuse_unsimulated, storm_params, unsimulated
from .storm_tuner import Tuner, _Levels

if TYPE_CHECKING:  # imported on use, by a simulation: the CLI loads this module for every command
    import numpy as np

__all__ = ["StormParams", "Series", "simulate", "check_cycle", "storm_params", "refuse_unsimulated", "unsimulated",
           "MODES", "StormError", "SIMULATED", "UNSIMULATED"]

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


# ------------------------------------------------------------ groups


class _Sim(ClientSteps, Reapers, Tuner):
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

    def heartbeat_cycle(self) -> tuple[dict, int, int]:
        """Each server's initial client, how long its heartbeat is held, and the cycle: hold, reply, next one."""
        one = dataclasses.replace(self.table, clients=1)
        start = {st.clients[0].server: st.clients[0] for st in fleet.initial_states(one)}
        hold = start[0].timer
        waited, _ = self.step(start[0], Action("reply", client=0, value=self.rtt))
        return start, hold, max(1, hold + waited.timer)

    def populate(self) -> None:
        """Every client connected, spread evenly over servers and over its heartbeat cycle.

        Each starts as the model's initial state has it (its heartbeat just
        arrived on its server); k seconds into the cycle it is still held, or
        answered and waiting to send the next one.
        """
        start, hold, cycle = self.heartbeat_cycle()
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


def check_cycle(params: Params, storm: StormParams, source: str) -> None:
    """Refuse a fleet whose heartbeat cycle outlasts the run, before any simulation starts.

    The clients start spread over one cycle, second by second: a cycle longer than
    the horizon is a run in which they never complete one (and, for a fluid run,
    a table as long as the cycle: a timeout of 10^20 s once filled the memory).
    """
    cycle = _Sim(params, storm, "fluid", 0).heartbeat_cycle()[2]
    if cycle > storm.horizon:
        fix = (f"raise [storm] horizon (storm's --horizon) to {cycle:,} s or more" if cycle <= LONGEST_RUN else
               f"the longest run is {LONGEST_RUN:,} s (30 days), so the storm simulation cannot run this fleet")
        raise StormError(
            f"{source}: [protocol] timeout = {params.t0}, interval = {params.i0}: a heartbeat cycle of {cycle:,} s "
            f"(the hold, the reply, the next heartbeat) is longer than [storm] horizon = {storm.horizon:,} s, so no "
            f"client completes one within the run; {fix}; 'stormcheck check' checks the fleet at any timeout"
        )


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
