"""The engines: interchangeable consumers of the same model and properties.

Every engine is a function ``(scenario, properties, *, seed, progress,
**options) -> CheckResult``. `ENGINES` maps the names the CLI accepts to
them and `ENGINE_OPTIONS` names the options each one takes.
"""

from __future__ import annotations

from stormcheck import one_name
from stormcheck._compiled import prefer_current

one_name(__name__, "stormcheck.checkers")
prefer_current(__name__, __path__)  # a compiled module runs only while it is a build of its source

import dataclasses
from typing import Callable

from stormcheck.properties.core import Verdict

from .bfs import check_bfs
from .result import EXIT_CODES, CheckResult, PropertyResult

SYMBOLIC_STEPS = 16  # the BMC bound when neither --steps nor [search] max_depth gives one
# ... for a fleet with a rollout, whose paces and release windows stretch its runs (the shortest
# parameter_agreement violation of rollouts/socketio-2-ping-60 and two others takes 21 steps).
ROLLOUT_STEPS = 24

__all__ = ["SYMBOLIC_STEPS", "ROLLOUT_STEPS", "ENGINES", "ENGINE_OPTIONS", "SEEDED_ENGINES", "RANGED_ENGINES",
           "RANGES_COVERED_BY", "RANGES_ELSEWHERE", "LIVENESS_WHY", "unused_seed", "run_engine", "points_only", "CheckResult",
           "PropertyResult", "EXIT_CODES"]


def _exhaustive(scenario, properties, *, seed: int | None = None, progress: Callable | None = None) -> CheckResult:
    # Breadth-first search is deterministic: the seed only labels the result.
    result = check_bfs(
        scenario.params, properties, scenario=scenario.name, budget=scenario.bounds, progress=progress
    )
    bound = result.stats.get("depth_bound")
    if result.stats.get("complete") or not bound:
        return result
    # A search cut at the depth bound: a "holds" with no run behind it rests on that bound.
    return dataclasses.replace(result, properties=tuple(
        dataclasses.replace(p, within=bound) if p.verdict == Verdict.HOLDS and p.run is None else p
        for p in result.properties))


def _hypothesis(scenario, properties, *, seed: int | None = None, progress: Callable | None = None,
                **options) -> CheckResult:
    # Imported on use: Hypothesis takes a while to import and only this engine needs it.
    from .hypo import check_hypothesis

    return check_hypothesis(scenario, properties, seed=seed, progress=progress, **options)


def _symbolic(scenario, properties, *, seed: int | None = None, progress: Callable | None = None,
              steps: int | None = None) -> CheckResult:
    # Proofs, and bounded model checking with Z3 to `steps` steps (default:
    # the scenario's depth bound, else 16: the 2015 fleet's fleet-wide run
    # needs 13). Imported on use, like Hypothesis.
    from .z3_bmc import check_symbolic

    bound = steps or scenario.bounds.max_depth or (ROLLOUT_STEPS if scenario.params.rollout else SYMBOLIC_STEPS)
    return check_symbolic(scenario.params, properties, scenario=scenario.name, max_steps=bound, seed=seed or 0,
                          progress=progress)


def _compositional(scenario, properties, *, seed: int | None = None, progress: Callable | None = None) -> CheckResult:
    # The scenario's own fleet first (violations, witnesses), then one client
    # against any number of others for what holds there.
    from .compose import check_compositional

    def concrete(props, max_states=None, progress=None):
        bounds = scenario.bounds if max_states is None else dataclasses.replace(
            scenario.bounds, max_states=min(max_states, scenario.bounds.max_states))
        return check_bfs(scenario.params, props, scenario=scenario.name, budget=bounds, progress=progress)

    return check_compositional(scenario.params, properties, scenario=scenario.name, budget=scenario.bounds,
                               progress=progress, concrete=concrete)


ENGINES: dict[str, Callable[..., CheckResult]] = {
    "exhaustive": _exhaustive,
    "compositional": _compositional,
    "hypothesis": _hypothesis,
    "symbolic": _symbolic,
}
ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "exhaustive": (),
    "compositional": (),
    "hypothesis": ("examples", "steps", "database"),
    "symbolic": ("steps",),
}

# The engines a seed steers: Hypothesis draws its runs from it, the solver is seeded with it. Breadth-first
# search (exhaustive, compositional) draws nothing: its result is the same for every seed.
SEEDED_ENGINES = ("hypothesis", "symbolic")


