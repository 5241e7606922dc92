"""Proofs with Z3: an inductive invariant for unbounded time, any fleet size, every parameter in range.

What is proved
--------------
``no_valid_reap`` and ``parameter_agreement`` are about one client at a time
(a reap of *some* valid client; a cutoff before *some* client's refresh).
`Encoding` with ``env=True`` is one client against an environment that can
do whatever any number of other clients could do to it (see its module
docstring): every run of a fleet of any size, seen from one client, is a run
of that system. So an invariant of the one-client system that excludes the
bad step covers every client of every fleet size, for unbounded time. The
parameters are symbolic within the scenario's ``[ranges]`` (the point values
where it has none), so the proof covers every value in range at once. The
number of servers, the fault budgets and the design stay as the scenario
states them.

How
---
Houdini (Flanagan and Leino, 2001): start from a fixed library of candidate
lemmas (`LEMMAS`, generic facts about one client's cycle: a held client's
age plus its hold left is at most the timeout it was held for, a retrying
client has no session, ...), drop every lemma that some initial state breaks,
then repeatedly drop every lemma that one step from a state satisfying all
remaining lemmas can break. What is left is the strongest conjunction of
candidates that is inductive (a fleet with a rollout starts from
`ROLLOUT_LEMMAS` too: how servers and sessions move from A to B, and the
order of the phases). The property is proved when no step from a
state satisfying it is bad (for a state property: no such state is bad).
Otherwise the solver's state and step are a *counterexample to induction*
(CTI): a state the invariant allows, from which one step is bad. A CTI is
not a counterexample: that state may be unreachable. Solver ``unknown`` is
inconclusive, never proved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import z3

from stormcheck.model.params import Params
from stormcheck.model.state import CRASHED, CUT, HELD, REJOIN, RETRY, WAITING

from .z3_bmc import SolverUnknown, check_known
from .z3_encoding import PHASE, Encoding, SState, select

__all__ = ["LEMMAS", "ROLLOUT_LEMMAS", "lemmas_for", "spaced", "ProofOutcome", "prove", "houdini", "covers_text"]

_H, _W, _R, _CUT, _X, _J = (PHASE[p] for p in (HELD, WAITING, RETRY, CUT, CRASHED, REJOIN))


def _c(f: SState):
    return f.clients[0]


def _phase(f, *phases):
    return z3.Or([_c(f).phase == p for p in phases])


def spaced(e: Encoding) -> z3.BoolRef:
    """No heartbeat can come closer than the minimum spacing (`Heartbeat.min_spacing`, `rules_clients._spacing`).

    A heartbeat reaches its server the hold, the interval of the reply's
    level and the RTT of that round trip after the previous one reached it
    (`rules_clients._reply`); the interval and the RTT alone are at least the
    smallest interval plus the smallest RTT choice. Exact for a ping
    answered at once (hold 0); for a held connect the hold only adds to it.
    """
    return e.i_min + e.rtt_min >= e.params.heartbeat.min_spacing


# Candidate lemmas over one frame of the one-client system: name -> formula.
# Each is a fact one design or another keeps; Houdini keeps those that hold.
LEMMAS: dict[str, Callable[[Encoding, SState], z3.BoolRef]] = {
    "some server is up": lambda e, f: z3.Or([s.down == 0 for s in f.servers]),
    "a server's countdown is within the loss": lambda e, f: z3.And(
        [z3.And(s.down >= -1, s.down <= e.loss_duration) for s in f.servers]),
    "servers' level indices are levels": lambda e, f: z3.And(
        [z3.And(x >= 0, x < len(e.T)) for s in f.servers for x in (s.target, s.adv, s.reap)]),
    "a session's level indices are levels": lambda e, f: z3.And(
        [z3.And(x >= 0, x < len(e.T)) for x in (_c(f).hs, _c(f).ref)]),
    "every server is at the base level": lambda e, f: z3.And(
        [z3.And(s.target == 0, s.adv == 0, s.reap == 0) for s in f.servers]),
    "every server advises and reaps at its target": lambda e, f: z3.And(
        [z3.And(s.adv == s.target, s.reap == s.target) for s in f.servers]),
    "no fleet change is pending": lambda e, f: f.tuner == 0,
    "fault budgets are within the scenario's": lambda e, f: z3.And(
        f.losses >= 0, f.losses <= e.params.faults.server_loss, f.crashes >= 0,
        f.crashes <= e.params.faults.client_crash, f.cuts >= 0, f.cuts <= e.params.faults.client_cut),
    "the phase is a phase": lambda e, f: z3.And(_c(f).phase >= 0, _c(f).phase <= _J),
    "a held or waiting client has a session and a server": lambda e, f: z3.Implies(
        _phase(f, _H, _W), z3.And(_c(f).has, _c(f).server >= 0, _c(f).server < len(f.servers))),
    "a client not held nor waiting has no server": lambda e, f: z3.Implies(
        z3.Not(_phase(f, _H, _W)), _c(f).server == -1),
    "a retrying client has no session": lambda e, f: z3.Implies(_phase(f, _R), z3.Not(_c(f).has)),
    # Stacks whose sessions live with their socket: a crashed or cut-off client's half-open socket stays.
    "a retrying or rejoining client has no server": lambda e, f: z3.Implies(_phase(f, _R, _J), _c(f).server == -1),
    "a client's server is a server or none": lambda e, f: z3.And(_c(f).server >= -1, _c(f).server < len(f.servers)),
    "a rejoining client has no session": lambda e, f: z3.Implies(_phase(f, _J), z3.Not(_c(f).has)),
    "an absent session has zero fields": lambda e, f: z3.Implies(
        z3.Not(_c(f).has), z3.And(_c(f).age == 0, _c(f).stamp == 0, _c(f).hs == 0, _c(f).ref == 0,
                                  _c(f).strikes == 0)),
    "the handshake level is not recorded": lambda e, f: _c(f).hs == 0,
    "the refresh level is not recorded": lambda e, f: _c(f).ref == 0,
    "a session's age is within the cap": lambda e, f: z3.And(_c(f).age >= 0, _c(f).age <= e.age_cap),
    "a live client's session carries its server's clock": lambda e, f: z3.Implies(
        _phase(f, _H, _W), _c(f).stamp == select(e.off, _c(f).server)),
    "a session carries some server's clock": lambda e, f: z3.Implies(
        _c(f).has, z3.Or([_c(f).stamp == o for o in e.off])),
    "countdowns are not negative": lambda e, f: z3.And(
        z3.Implies(z3.Not(_phase(f, _X)), _c(f).timer >= 0), z3.Implies(_phase(f, _X), _c(f).timer == 0)),
    "a retry waits at most the retry delay": lambda e, f: z3.Implies(_phase(f, _R), _c(f).timer <= e.retry_wait),
    "a 401 is followed within the largest interval": lambda e, f: z3.Implies(
        _phase(f, _J), z3.And(_c(f).timer >= 0, _c(f).timer <= e.i_max)),
    "a cut lasts at most the cut duration": lambda e, f: z3.Implies(_phase(f, _CUT), _c(f).timer <= e.cut_duration),
    # The refresh bounds: how old a live client's session gets before its next connect.
    # (The hold is T for a held connect, 0 for a ping answered at once: `Heartbeat.hold`.)
    "held: age + hold left <= the longest hold": lambda e, f: z3.Implies(
        _phase(f, _H), _c(f).age + _c(f).timer <= e.hold_max),
    "waiting: age + wait left <= longest hold + largest I + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer <= e.hold_max + e.i_max + e.rtt_max),
    "waiting: age + wait left >= smallest I + smallest RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer >= e.i_min + e.rtt_min),
    "waiting: wait left <= largest I + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).timer <= e.i_max + e.rtt_max),
    "held: age + hold left <= the hold of the recorded level": lambda e, f: z3.Implies(
        _phase(f, _H), _c(f).age + _c(f).timer <= select(e.H, _c(f).ref)),
    "waiting: age + wait left <= hold + I of the recorded level + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer <= select(e.H, _c(f).ref) + select(e.I, _c(f).ref) + e.rtt_max),
    "waiting: wait left <= I of the handshake level + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).timer <= select(e.I, _c(f).hs) + e.rtt_max),
    # A session that outlives its socket (`after_drop = "same-id"`, a resume window) while its client retries.
    "retrying: age + wait left <= the retry delay": lambda e, f: z3.Implies(
        z3.And(_phase(f, _R), _c(f).has), _c(f).age + _c(f).timer <= e.retry_wait),
    "retrying: age + wait left <= longest hold + largest I + RTT + the retry delay": lambda e, f: z3.Implies(
        z3.And(_phase(f, _R), _c(f).has), _c(f).age + _c(f).timer <= e.hold_max + e.i_max + e.rtt_max + e.retry_wait),
    "retrying: age + wait left <= hold + I of the recorded level + RTT + the retry delay": lambda e, f: z3.Implies(
        z3.And(_phase(f, _R), _c(f).has),
        _c(f).age + _c(f).timer <= select(e.H, _c(f).ref) + select(e.I, _c(f).ref) + e.rtt_max + e.retry_wait),
    # A minimum spacing (`Heartbeat.min_spacing`): no heartbeat came early.
    "no early heartbeat is on record": lambda e, f: _c(f).strikes <= 0,
    # The same where the parameters keep every heartbeat spaced (a region's lower bound, `spaced`):
    # over a range that also holds intervals below the minimum, only this form can be inductive.
    "where heartbeats are spaced, no early heartbeat is on record": lambda e, f: z3.Implies(
        spaced(e), _c(f).strikes <= 0),
    "waiting: wait left <= I of the recorded level + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).timer <= select(e.I, _c(f).ref) + e.rtt_max),
    # Staged rollouts: which timeout reapers judge by, against what clients were told.
    "every server shares one target": lambda e, f: z3.And([s.target == f.servers[0].target for s in f.servers]),
    "no server advises a longer timeout than any reaper judges by": lambda e, f: z3.And(
        [select(e.T, a.adv) <= select(e.T, r.reap) for a in f.servers for r in f.servers]),
    "a session refreshed under a level is judged by no shorter timeout": lambda e, f: z3.Implies(
        z3.And(_c(f).has, _c(f).ref >= 0),
        z3.And([select(e.T, _c(f).ref) <= select(e.T, s.reap) for s in f.servers])),
    "a session between two schedules keeps every reaper at the largest timeout": lambda e, f: z3.Implies(
        z3.And(_c(f).has, _c(f).ref == -1), z3.And([select(e.T, s.reap) == e.t_max for s in f.servers])),
    "the refresh level is a level or stale": lambda e, f: z3.And(_c(f).ref >= -1, _c(f).ref < len(e.T)),
}


def _server_of(e: Encoding, f: SState, field_: str):
    """The level `field_` (``adv`` or ``reap``) of the server holding the client's socket."""
    return select([getattr(s, field_) for s in f.servers], _c(f).server)


