"""The symbolic engine: bounded model checking and proofs with Z3.

Two layers, kept apart as in z3's ``mini_ic3.py``:

* `bmc` and `search` know nothing of the domain. They take ``init`` (a
  formula over frame 0), ``trans(i)`` (frame i -> i+1) and ``bad(i)`` (step i
  is bad). `bmc` finds a shortest bad path (it proves every shorter bound
  free first, which is most of its time); `search` finds *a* bad path fast,
  asking "is some step up to K bad?" for a few growing K.
* `check_symbolic` builds those formulas from `checkers.z3_encoding`, turns
  a Z3 model into an initial state and a list of actions, and replays them
  through the Python model (`traces.run.replay`) before reporting anything: a
  counterexample or witness is *certified*, never the solver's word alone.

Verdicts, per property:

* ``no_valid_reap`` and ``parameter_agreement``: first a proof by inductive
  invariant (`checkers.z3_proof`: any number of clients, unbounded time); if
  it fails, a search for a certified counterexample; if none is found within
  the bound, holds *within the stated bound*, with the counterexample to
  induction in the stats.
* ``dead_session_reaped`` and ``rehandshake_reachable`` (``sometimes``): a
  search for a certified witness; none within the bound is inconclusive.

Solver discipline: `make_solver` is the one place solvers are made (seed,
per-check timeout, resource limit). ``unknown`` is reported as inconclusive,
never as safe.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable

import z3

from stormcheck import count, signals
from stormcheck.model.fleet import initial_states
from stormcheck.model.params import Params
from stormcheck.model.rollout import DUE, NOT_BEGUN, RUNNING
from stormcheck.properties.core import ALWAYS, STATE, Inconclusive, NotEncoded, Property, Verdict
from stormcheck.traces.run import ReplayError, Run, replay
from stormcheck.traces.timeline import level_text, server_status

from .result import CheckResult, PropertyResult

__all__ = ["make_solver", "solve", "check_known", "SolverUnknown", "bmc", "search", "lift", "certify", "depth_schedule", "BmcOutcome", "check_symbolic", "DEFAULT_TIMEOUT_MS"]

DEFAULT_TIMEOUT_MS = 30_000
ENGINE = "symbolic"
CHECKED = ("no_valid_reap", "parameter_agreement", "dead_session_reaped", "rehandshake_reachable")


class SolverUnknown(Inconclusive):
    """Z3 answered ``unknown`` (timeout, resource limit): inconclusive, never safe."""


# Every solver `make_solver` made and still alive: a signal interrupts them
# all (from `stormcheck.signals`' watcher thread), so a long check returns
# at once instead of at its timeout.
_LIVE: "weakref.WeakSet[z3.Solver]" = weakref.WeakSet()


@signals.on_signal
def _interrupt_solvers() -> None:
    for solver in list(_LIVE):
        solver.interrupt()


def solve(solver: z3.Solver, *assumptions) -> z3.CheckSatResult:
    """``solver.check(*assumptions)``; a call cut short by a signal raises `Interrupted`.

    An interrupted check answers ``unknown`` ("canceled"): that is the user
    stopping the run, never an inconclusive verdict.
    """
    answer = solver.check(*assumptions)
    if answer == z3.unknown:
        signals.check()
    return answer


def check_known(solver: z3.Solver) -> z3.CheckSatResult:
    """``solver.check()``, raising `SolverUnknown` instead of returning ``unknown``.

    For callers that read ``unsat`` as a proof: an ``unknown`` must not fall
    through to the branch that treats "not sat" as safe.
    """
    answer = solve(solver)
    if answer == z3.unknown:
        raise SolverUnknown(f"the solver gave up: {solver.reason_unknown()}")
    return answer


def make_solver(
    seed: int = 0, timeout_ms: int = DEFAULT_TIMEOUT_MS, rlimit: int = 0, ctx: z3.Context | None = None
) -> z3.Solver:
    """A fresh solver: seeded, with a timeout per `check` and optionally a resource limit.

    Every solver of the symbolic engine comes from here, so a seed reproduces
    a run and no check runs unbounded. ``rlimit`` 0 means no resource limit
    (the timeout still applies); a limit makes a run reproducible across
    machines where a timeout is not. Pass a fresh `ctx` (and build the
    formulas in it) for a run that does not depend on what else the process
    asked Z3 before: z3's main context numbers terms in creation order, and
    that order steers the search as much as the seed does.
    """
    solver = z3.Solver(ctx=ctx)
    # Z3's own Ctrl-C handler would cancel the check and swallow SIGINT;
    # off, SIGINT stops the run like SIGTERM does (`stormcheck.signals`).
    solver.set("ctrl_c", False)
    _LIVE.add(solver)
    solver.set("random_seed", seed)
    # Relevancy propagation off: on the 2015 fleet the 12-step search takes
    # ~9 s instead of ~15 s, and the bounded 'off' proof ~8 s instead of ~13 s.
    solver.set("smt.relevancy", 0)
    # The older arithmetic solver: on the 2015 fleet the 12-step search takes
    # 0.5-0.7 s over six seeds instead of 0.5-1.4 s, the bounded 'off' check
    # of 12 steps 1.3-1.5 s instead of 3-4.5 s.
    solver.set("smt.arith.solver", 2)
    solver.set("timeout", int(timeout_ms))
    if rlimit:
        solver.set("rlimit", int(rlimit))
    return solver


@dataclass(frozen=True)
class BmcOutcome:
    """What a bounded search found.

    ``status`` is ``found`` (``model`` has a bad path of ``steps`` steps),
    ``none`` (no bad path of at most ``steps`` steps) or ``unknown`` (the
    solver gave up at ``steps``; ``reason`` says why).
    """

    status: str
    steps: int
    model: z3.ModelRef | None
    reason: str
    seconds: float
    per_depth: tuple[float, ...]
    none_within: int = 0  # no bad path of at most this many steps (0: not known)


def bmc(
    init: z3.BoolRef,
    trans: Callable[[int], z3.BoolRef],
    bad: Callable[[int], z3.BoolRef],
    max_steps: int,
    solver: z3.Solver,
) -> BmcOutcome:
    """Look for the shortest path from `init` whose last step is `bad`.

    Depths are tried in increasing order on one incremental solver: the
    transitions of the path stay asserted, the bad step is pushed and popped.
    The first path found is therefore a shortest one.
    """
    start = time.perf_counter()
    per_depth: list[float] = []
    solver.add(init)
    for k in range(1, max_steps + 1):
        t = time.perf_counter()
        solver.add(trans(k - 1))
        solver.push()
        solver.add(bad(k - 1))
        answer = solve(solver)
        per_depth.append(time.perf_counter() - t)
        if answer == z3.sat:
            model = solver.model()
            solver.pop()
            return BmcOutcome("found", k, model, "", time.perf_counter() - start, tuple(per_depth))
        if answer == z3.unknown:
            reason = solver.reason_unknown()
            solver.pop()
            return BmcOutcome("unknown", k, None, reason, time.perf_counter() - start, tuple(per_depth))
        solver.pop()
    return BmcOutcome("none", max_steps, None, "", time.perf_counter() - start, tuple(per_depth))




def depth_schedule(max_steps: int, first: int = 12) -> list[int]:
    """The bounds `search` tries: `first`, by 4 up to 16, then by half again, ending at `max_steps`.

    Starting at 12 rather than at 1: one "some step up to 12 is bad" query
    finds the 12-step 2015 run in about 0.6 s, while proving 1..11 free first
    took 5-7 s; short runs are found by the same query. Witnesses of
    ``sometimes`` properties are short (3-8 steps): they start at 4.
    """
    out, k = [], first
    while k < max_steps:
        out.append(k)
        k = k + 4 if k < 16 else k + k // 2
    return out + [max_steps]


def search(
    init: z3.BoolRef,
    trans: Callable[[int], z3.BoolRef],
    bad: Callable[[int], z3.BoolRef],
    max_steps: int,
    solver: z3.Solver,
    depths: list[int] | None = None,
    on_depth: Callable[[int], None] | None = None,
) -> BmcOutcome:
    """Find a path from `init` some step of which is `bad`, up to `max_steps` steps.

    For each bound K of `depths` (default `depth_schedule`), one query: is
    some step below K bad? The steps below the previous bound are known not
    to be, so only the new ones are asked. The path returned ends at its
    first bad step, so it is not longer than needed *for this model*, but it
    need not be a shortest one (`bmc` finds those, at the price of proving
    every shorter bound free). ``none_within`` is the last bound found free.
    `on_depth(k)` is told each bound before its query (for progress).
    """
    start = time.perf_counter()
    per_depth: list[float] = []
    solver.add(init)
    unrolled, free = 0, 0
    for k in depths or depth_schedule(max_steps):
        t = time.perf_counter()
        while unrolled < k:
            solver.add(trans(unrolled))
            unrolled += 1
        # An assumption literal rather than push/pop: measured on the 2015
        # fleet, push/pop made the 12-step query 20-40% slower.
        ask = z3.Bool(f"search-bound-{k}", solver.ctx)
        solver.add(z3.Implies(ask, z3.Or([bad(i) for i in range(free, k)])))
        if on_depth is not None:
            on_depth(k)
        answer = solve(solver, ask)
        per_depth.append(time.perf_counter() - t)
        if answer == z3.sat:
            model = solver.model()
            first = next(i for i in range(free, k) if z3.is_true(model.eval(bad(i), model_completion=True)))
            return BmcOutcome("found", first + 1, model, "", time.perf_counter() - start, tuple(per_depth), free)
        if answer == z3.unknown:
            return BmcOutcome("unknown", k, None, solver.reason_unknown(), time.perf_counter() - start,
                              tuple(per_depth), free)
        free = k
    return BmcOutcome("none", free, None, "", time.perf_counter() - start, tuple(per_depth), free)


def certify(params: Params, enc, outcome: BmcOutcome, prop: Property) -> Run:
    """Replay the solver's path through the Python model; raise `ReplayError` if it differs."""
    model = outcome.model
    initial = enc.state_of(model, 0)
    if initial not in initial_states(params):
        raise ReplayError(0, f"the solver's first state is not an initial state of the model: {initial}")
    actions = [enc.action_of(model, i) for i in range(outcome.steps)]
    expected = [enc.state_of(model, i) for i in range(outcome.steps + 1)]
    run = replay(params, initial, actions, expected)
    if prop.over == STATE:
        found = prop.interesting(params, run.states[-1])
    else:
        pre, (action, last) = run.states[-2], run.steps[-1]
        found = prop.interesting(params, pre, action, last)
    if not found:
        what = "violate" if prop.modality == ALWAYS else "witness"
        raise ReplayError(len(run), f"the replayed run's last {prop.over} does not {what} {prop.name}")
    return run


