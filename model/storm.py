"""Storm dynamics: the fleet through a fault, second by second, at any size.

The exhaustive model (`model.fleet`) asks what *can* happen to a few
clients. This module asks what *does* happen to tens of thousands of them
once load, snapshot cost and the adjuster's feedback are in play: whether
the reconnect storm a fault starts dies out or keeps itself going after the
fault is gone (a metastable failure, the second half of the 2015 outage).

Protocol rules come from the same places as the exhaustive model's: the
reaper cutoffs (`Params.multiplier`, publish/existence 1.6 x T, GC 2 x T),
who judges by what (`Design.judges_by_session`), the adjuster formula
(`adjuster_advice`) and its sampling (`model.load`), the reconnect delays
(`model.policies`). What is added is what a state-space search leaves out:
how many clients, how much work each reconnect is, and when.

One simulator, two ways of counting
-----------------------------------
Clients that are interchangeable (same server, same session stamp, same
phase, same next event, same retry state) form a *group*. Where the protocol
makes a random choice (which server the load balancer picks, how long a
jittered retry waits, whether a user reloads the page), a group is either

* ``fluid``: split over every outcome in proportion to its probability
  (fractional client counts: the counting abstraction, deterministic, and
  its cost does not grow with the number of clients), or
* ``sampled``: one client per group, each choice drawn from a seeded RNG
  (the per-client model, for small fleets).

Everything else is the same code, so the two differ only by sampling noise
(`tests/test_storm.py` measures how much).

Time and events
---------------
Whole seconds. Each second: a fault starts or ends; the groups due fire
(a held connect is answered, a waiting client's next connect arrives and
refreshes its session or is refused, a retrying client reconnects through
the load balancer); every up server runs its publish path; one server per
60 s runs GC; backlogs drain; adjusters act on their 10-second ticks.
A reaped or refused client's socket is closed and it retries by its policy.
Sessions abandoned by a dropped socket stay in the store until a reaper
destroys them (a dead session: correct to reap). The client's round trip is
the scenario's largest RTT: the slow case is the one that matters.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..properties.core import NotEncoded
from .load import ADJUST_EVERY, SampleWindow, StormError, StormParams
from .params import Params, adjuster_advice

if TYPE_CHECKING:  # imported on use, by a simulation: the CLI loads this module for every command
    import numpy as np

__all__ = ["StormParams", "Series", "simulate", "refuse_unsimulated", "MODES", "StormError", "SIMULATED", "UNSIMULATED"]

MODES = ("fluid", "sampled")
HELD, WAITING, RETRY, DEAD = 0, 1, 2, 3


@dataclass
class Series:
    """Per-second time series of one run (numpy arrays, index = second)."""

    reconnects: np.ndarray  # handshakes admitted (page reloads included)
    rejected: np.ndarray  # reconnect attempts turned away by admission control
    reaped_valid: np.ndarray  # sessions of live clients destroyed or refused
    reaped_dead: np.ndarray  # sessions of gone clients destroyed
    latency_ms: np.ndarray  # [t, server] mean of the adjuster's sample window
    backlog_s: np.ndarray  # [t, server]
    timeout: np.ndarray  # [t, server] T_s
    interval: np.ndarray  # [t, server] I_s
    fault: tuple[int, int, int] = (0, 0, -1)  # (start, end, server); server -1: none
    meta: dict = field(default_factory=dict)


class _Group:
    __slots__ = ("n", "phase", "server", "stamp", "rec", "adv_i", "attempt", "prev", "wstart", "used", "alive")

    def __init__(self, n, phase, server=-1, stamp=0, rec=0, adv_i=0, attempt=0, prev=0, wstart=0, used=0):
        self.n, self.phase, self.server, self.stamp, self.rec = n, phase, server, stamp, rec
        self.adv_i, self.attempt, self.prev, self.wstart, self.used = adv_i, attempt, prev, wstart, used
        self.alive = True

    def key(self):
        return (self.phase, self.server, self.stamp, self.rec, self.adv_i, self.attempt, self.prev, self.wstart, self.used)


# The simulator states Faye's 2015 rules in its own terms (its phases, a held
# connect, the three reaper paths of docs/protocol.md); what the model states
# beyond them it would silently simulate as Faye, so it refuses them by name.
_INSTEAD = "check it with the exhaustive engine (stormcheck check, or --property storm_subsides for the lasso)"

# What the simulation covers, by the model's rule table (`fleet.RULES`): the
# kinds whose effect it reproduces (in its own time steps, over counts of
# clients) and, for every other kind, the scenario feature that enables it,
# which `refuse_unsimulated` refuses by name. tests/test_rules.py fails when
# a kind is in neither.
SIMULATED = ("reply", "arrive", "reconnect", "restore", "deadline", "publish", "gc", "load", "adopt",
             "lose", "crash", "cut", "tick")
UNSIMULATED = {
    "adopt_reaper": "design 'fleet-wide-staged' (a staged fleet change)",
    "adopt_advice": "design 'fleet-wide-staged' (a staged fleet change)",
    "launch": "a configuration rollout ([rollout])",
    "restart": "a configuration rollout ([rollout])",
    "upgrade": "a configuration rollout ([rollout])",
    "reconfigure": "a configuration rollout ([rollout])",
    "expire": "a client-side judge ([[judge]]) or a proxy idle timeout ([[proxy]])",
}


def refuse_unsimulated(params: Params) -> None:
    """Raise `NotEncoded` for a fleet whose rules the simulator does not state, before it starts."""
    features = list(params.extensions())
    if params.design.tuner == "fleet-staged":
        features.append(f"design {params.design.name!r} (a staged fleet change: its bookkeeping is per "
                        "session refresh)")
    if features:
        raise NotEncoded("storm simulation", "; ".join(features), _INSTEAD)


class _Sim:
    def __init__(self, params: Params, storm: StormParams, mode: str, seed: int) -> None:
        if mode not in MODES:
            raise StormError(f"mode {mode!r}: must be one of {', '.join(MODES)}")
        refuse_unsimulated(params)
        import numpy as np

        self.p, self.s, self.mode, self.rng = params, storm, mode, np.random.default_rng(seed)
        self.fluid = mode == "fluid"
        self.n_srv = params.servers
        self.rtt = max(params.rtt)
        self.T = [params.t0] * self.n_srv
        self.I = [params.i0] * self.n_srv
        self.pending: list[tuple[int, int, int] | None] = [None] * self.n_srv  # fleet propagation
        self.windows = [SampleWindow() for _ in range(self.n_srv)]
        self.backlog = [0.0] * self.n_srv
        self.work = [0.0] * self.n_srv
        self.down_until = [0] * self.n_srv
        self.calendar: dict[int, dict[tuple, _Group]] = {}
        # Reaper path kind -> heap of (key, seq, group). The key is the stamp
        # where the path judges by its server's T (the reaper compares it with
        # now - m * T_s), or the moment the session expires by its own recorded
        # timeout (stamp + m * rec, compared with now). Stale entries (a group
        # refreshed, merged or reaped since) are skipped when they surface.
        self.heaps: dict[str, list] = {"publish": [], "gc": []}
        self.seq = 0
        self.gc_turn = 0
        f = params.faults
        self.loss_server = (f.loss_servers[0] if f.loss_servers else 0) if f.server_loss else -1
        self.fault = (storm.fault_at, storm.fault_at + f.loss_duration, self.loss_server)
        self.churn_s = storm.churn_per_hour / 3600.0
        self.records = params.design.judges_by_session("publish") or params.design.judges_by_session("gc")
        self.admitted = [0.0] * self.n_srv

    # ------------------------------------------------------------ bookkeeping

    def now(self, t: int, s: int) -> int:
        return t + self.p.offset(s)

    def schedule(self, due: int, g: _Group, stored: bool = False) -> None:
        """Put `g` in the calendar at `due`, merged with an identical group if one is there.

        A group with a session enters the store too, unless it is there
        already (`stored`: the same group moving on to its next event). A
        group merged away is marked dead; its store entry, if any, is then
        skipped, since the group it merged into stands for the same stamp.
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
        for kind, heap in self.heaps.items():
            heapq.heappush(heap, (self.key(kind, g), self.seq, g))

    def key(self, kind: str, g: _Group) -> float:
        if self.p.design.judges_by_session(kind):
            return g.stamp + float(self.p.multiplier(kind)) * g.rec
        return g.stamp

    def rec(self, s: int) -> int:
        """The timeout a refresh on `s` records with the session (0 where nothing reads it)."""
        return self.T[s] if self.records else 0

    def adv(self, s: int) -> int:
        """The interval fixed on arrival at `s` (0 where the reply's own advice is used)."""
        return self.I[s] if self.p.design.reply_advice == "arrival" else 0

    def cutoff(self, s: int, path: str, rec: int) -> float:
        timeout = rec if (self.records and self.p.design.judges_by_session(path) and rec) else self.T[s]
        return float(self.p.multiplier(path)) * timeout

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
        """Every client connected, spread evenly over servers and cycle phases."""
        cycle = self.p.t0 + self.p.i0 + self.rtt
        n = self.s.clients
        if self.fluid:
            share = n / (self.n_srv * cycle)
            cells = [(share, s, k) for s in range(self.n_srv) for k in range(cycle)]
        else:
            cells = [(1.0, int(s), int(k)) for s, k in zip(self.rng.integers(self.n_srv, size=n),
                                                             self.rng.integers(cycle, size=n))]
        for count, s, k in cells:
            # k seconds into its cycle: if still held, the connect arrived k s ago.
            phase, due = (HELD, self.p.t0 - k) if k < self.p.t0 else (WAITING, cycle - k)
            self.schedule(due, _Group(count, phase, s, self.now(0, s) - k, self.rec(s), self.adv(s)))

    def run(self, progress=None) -> Series:
        import numpy as np

        H, S = self.s.horizon, self.n_srv
        out = Series(*(np.zeros(H) for _ in range(4)), *(np.zeros((H, S)) for _ in range(4)), fault=self.fault)
        self.out = out
        self.populate()
        start, end, lost = self.fault
        for t in range(H):
            self.t = t
            if lost >= 0 and t == start:
                self.lose(lost, end)
            self.admitted = [0.0] * S
            self.work = [0.0] * S
            handshakes = []
            for g in list(self.calendar.pop(t, {}).values()):
                if not g.alive:
                    continue
                if g.phase == HELD:
                    self.reply(g, t)
                elif g.phase == WAITING:
                    self.arrive(g, t, handshakes)
                else:
                    handshakes.append(g)
            self.handshake(handshakes, t)
            for s in self.up(t):
                if t % self.s.publish_every == 0:
                    self.reap(s, "publish", t)
            if t % 60 == 0:
                ups = self.up(t)
                if ups:
                    self.reap(ups[self.gc_turn % len(ups)], "gc", t)
                    self.gc_turn += 1
            self.drain_and_adjust(t)
            self.record(t)
            if progress is not None and t % 600 == 599:
                progress({"second": t + 1, "horizon": H})
        return out

    def up(self, t: int) -> list[int]:
        return [s for s in range(self.n_srv) if self.down_until[s] <= t]

    def lose(self, s: int, until: int) -> None:
        """Server `s` loses connectivity: every socket on it drops at once."""
        self.down_until[s] = until
        for due, slot in list(self.calendar.items()):
            for g in list(slot.values()):
                if g.alive and g.server == s and g.phase in (HELD, WAITING):
                    self.abandon(g)
                    self.retry(g.n, g, self.t)

    def abandon(self, g: _Group) -> None:
        """The client re-handshakes; its old session lingers in the store, dead."""
        dead = _Group(g.n, DEAD, g.server, g.stamp, g.rec)
        self.remember(dead)
        g.alive = False

    def retry(self, n: float, g: _Group, t: int) -> None:
        """`n` clients of `g` lost their socket: they reconnect by their policy."""
        # Capped where the policy stops changing, so such clients share a group.
        attempt = min(g.attempt + 1, self.s.policy.saturates_at) if g.phase == RETRY else 1
        prev = g.prev if g.phase == RETRY else 0
        for count, (delay, nxt_prev) in self.choose(
            n, ((p, (d, nx)) for d, p, nx in self.s.policy.delays(attempt, prev))
        ):
            self.schedule(t + max(delay, 1), _Group(count, RETRY, attempt=attempt, prev=nxt_prev,
                                                    wstart=g.wstart, used=g.used))

    def reply(self, g: _Group, t: int) -> None:
        s = g.server
        interval = g.adv_i if self.p.design.reply_advice == "arrival" else self.I[s]
        g.phase = WAITING
        self.schedule(t + interval + self.rtt, g, stored=True)

    def arrive(self, g: _Group, t: int, handshakes: list) -> None:
        s = g.server
        age = self.now(t, s) - g.stamp
        if age >= self.cutoff(s, "existence", g.rec):
            self.out.reaped_valid[t] += g.n
            g.alive = False
            self.retry(g.n, g, t)
            return
        # A reload: the user opens the page anew; the old session is abandoned.
        q = min(1.0, self.churn_s * (self.T[s] + self.I[s] + self.rtt))
        for n, reload in self.choose(g.n, ((q, True), (1 - q, False))):
            if reload:
                self.remember(_Group(n, DEAD, s, g.stamp, g.rec))
                handshakes.append(_Group(n, RETRY, attempt=0, wstart=g.wstart, used=g.used))
            else:
                rec = self.rec(s) if self.p.design.record == "refresh" else g.rec
                self.schedule(t + self.T[s], _Group(n, HELD, s, self.now(t, s), rec, self.adv(s), 0, 0,
                                                    g.wstart, g.used))
        g.alive = False

    def handshake(self, groups: list, t: int) -> None:
        ups = self.up(t)
        S, budget, window = self.s, self.s.budget, self.s.budget_window
        for g in groups:
            wstart, used = g.wstart, g.used
            if budget and g.attempt > 0:
                # Budgets count reconnects per fixed window [k W, (k+1) W):
                # a sliding window would make the start a per-client state.
                if t - wstart >= window:
                    wstart, used = t - t % window, 0
                if used >= budget:
                    # Out of budget: wait for the window to end, then try again.
                    self.schedule(wstart + window, _Group(g.n, RETRY, attempt=g.attempt, prev=g.prev,
                                                          wstart=wstart, used=used))
                    continue
                used += 1
            for n, s in self.choose(g.n, ((1.0 / len(ups), s) for s in ups)):
                room = S.admission - self.admitted[s] if S.admission else n
                take = max(0.0, min(n, room))
                if take < n:
                    self.out.rejected[t] += n - take
                    self.retry(n - take, _Group(0, RETRY, attempt=g.attempt, prev=g.prev, wstart=wstart, used=used), t)
                if take <= 0:
                    continue
                self.admitted[s] += take
                lm = S.load
                self.windows[s].add(lm.batch_latency_ms(self.backlog[s] + self.work[s] / lm.capacity, take),
                                    take * lm.channels)
                self.work[s] += take * lm.reconnect_work_s
                self.out.reconnects[t] += take
                # Handshake and first connect are one step (as in model.fleet).
                self.schedule(t + self.T[s], _Group(take, HELD, s, self.now(t, s), self.rec(s), self.adv(s), 0, 0,
                                                    wstart, used))

    def reap(self, s: int, path: str, t: int) -> None:
        now, heap = self.now(t, s), self.heaps[path]
        # Every key in one heap is of one kind (see __init__), so the top decides.
        limit = now if self.p.design.judges_by_session(path) else now - self.cutoff(s, path, 0)
        while heap and (not heap[0][2].alive or heap[0][0] <= limit):
            _, _, g = heapq.heappop(heap)
            if not g.alive:
                continue  # refreshed, merged or reaped since it was stored
            g.alive = False
            if g.phase == DEAD:
                self.out.reaped_dead[t] += g.n
            else:
                # A live client's session: its socket is closed, it retries.
                self.out.reaped_valid[t] += g.n
                self.retry(g.n, g, t)

    def drain_and_adjust(self, t: int) -> None:
        lm, design, p = self.s.load, self.p.design, self.p
        threshold = self.s.threshold_ms
        for s in range(self.n_srv):
            self.backlog[s] = max(0.0, self.backlog[s] + self.work[s] / lm.capacity - 1.0)
        if not design.adjusts():
            return
        if design.tuner == "per-server":
            for s in self.up(t):
                if t % ADJUST_EVERY == (3 * s) % ADJUST_EVERY:
                    avg = self.windows[s].mean()
                    if avg is not None:
                        self.T[s], self.I[s] = adjuster_advice(avg, p.t0, p.i0, threshold)
            return
        # fleet: one value from the most loaded server, everywhere (after the delay).
        if t % ADJUST_EVERY == 0:
            means = [m for m in (w.mean() for w in self.windows) if m is not None]
            if means:
                advice = adjuster_advice(max(means), p.t0, p.i0, threshold)
                for s in range(self.n_srv):
                    self.pending[s] = (t + design.propagation_delay, *advice)
        for s in range(self.n_srv):
            if self.pending[s] and self.pending[s][0] <= t:
                _, self.T[s], self.I[s] = self.pending[s]
                self.pending[s] = None

    def record(self, t: int) -> None:
        o = self.out
        for s in range(self.n_srv):
            m = self.windows[s].mean()
            o.latency_ms[t, s] = m if m is not None else 0.0
            o.backlog_s[t, s] = self.backlog[s]
            o.timeout[t, s] = self.T[s]
            o.interval[t, s] = self.I[s]