def _marker(e: Encoding, f: SState) -> z3.BoolRef:
    ro = e.params.rollout
    longest = max([p.pace for p in ro.phases] + [p.spread for p in ro.phases])
    return z3.Or(f.rollout == -2, f.rollout == -1, z3.And(f.rollout >= 0, f.rollout <= longest))


# Candidates for fleets with a configuration rollout (`Params.rollout`): a
# server's level moves only by a restart, which drops its sockets, or by a
# live change, which does not; a client's own level only by the rollout.
ROLLOUT_LEMMAS: dict[str, Callable[[Encoding, SState], z3.BoolRef]] = {
    "the rollout marker is a marker or a countdown within the longest pace or window": _marker,
    # Restarts may take every server down at once (a phase's last restart, the next phase's first):
    # a client then retries, and keeps no session unless it had a network cut, which not every fleet has.
    "a client is cut off only in a fleet with cuts": lambda e, f: z3.Implies(
        e.params.faults.client_cut == 0, z3.Not(_phase(f, _CUT))),
    "a live client's server is up": lambda e, f: z3.Implies(
        _phase(f, _H, _W), select([s.down for s in f.servers], _c(f).server) == 0),
    "a live client's handshake level is its server's advice": lambda e, f: z3.Implies(
        _phase(f, _H, _W), _c(f).hs == _server_of(e, f, "adv")),
    "held: age + hold left <= the hold of its server's advice": lambda e, f: z3.Implies(
        _phase(f, _H), _c(f).age + _c(f).timer <= select(e.H, _server_of(e, f, "adv"))),
    "waiting: age + wait left <= hold + I of its server's advice + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer <= select(e.H, _server_of(e, f, "adv"))
        + select(e.I, _server_of(e, f, "adv")) + e.rtt_max),
    "held: age + hold left <= the hold of the handshake level": lambda e, f: z3.Implies(
        _phase(f, _H), _c(f).age + _c(f).timer <= select(e.H, _c(f).hs)),
    "waiting: age + wait left <= hold + I of the handshake level + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer <= select(e.H, _c(f).hs) + select(e.I, _c(f).hs) + e.rtt_max),
    "waiting: age + wait left <= I of the handshake level + RTT": lambda e, f: z3.Implies(
        _phase(f, _W), _c(f).age + _c(f).timer <= select(e.I, _c(f).hs) + e.rtt_max),
    # The order of the phases: servers first, then the clients; or the clients first.
    "a session at B is judged by servers at B": lambda e, f: z3.Implies(
        z3.And(_c(f).has, _c(f).hs >= 1), z3.And([s.reap >= 1 for s in f.servers])),
    "before and after the rollout, every server is at A or every one at B": lambda e, f: z3.Implies(
        f.rollout == 0, z3.Or(z3.And([z3.And(s.adv == 0, s.reap == 0) for s in f.servers]),
                              z3.And([z3.And(s.adv >= 1, s.reap >= 1) for s in f.servers]))),
    "while the rollout counts down, some server is still at A": lambda e, f: z3.Implies(
        f.rollout > 0, z3.Or([z3.Or(s.adv == 0, s.reap == 0) for s in f.servers])),
    "a running client's session at A is served by servers at A": lambda e, f: z3.Implies(
        z3.And(_c(f).has, _c(f).hs == 0, z3.Not(_phase(f, _X))),
        z3.And([z3.And(s.adv == 0, s.reap == 0) for s in f.servers])),
    # Clients first: no server moves before the clients phase is done and its release window over
    # (`RolloutRules.current`), and from then on no client starts a session at A, so the other
    # clients (`SState.others`) cannot hold that phase back again once a server has moved.
    "while other clients hold the clients phase back, every server is at A": lambda e, f: z3.Implies(
        z3.Not(f.others), z3.And([z3.And(s.adv == 0, s.reap == 0) for s in f.servers])),
    "every server's judge is at B once its advice is": lambda e, f: z3.And(
        [z3.Implies(s.adv >= 1, s.reap >= 1) for s in f.servers]),
    "every server's advice is at B once its judge is": lambda e, f: z3.And(
        [z3.Implies(s.reap >= 1, s.adv >= 1) for s in f.servers]),
}