def _bad_for(enc, name: str) -> Callable[[int], z3.BoolRef]:
    """Step i is what `name` looks for (for a state property: the state after step i)."""
    return {
        "no_valid_reap": enc.bad,
        "parameter_agreement": lambda i: enc.disagreement(i + 1),
        "dead_session_reaped": enc.dead_reaped,
        "rehandshake_reachable": enc.handshakes,
    }[name]


def _proof_basis(outcome) -> str:
    # No clock time in a basis: the same seed gives the same verdict text on
    # any machine and in any worker (the seconds are in the stats).
    return f"proved by an inductive invariant of {len(outcome.lemmas)} lemmas: {outcome.covers}"


def _cti_text(outcome, params: Params) -> str:
    action = f"; the bad step from it: {outcome.cti_action}" if outcome.cti_action is not None else ""
    state = _state_text(outcome.cti, params) if outcome.cti is not None else "no state"
    return f"counterexample to induction (a state the invariant allows, maybe unreachable): {state}{action}"


def _state_text(state, params: Params) -> str:
    """A one-client state as a reader says it (the verdict line once printed the records' repr)."""
    u = params.unit

    def level(k: int, judged: bool = False) -> str:  # a level by its advice: what it means to the reader
        if not 0 <= k < len(params.levels):  # a solver's state is not held to the fleet's levels
            return f"level {k}"
        return f"T={params.levels[k].timeout}" if judged else level_text(params, k)

    parts = []
    for n, c in enumerate(state.clients):
        where = f"on s{c.server}" if c.server >= 0 else "with no socket"
        session = (f", session age {c.session.age}{u} (handshake at {level(c.session.hs_level)}, refreshed at "
                   f"{level(c.session.ref_level)})" if c.session else ", no session")
        parts.append(f"c{n} {c.phase} {where}, timer {c.timer}{u}{session}")
    for n, srv in enumerate(state.servers):
        parts.append(f"s{n} {server_status(srv, u)}, advising {level(srv.adv)}, "
                     f"judging by {level(srv.reap, judged=True)}")
    rollout = {NOT_BEGUN: "", DUE: "rollout: its next step is due", RUNNING: "rollout: a phase is running"}
    parts.append(rollout.get(state.rollout, f"rollout: next step in {state.rollout}{u}"))
    return "; ".join(p for p in parts if p)