def simulate(params: Params, storm: StormParams, mode: str = "fluid", seed: int = 0, progress=None) -> Series:
    """Run the fleet of `params` (design included) through its server loss.

    Examples
    --------
    >>> from stormcheck.model.scenario import load_scenario
    >>> p = load_scenario("gitter-2015", design="off").params
    >>> s = simulate(p, StormParams(clients=3000, horizon=900))
    >>> int(s.reaped_valid[s.fault[1]:].sum())  # the adjuster off: nothing valid reaped
    0
    """
    sim = _Sim(params, storm, mode, seed)
    series = sim.run(progress)
    # Every client is in exactly one scheduled group at any time: the count
    # at the end is a conservation check (tests compare it with `clients`).
    at_end = sum(g.n for slot in sim.calendar.values() for g in slot.values() if g.alive and g.phase != DEAD)
    series.meta = {"mode": mode, "seed": seed, "design": params.design.name, "policy": storm.policy.name,
                   "clients": storm.clients, "servers": params.servers, "clients_at_end": at_end}
    return series


def storm_params(scenario, **overrides) -> StormParams:
    """The `StormParams` of a scenario's ``[storm]`` table (defaults where absent).

    The fixed policy waits the scenario's ``[protocol] retry``; the
    adjuster's threshold is ``[load] threshold_ms``.
    """
    from .load import LoadModel
    from .policies import Policy

    cfg = scenario.config.get("storm", {})
    d = StormParams()
    get = lambda key, default: cfg.get(key, default)  # noqa: E731
    policy = Policy(get("policy", d.policy.name), retry=scenario.params.retry, base=get("base", d.policy.base),
                    cap=get("cap", d.policy.cap))
    load = LoadModel(get("channels", d.load.channels), float(get("capacity", d.load.capacity)),
                     float(get("handshake_ms", d.load.handshake_ms)), float(get("subscribe_ms", d.load.subscribe_ms)))
    values = dict(
        clients=get("clients", d.clients), load=load, churn_per_hour=float(get("churn_per_hour", d.churn_per_hour)),
        publish_every=get("publish_every", d.publish_every), policy=policy, budget=get("budget", d.budget),
        budget_window=get("budget_window", d.budget_window), admission=float(get("admission", d.admission)),
        threshold_ms=scenario.config["load"]["threshold_ms"], fault_at=get("fault_at", d.fault_at),
        horizon=get("horizon", d.horizon), subside_within=get("subside_within", d.subside_within),
    )
    values.update(overrides)
    return StormParams(**values)