def lemmas_for(params: Params) -> dict:
    """The candidate lemmas Houdini starts from for `params`' fleet."""
    return {**LEMMAS, **ROLLOUT_LEMMAS} if params.rollout is not None else LEMMAS


@dataclass(frozen=True)
class ProofOutcome:
    """What a proof attempt found.

    ``status``: ``proved``; ``cti`` (the invariant does not exclude a bad
    step: `cti` holds the state, the step and the parameter values, and
    `cti_step` is the action); ``unknown`` (the solver gave up; `reason`).
    """

    status: str
    lemmas: tuple[str, ...]
    dropped: tuple[str, ...]
    seconds: float
    covers: str
    reason: str = ""
    cti: object = None  # the CTI's state (a one-client `State`)
    cti_action: object = None
    cti_params: dict = field(default_factory=dict)


def houdini(enc: Encoding, make: Callable[[], z3.Solver], lemmas: dict | None = None) -> tuple[list[str], list[str]]:
    """The largest subset of `lemmas` that is inductive for `enc` (kept, dropped)."""
    lemmas = LEMMAS if lemmas is None else lemmas
    kept = list(lemmas)
    f0, f1 = enc.frame(0), enc.frame(1)
    at0 = {n: lemmas[n](enc, f0) for n in kept}
    at1 = {n: lemmas[n](enc, f1) for n in kept}
    solver = make()
    solver.add(enc.init())
    # Initiation: drop what some initial state breaks, a model at a time.
    kept = _drop_broken(solver, kept, lambda names: [], at0)
    solver = make()
    solver.add(enc.param_constraints(), enc.trans(0))
    # Consecution: drop what one step from the conjunction breaks, until none.
    kept = _drop_broken(solver, kept, lambda names: [at0[n] for n in names], at1)
    return kept, [n for n in lemmas if n not in kept]