def check_symbolic(
    params: Params,
    properties: tuple[Property, ...],
    *,
    scenario: str = "",
    max_steps: int = 12,
    seed: int = 0,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    rlimit: int = 0,
    prove_first: bool = True,
    progress: Callable[[dict], None] | None = None,
) -> CheckResult:
    """Check `properties` with Z3: proofs where the invariant closes, certified runs otherwise.

    See the module docstring for the verdict of each property. A fleet the
    encoding does not cover is inconclusive for every property, with the
    reason. `prove_first` False skips the proofs (bounded checking only).
    `progress`, if given, is called about once a second, from a thread of
    its own (a solver call is one long C call), with the property, the
    phase (proof or search), the search depth and the seconds spent.
    """
    from .z3_encoding import Encoding  # the only module that knows the protocol

    if max_steps < 1:
        raise ValueError(f"max_steps = {max_steps}: the bound of a symbolic search must be at least 1 step")
    results = []
    stats: dict = {"seed": seed, "timeout_ms": timeout_ms, "depth_bound": max_steps, "properties": {}}
    start = time.perf_counter()
    ctx = z3.Context()  # a fresh context: same seed, same run
    try:
        enc = Encoding(params, ctx=ctx)
    except NotEncoded as err:
        enc, not_encoded = None, err.feature
    make = lambda c: make_solver(seed, timeout_ms, rlimit, ctx=c)  # noqa: E731
    ticker = _Ticker(progress, start)
    try:
        _check_each(params, properties, enc, not_encoded if enc is None else "", max_steps, make, ctx, prove_first,
                    stats, results, ticker)
    finally:
        ticker.stop()
    stats["seconds"] = round(time.perf_counter() - start, 3)
    return CheckResult(ENGINE, scenario, params.design.name, tuple(results), stats)