def unused_seed(engine: str, seed: int | None) -> str | None:
    """Why a given `seed` is refused for `engine` (one it would not steer); None when the engine uses it."""
    if seed is None or engine in SEEDED_ENGINES:
        return None
    users = " or ".join(f"--engine {e}" for e in SEEDED_ENGINES)
    return (f"--seed {seed}: only used by {users} (the engine is {engine}, whose search draws nothing: "
            "its result is the same for every seed)")


def run_engine(name: str, scenario, properties, *, seed: int | None = None, progress: Callable | None = None,
               **options) -> CheckResult:
    """Run the engine called `name` with its `options` (None values are left out).

    Raises
    ------
    ValueError
        For an unknown engine or an option the engine does not take; the
        message lists what it does know.
    """
    try:
        engine = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}") from None
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(ENGINE_OPTIONS.get(name, ())))
    if unknown:
        takes = ", ".join(ENGINE_OPTIONS.get(name, ())) or "none"
        raise ValueError(f"engine {name!r} takes no option {', '.join(unknown)}; its options: {takes}")
    if name == "exhaustive":
        result = engine(scenario, properties, seed=seed, progress=progress, **options)
    else:
        result = _without_liveness(name, engine, scenario, properties, seed=seed, progress=progress, **options)
    if not scenario.ranges:
        return result
    if name in RANGED_ENGINES:
        return dataclasses.replace(result, stats={**result.stats, "ranges_searched": True})
    return points_only(result, scenario.ranges)


# Only a lasso through the whole state graph shows a liveness violation; the
# other engines refuse it, by name, before they run.
LIVENESS_WHY = ("only --engine exhaustive decides liveness (it needs a lasso through the whole state graph): "
                "use --engine exhaustive (or `stormcheck storm`)")


def _without_liveness(name: str, engine: Callable, scenario, properties, **kwargs) -> CheckResult:
    """`engine` on the properties it decides; each liveness property refused (`LIVENESS_WHY`), not guessed.

    When nothing is left to decide, the engine is not run at all: a search
    that checks nothing would only spend time (a Hypothesis run of a thousand
    examples) before saying the same.
    """
    decided = tuple(p for p in properties if not p.liveness)
    if decided:
        result = engine(scenario, decided, **kwargs)
    else:
        result = CheckResult(name, scenario.name, scenario.design.name, (),
                             stats={"not_run": f"no property --engine {name} decides", "seconds": 0})
    found = {p.name: p for p in result.properties}
    merged = tuple(found[p.name] if p.name in found
                   else PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, LIVENESS_WHY, checked=False)
                   for p in properties)
    return dataclasses.replace(result, properties=merged)


# The engine `check` runs that searches a scenario's [ranges]: Hypothesis draws
# every run's parameters from them. Every other engine checks the point values.
RANGED_ENGINES = ("hypothesis",)
# Where each engine that covers [ranges] does so: the solver proves over them
# in `synth` and `plan`, while `check --engine symbolic` encodes the point values.
# The same in one clause, for the messages about an engine that searched the point values only.
RANGES_ELSEWHERE = "--engine hypothesis draws from them; the symbolic engine proves over them in synth and plan"
RANGES_COVERED_BY = {"hypothesis": "stormcheck check --engine hypothesis draws every run's values from them",
                     "symbolic": "stormcheck synth and stormcheck plan --engine symbolic prove over them"}


def points_only(result: CheckResult, ranges: dict) -> CheckResult:
    """`result`, found at a ranged scenario's point values, said to be no more than that.

    A run the engine found (a counterexample, a witness) is a run of the
    fleet the file describes at its point values, and stands. A verdict
    about every run (a property holds, a witness does not exist) covers
    those values alone, not the [ranges] the scenario asks about: it becomes
    inconclusive, its basis saying what was searched and which engines
    search the ranges. The stats carry the same as data (``ranges``,
    ``ranges_searched`` False, ``ranges_searched_by``).
    """
    note = f"the point values only: [ranges] not searched by --engine {result.engine} ({RANGES_ELSEWHERE})"
    props = []
    for p in result.properties:
        if p.run is not None or not p.checked:
            props.append(p if not p.checked else dataclasses.replace(p, basis=f"{p.basis}; at {note}"))
        else:
            props.append(dataclasses.replace(p, verdict=Verdict.INCONCLUSIVE, within=None,
                                             basis=f"{p.verdict} at {note}; {p.basis}"))
    stats = {**result.stats, "ranges": {key: [lo, hi] for key, (lo, hi) in ranges.items()},
             "ranges_searched": False, "ranges_searched_by": RANGES_COVERED_BY}
    return dataclasses.replace(result, properties=tuple(props), stats=stats)