def _drop_broken(solver: z3.Solver, kept: list, assume, goal: dict) -> list:
    """Drop from `kept` every lemma a model of ``assume(kept)`` breaks in `goal`, until no model breaks one."""
    while kept:
        solver.push()
        solver.add(*assume(kept))
        solver.add(z3.Or([z3.Not(goal[n]) for n in kept]))
        if check_known(solver) == z3.unsat:
            solver.pop()
            break
        m = solver.model()
        solver.pop()
        kept = [n for n in kept if z3.is_true(m.eval(goal[n], model_completion=True))]
    return kept


def covers_text(params: Params, ranges: dict) -> str:
    """What a proof over the one-client system covers, in words."""
    where = ", ".join(f"{k} in [{lo}, {hi}]" for k, (lo, hi) in ranges.items()) or "the scenario's point values"
    return (f"any number of clients, unbounded time, {params.servers} servers, design {params.design.name}, "
            f"{where}")


def prove(
    params: Params,
    prop: str,
    make: Callable[..., z3.Solver],
    *,
    ranges: dict | None = None,
    threshold_ms: int = 5000,
    extra: Callable[[Encoding], z3.BoolRef] | None = None,
) -> ProofOutcome:
    """Try to prove `prop` (``no_valid_reap`` or ``parameter_agreement``) by an inductive invariant.

    `make(ctx)` makes solvers (`z3_bmc.make_solver`). `extra(enc)`, when
    given, constrains the parameters further (synthesis proves a region).
    Raises ValueError for a fleet the encoding does not cover.
    """
    start = time.perf_counter()
    ranges = dict(ranges or {})
    ctx = z3.Context()
    enc = Encoding(params, ctx=ctx, ranges=ranges, threshold_ms=threshold_ms, env=True)
    covers = covers_text(params, ranges)
    limit = enc.param_constraints() if extra is None else z3.And(enc.param_constraints(), extra(enc))

    def solver():
        s = make(ctx)
        s.add(limit)
        return s

    lemmas = lemmas_for(params)
    try:
        kept, dropped = houdini(enc, solver, lemmas)
        s = solver()
        s.add(*[lemmas[n](enc, enc.frame(0)) for n in kept])
        if prop == "no_valid_reap":
            s.add(enc.trans(0), enc.bad(0))
        elif prop == "parameter_agreement":
            s.add(enc.disagreement(0))
        else:
            raise ValueError(f"{prop}: only no_valid_reap and parameter_agreement are proved by induction")
        answer = check_known(s)
    except SolverUnknown as err:
        return ProofOutcome("unknown", (), (), time.perf_counter() - start, covers, f"solver returned unknown ({err})")
    seconds = time.perf_counter() - start
    if answer == z3.unsat:
        return ProofOutcome("proved", tuple(kept), tuple(dropped), seconds, covers)
    m = s.model()
    action = enc.action_of(m, 0) if prop == "no_valid_reap" else None
    return ProofOutcome("cti", tuple(kept), tuple(dropped), seconds, covers, "the invariant allows a bad step",
                        enc.state_of(m, 0), action, enc.param_values(m))