class _Ticker:
    """Calls `progress` once a second from a daemon thread with what the solver is on; a no-op without one."""

    def __init__(self, progress: Callable[[dict], None] | None, start: float) -> None:
        self.progress, self.start = progress, start
        self.now = {"property": "", "phase": "", "depth": 0}
        self.done = threading.Event()
        if progress is not None:
            threading.Thread(target=self._run, name="stormcheck-symbolic-progress", daemon=True).start()

    def at(self, **now) -> None:
        self.now = {**self.now, **now}

    def _run(self) -> None:
        while not self.done.wait(1.0):
            try:
                self.progress({**self.now, "symbolic": True, "seconds": time.perf_counter() - self.start})
            except Exception:  # a progress line must never end the check
                pass

    def stop(self) -> None:
        self.done.set()


def _check_each(params, properties, enc, not_encoded: str, max_steps: int, make, ctx, prove_first: bool,
                stats: dict, results: list, ticker: _Ticker) -> None:
    from .z3_proof import prove

    for prop in properties:
        ticker.at(property=prop.name, phase="proof", depth=0)

        def verdict(v, basis, run=None, checked=True, within=None):
            results.append(PropertyResult(prop.name, prop.modality, v, basis, run, checked=checked, within=within))

        if enc is None:
            verdict(Verdict.INCONCLUSIVE, f"not encoded: {not_encoded}", checked=False)
            continue
        if prop.name not in CHECKED:
            verdict(Verdict.INCONCLUSIVE, f"not checked by the symbolic engine (it checks {', '.join(CHECKED)})",
                    checked=False)
            continue
        info: dict = stats["properties"].setdefault(prop.name, {})
        proof = None
        if prop.modality == ALWAYS and prove_first:
            proof = prove(params, prop.name, make)
            info["proof"] = {"status": proof.status, "seconds": round(proof.seconds, 3), "lemmas": list(proof.lemmas)}
            if proof.status == "proved":
                verdict(Verdict.HOLDS, _proof_basis(proof))
                continue
            if proof.status == "cti":
                info["cti"] = _cti_text(proof, params)
        if params.clients > 1:
            # Many clients multiply the search; a run of one client, mirrored
            # by the others (`lift`), is often all it takes.
            lifted = _lifted(params, prop, max_steps, make)
            if lifted is not None:
                run, seconds = lifted
                info["lifted_seconds"] = round(seconds, 3)
                what = "counterexample" if prop.modality == ALWAYS else "witness"
                verdict(prop.verdict_when_found(),
                        f"certified {what} of {count(len(run), 'step')} (z3 on one client, every client "
                        f"mirroring it, replayed)", run)
                continue
        ticker.at(phase="search")
        outcome = _search_property(params, enc, prop, max_steps, make(ctx), lambda k: ticker.at(depth=k))
        info.update(search_seconds=round(outcome.seconds, 3), per_depth=[round(t, 3) for t in outcome.per_depth])
        if outcome.status == "found":
            try:
                run = certify(params, enc, outcome, prop)
            except ReplayError as err:
                verdict(Verdict.INCONCLUSIVE, f"the solver's {outcome.steps}-step path did not replay through "
                                              f"the model ({err}): encoding bug")
                continue
            what = "counterexample" if prop.modality == ALWAYS else "witness"
            shorter = f", none of <= {count(outcome.none_within, 'step')}" if outcome.none_within else ""
            basis = f"certified {what} of {count(len(run), 'step')} (z3, replayed{shorter})"
            verdict(prop.verdict_when_found(), basis, run)
        elif outcome.status == "none" and prop.modality == ALWAYS and params.rollout is not None and proof is not None:
            # A rollout's paces and release windows stretch its runs: the shortest
            # parameter_agreement violation of three shipped rollouts takes 21
            # steps, past the default bound. Without a proof, no verdict.
            cti = f": {info['cti']}" if "cti" in info else f" ({proof.status}: {proof.reason})"
            verdict(Verdict.INCONCLUSIVE, f"not proved (a rollout's runs may outlast the bound){cti}; "
                                          f"no counterexample of <= {count(max_steps, 'step')} (z3 BMC)")
        elif outcome.status == "none" and prop.modality == ALWAYS:
            why = "" if proof is None else f"; not proved ({proof.status}: see stats)"
            verdict(Verdict.HOLDS, f"bounded: no counterexample of <= {count(max_steps, 'step')} "
                                   f"(z3 BMC){why}", within=max_steps)
        elif outcome.status == "none":
            verdict(Verdict.INCONCLUSIVE, f"no witness of <= {count(max_steps, 'step')} (z3 BMC)")
        else:
            verdict(Verdict.INCONCLUSIVE, f"solver returned unknown at depth {outcome.steps} ({outcome.reason}); "
                                          f"nothing of <= {count(outcome.none_within, 'step')}")


