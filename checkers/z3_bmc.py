"""The symbolic engine, first step: bounded model checking with Z3.

Two layers, kept apart as in z3's ``mini_ic3.py``:

* `bmc` knows nothing of the domain. It takes ``init`` (a formula over frame
  0), ``trans(i)`` (frame i -> i+1) and ``bad(i)`` (step i is bad) and looks
  for the shortest path of at most ``max_steps`` steps whose last step is bad.
* `check_symbolic` builds those formulas from `checkers.z3_encoding`, turns
  a Z3 model into an initial state and a list of actions, and replays them
  through the Python model (`traces.run.replay`) before reporting anything: a
  counterexample is *certified*, never the solver's word alone.

Solver discipline: `make_solver` is the one place solvers are made (seed,
per-check timeout, resource limit). ``unknown`` is reported as inconclusive,
never as safe. "No path of at most K steps" is reported as ``holds`` only
with the bound stated in the basis.

Only ``no_valid_reap`` is checked so far; the other properties are reported
inconclusive with a basis that says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import z3

from stormcheck.model.fleet import initial_states
from stormcheck.model.params import Params
from stormcheck.properties.core import Property, Verdict
from stormcheck.traces.run import ReplayError, Run, replay

from .result import CheckResult, PropertyResult

__all__ = ["make_solver", "bmc", "BmcOutcome", "check_symbolic", "DEFAULT_TIMEOUT_MS"]

DEFAULT_TIMEOUT_MS = 30_000
ENGINE = "symbolic"
CHECKED = ("no_valid_reap",)


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
    solver.set("random_seed", seed)
    # Relevancy propagation off: on the 2015 fleet the 12-step search takes
    # ~9 s instead of ~15 s, and the bounded 'off' proof ~8 s instead of ~13 s.
    solver.set("smt.relevancy", 0)
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
        answer = solver.check()
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


def _certify(params: Params, enc, outcome: BmcOutcome, prop: Property) -> Run:
    """Replay the solver's path through the Python model; raise `ReplayError` if it differs."""
    model = outcome.model
    initial = enc.state_of(model, 0)
    if initial not in initial_states(params):
        raise ReplayError(0, f"the solver's first state is not an initial state of the model: {initial}")
    actions = [enc.action_of(model, i) for i in range(outcome.steps)]
    expected = [enc.state_of(model, i) for i in range(outcome.steps + 1)]
    run = replay(params, initial, actions, expected)
    pre, (action, last) = run.states[-2], run.steps[-1]
    if not prop.interesting(params, pre, action, last):
        raise ReplayError(len(run), f"the replayed last step {action} does not violate {prop.name}")
    return run


def check_symbolic(
    params: Params,
    properties: tuple[Property, ...],
    *,
    scenario: str = "",
    max_steps: int = 12,
    seed: int = 0,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    rlimit: int = 0,
) -> CheckResult:
    """Bounded model checking of `properties` with Z3; certified counterexamples only.

    ``no_valid_reap``: violated with a replayed run, holds *within the
    stated bound* of `max_steps` steps, or inconclusive (solver unknown, or a
    design the encoding does not cover yet). Other properties: inconclusive.
    """
    from .z3_encoding import Encoding  # the only module that knows the protocol

    if max_steps < 1:
        raise ValueError(f"max_steps = {max_steps}: the bound of a symbolic search must be at least 1 step")
    results, stats = [], {"seed": seed, "timeout_ms": timeout_ms, "depth_bound": max_steps}
    ctx = z3.Context()  # a fresh context: same seed, same run
    try:
        enc = Encoding(params, ctx=ctx)
    except ValueError as err:
        enc, not_encoded = None, str(err)
    for prop in properties:
        if prop.name not in CHECKED:
            basis = f"not checked by the symbolic engine yet (it checks {', '.join(CHECKED)})"
            results.append(PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis))
            continue
        if enc is None:
            results.append(PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, not_encoded))
            continue
        solver = make_solver(seed, timeout_ms, rlimit, ctx=ctx)
        outcome = bmc(enc.init(), enc.trans, enc.bad, max_steps, solver)
        stats.update(seconds=round(outcome.seconds, 3), per_depth=[round(t, 3) for t in outcome.per_depth])
        if outcome.status == "found":
            try:
                run = _certify(params, enc, outcome, prop)
            except ReplayError as err:
                basis = f"the solver's {outcome.steps}-step path did not replay through the model ({err}): encoding bug"
                results.append(PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis))
                continue
            basis = f"certified counterexample of {len(run)} steps (z3 BMC, replayed) in {outcome.seconds:.2f} s"
            results.append(PropertyResult(prop.name, prop.modality, Verdict.VIOLATED, basis, run))
        elif outcome.status == "none":
            basis = f"bounded: no counterexample of <= {max_steps} steps (z3 BMC, {outcome.seconds:.2f} s)"
            results.append(PropertyResult(prop.name, prop.modality, Verdict.HOLDS, basis))
        else:
            basis = (f"solver returned unknown at depth {outcome.steps} ({outcome.reason}); "
                     f"no counterexample of <= {outcome.steps - 1} steps")
            results.append(PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis))
    return CheckResult(ENGINE, scenario, params.design.name, tuple(results), stats)