_PER_CLIENT = ("reply", "arrive", "reconnect")


def lift(params: Params, run: Run, prop: Property) -> Run | None:
    """A run of the one-client fleet, replayed on `params`' fleet with every client mirroring client 0.

    Every client starts on client 0's server, and each of client 0's own
    events is applied to every client in turn, so all clients stay in the
    same state (they share the server, the advice and the clock) and every
    tick stays the same length. The run stops at the first step that shows
    `prop`. Faults that strike one client (crash, cut) would break the
    mirror: such runs are not lifted (None), nor any whose replay fails.
    What comes back was replayed by the model's own `step`, so it needs
    nothing from the solver to be believed.
    """
    from stormcheck.model.fleet import ProtocolError, step

    if any(a.kind in ("crash", "cut") for a in run.actions):
        return None
    placed = [s for s in initial_states(params)
              if all(cl.server == run.initial.clients[0].server for cl in s.clients)]
    if not placed:
        return None
    state, steps = placed[0], []
    try:
        for action in run.actions:
            copies = [action._replace(client=c) for c in range(params.clients)] if action.kind in _PER_CLIENT \
                else [action]
            for a in copies:
                st = step(params, state, a)
                steps.append((a, st))
                found = (prop.interesting(params, st.state) if prop.over == STATE
                         else prop.interesting(params, state, a, st))
                state = st.state
                if found:
                    return replay(params, placed[0], [x for x, _ in steps])
    except ProtocolError:
        return None
    return None


def _lifted(params: Params, prop: Property, max_steps: int, make) -> tuple[Run, float] | None:
    """A certified run of `prop` found on the one-client fleet and lifted (`lift`); None if none is."""
    from dataclasses import replace as _replace

    from .z3_encoding import Encoding

    one = _replace(params, clients=1)
    ctx = z3.Context()
    enc = Encoding(one, ctx=ctx)
    # A run of any length is a counterexample: the one-client search may go
    # past the stated bound (which only qualifies a "holds").
    outcome = _search_property(one, enc, prop, max(max_steps, 16), make(ctx))
    if outcome.status != "found":
        return None
    try:
        run = certify(one, enc, outcome, prop)
    except ReplayError:
        return None
    lifted = lift(params, run, prop)
    return None if lifted is None else (lifted, outcome.seconds)


def _search_property(params: Params, enc, prop: Property, max_steps: int, solver: z3.Solver,
                     on_depth: Callable[[int], None] | None = None) -> BmcOutcome:
    if prop.over == STATE:
        # A state property can fail in an initial state: a run of 0 steps.
        solver.push()
        solver.add(enc.init(), enc.disagreement(0))
        answer = solve(solver)
        model = solver.model() if answer == z3.sat else None
        solver.pop()
        if answer == z3.sat:
            return BmcOutcome("found", 0, model, "", 0.0, ())
    depths = depth_schedule(max_steps, 12 if prop.modality == ALWAYS else 4)
    return search(enc.init(), enc.trans, _bad_for(enc, prop.name), max_steps, solver, depths, on_depth)
