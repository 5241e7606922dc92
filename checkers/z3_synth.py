"""Synthesis with Z3: for which parameter values is a design safe?

Two questions, each answered by a proof inside and a certified run outside.

`adjuster_thresholds`: the 2015 question. For the per-server advice
adjuster, the smallest average subscribe latency (the adjuster's input, the
highest load level of the scenario) at which each reaper path reaps a valid
session. Method, per path:

1. The one-client system of `z3_encoding` (any number of clients) with the
   highest level's load symbolic in ``[the level below + 1, high]``, and its
   inductive invariant (`z3_proof.houdini`, valid for every load in range).
2. The smallest load X for which the invariant allows a step in which that
   path reaps a valid session: a binary search of satisfiability queries
   over ``load <= m``. Every load below X is therefore *proved* safe for that
   path (the invariant excludes the reap; any number of clients, unbounded
   time).
3. At X itself, a bounded search of the real fleet (its point values, the
   highest level set to X) for a run in which that path reaps a valid
   session, replayed through the Python model (certified). Found: X is the
   exact threshold. Not found within the bound: X is only a lower bound, and
   the report says so.

`safe_region`: the broader question over a scenario's ``[ranges]``. The
region is taken from a small family of readable constraints, each of the
form "the oldest a live session gets before its next refresh is younger than
the earliest cutoff that can judge it" (per design: base level only, the
largest hold against the smallest timeout, or level by level; with the retry
delay added where a dropped client retries on its old id), with the bounds
of the judges beside the servers (a proxy's idle timeout, a client's own
cutoff) where they add one, and, under a minimum spacing, "and heartbeats
land at least that far apart". Z3 proves
which of them imply safety under the invariant over the whole range
(`region`: the weakest such one), and a point just outside it, found by Z3,
is checked with a certified bounded search. A region is always a
*sufficient* condition (proved); it is also necessary at the checked point
when the run is found there.

Solvers come from `z3_bmc.make_solver`; ``unknown`` is never read as safe.
The candidate forms are encoded in `z3_synth_candidates`; the answers'
records and their wording are in `z3_synth_results`.
"""

from __future__ import annotations

import time
from typing import Sequence

import z3

from stormcheck.model.events import Reaped
from stormcheck.model.fleet import is_valid
from stormcheck.model.scenario import Scenario, concrete_config, scenario_from_dict
from stormcheck.properties.core import ALWAYS, STEP, NotEncoded, Property
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.run import Run

from .z3_bmc import DEFAULT_TIMEOUT_MS, certify, check_known, make_solver, search
from .z3_encoding import REAPS, Encoding
from .z3_proof import LEMMAS, covers_text, houdini
from .z3_synth_candidates import _candidates
from .z3_synth_results import Region, Threshold, _cut_by

__all__ = ["Threshold", "Region", "adjuster_thresholds", "safe_region", "path_property", "PATHS",
           "SynthesisError"]

PATHS = ("publish", "existence", "gc")


class SynthesisError(ValueError):
    """A scenario synthesis cannot answer (wrong design, no ranges...): the message says why."""


def path_property(paths: tuple[str, ...]) -> Property:
    """``no_valid_reap`` restricted to reaper `paths`: what each engine checks at a sampled point."""
    def check(params, pre, action, step) -> bool:
        return not any(isinstance(e, Reaped) and e.path in paths and is_valid(pre, e.client) for e in step.events)

    name = "no_valid_reap_by_" + "_".join(paths)
    return Property(name, ALWAYS, STEP, check, f"No {'/'.join(paths)} reaper destroys the session of a valid client.")


# ---------------------------------------------------------------- the 2015 question


def _prepare(params, ranges: dict, threshold_ms: int, seed: int, timeout_ms: int):
    """The one-client encoding over `ranges` in a fresh context, its solver factory and the lemmas that hold.

    A fresh context per question: z3 numbers terms in creation order, and
    that order steers the search as much as the seed does.
    """
    if params.rollout is not None:
        # The candidate regions are over one configuration; a rollout's safety
        # depends on the order of its phases too, which `plan` answers.
        raise NotEncoded("synthesis", "a configuration rollout ([rollout]): its safety depends on its order",
                         "use `stormcheck plan --engine symbolic` for a rollout")
    ctx = z3.Context()
    enc = Encoding(params, ctx=ctx, ranges=ranges, threshold_ms=threshold_ms, env=True)

    def solver():
        s = make_solver(seed, timeout_ms, ctx=ctx)
        s.add(enc.param_constraints())
        return s

    kept, _ = houdini(enc, solver)
    return enc, solver, kept


def adjuster_thresholds(
    scenario: Scenario,
    *,
    high_ms: int | None = None,
    max_steps: int = 16,
    seed: int = 0,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    paths: Sequence[str] = PATHS,
) -> list[Threshold]:
    """Per reaper path, the adjuster input at which a valid session is first reaped (module docstring).

    `paths`: the reaper paths to answer for (default all), in `PATHS` order.
    Each path's question is independent of the others', so a caller may ask
    for one path per process (`stormcheck.jobs`).
    """
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise SynthesisError(f"unknown reaper path(s) {', '.join(unknown)}; paths: {', '.join(PATHS)}")
    params = scenario.params
    if params.design.judge != "server" or not params.design.adjusts() or len(params.levels) < 2:
        raise SynthesisError(
            f"{scenario.name} / {params.design.name}: adjuster thresholds need an adjusting design that judges "
            "by the server's timeout (per-server, fleet-wide) and at least two load levels")
    threshold_ms = scenario.config["load"]["threshold_ms"]
    low = params.levels[-2].avg_ms + 1
    high = high_ms if high_ms is not None else max(params.levels[-1].avg_ms, 200_000)
    if high < low:
        raise SynthesisError(f"--high-ms {high}: must be above the second-highest level ({low - 1} ms)")
    enc, solver, kept = _prepare(params, {"load_ms": (low, high)}, threshold_ms, seed, timeout_ms)
    out = []
    for path in (p for p in PATHS if p in paths):
        t = time.perf_counter()
        s = solver()
        s.add(*[LEMMAS[n](enc, enc.frame(0)) for n in kept], enc.trans(0), enc.bad(0, (path,)))
        load = enc.base["load_ms"][0]
        least = _least(s, load, low, high)
        if least is None:
            out.append(Threshold(path, None, None, None, low, high, None, max_steps, time.perf_counter() - t))
            continue
        config = concrete_config(scenario.config, {"load_ms": least})
        point = scenario_from_dict(config, scenario.source)
        top = point.params.levels[-1]
        run = _certified_run(point, (path,), max_steps, seed, timeout_ms)
        out.append(Threshold(path, least, top.timeout, top.interval, low, high, run, max_steps,
                             time.perf_counter() - t, config))
    return out


def _least(s: z3.Solver, x, low: int, high: int) -> int | None:
    """The least value of `x` in [low, high] for which `s` is satisfiable (None: none)."""
    s.push()
    s.add(x <= high)
    found = check_known(s) == z3.sat
    s.pop()
    if not found:
        return None
    lo, hi = low, high  # invariant: sat at x <= hi
    while lo < hi:
        mid = (lo + hi) // 2
        s.push()
        s.add(x <= mid)
        if check_known(s) == z3.sat:
            hi = min(mid, s.model().eval(x, model_completion=True).as_long())
        else:
            lo = mid + 1
        s.pop()
    return lo


def _certified_run(point: Scenario, paths: tuple[str, ...], max_steps: int, seed: int, timeout_ms: int,
                   prop: Property | None = None, first: int | None = None) -> Run | None:
    """A replayed run of the point fleet in which a reaper of `paths` destroys a valid session.

    `prop`: the property the replayed run must break (default:
    `path_property(paths)`). `first`: a shorter bound asked before
    `max_steps` (default none).
    """
    ctx = z3.Context()
    enc = Encoding(point.params, ctx=ctx)
    # One query at the full bound: any run will do, and proving shorter
    # bounds free first would double the time (the 2015 thresholds' 12-step runs).
    depths = [first, max_steps] if first is not None and first < max_steps else [max_steps]
    outcome = search(enc.init(), enc.trans, lambda i: enc.bad(i, paths), max_steps,
                     make_solver(seed, timeout_ms, ctx=ctx), depths=depths)
    if outcome.status != "found":
        return None
    return certify(point.params, enc, outcome, prop if prop is not None else path_property(paths))


# ---------------------------------------------------------------- the region over [ranges]


def _cti(scenario: Scenario, enc: Encoding, solver, inv: list) -> tuple[Run, dict] | None:
    """A counterexample to induction anywhere in range: (a one-step run of one client, its config).

    The state satisfies the invariant and the step reaps a valid client's
    session; the state need not be reachable, which is why it is reported as
    a CTI and never as a counterexample. The step is replayed by the model
    (`fleet.step`) on the one-client fleet at the CTI's parameter values; a
    step only the environment can take (a tick shortened by other clients)
    leaves a run of no steps.
    """
    from stormcheck.model.fleet import ProtocolError, step

    s = solver()
    s.add(*inv, enc.trans(0), enc.bad(0))
    if check_known(s) != z3.sat:
        return None
    m = s.model()
    config = concrete_config(scenario.config, enc.param_values(m))
    config["topology"]["clients"] = 1
    params = scenario_from_dict(config, scenario.source).params
    state, action = enc.state_of(m, 0), enc.action_of(m, 0)
    try:
        steps = ((action, step(params, state, action)),)
    except ProtocolError:
        steps = ()
    return Run(state, steps), config


def _just_outside(s: z3.Solver, pairs: list) -> tuple[z3.ModelRef | None, bool]:
    """A point outside the region `s` (its negation) holds, and whether it is on the edge.

    On the edge: one inequality fails by exactly zero (lhs == rhs), the
    others holding, so only one bound is crossed; the pairs are tried in
    order (a candidate puts the bound it wants shown first). Else any such
    point with some inequality at zero; else (a point scenario far outside)
    any point outside.
    """
    tries = [z3.And(lhs == rhs, *[a < b for j, (a, b) in enumerate(pairs) if j != i])
             for i, (lhs, rhs) in enumerate(pairs)]
    for edge in [*tries, z3.Or([lhs == rhs for lhs, rhs in pairs])]:
        s.push()
        s.add(edge)
        found = check_known(s) == z3.sat
        model = s.model() if found else None
        s.pop()
        if found:
            return model, True
    return (s.model(), False) if check_known(s) == z3.sat else (None, False)


def _neighbour_inside(enc: Encoding, solver, formula, outside: dict) -> dict | None:
    """A point inside the region one step from `outside` in one parameter (None: none is)."""
    flat = [(key, i, term) for key, terms in enc.base.items() for i, term in enumerate(terms)]
    value = {(key, i): (outside[key][i] if key == "skew" else outside[key]) for key, i, _ in flat}
    for key, i, term in flat:
        s = solver()
        s.add(formula, *[t == value[(k, j)] for k, j, t in flat if (k, j) != (key, i)])
        s.add(z3.Or(term == value[(key, i)] - 1, term == value[(key, i)] + 1))
        if check_known(s) == z3.sat:
            return enc.param_values(s.model())
    return None


def safe_region(scenario: Scenario, *, max_steps: int = 16, seed: int = 0,
                timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Region:
    """The proved-safe region of `scenario`'s design over its ``[ranges]`` (module docstring)."""
    start = time.perf_counter()
    ranges = dict(scenario.ranges)
    for key in ("servers", "clients"):
        if key in ranges:
            # Fleet sizes are not parameters of the region: clients are covered
            # by the one-client system, servers would need one proof each.
            raise SynthesisError(f"[ranges] {key}: synthesis is over protocol parameters; "
                                 f"fix {key} (the proof covers any number of clients)")
    params = scenario.params
    enc, solver, kept = _prepare(params, ranges, scenario.config["load"]["threshold_ms"], seed, timeout_ms)
    inv = [LEMMAS[n](enc, enc.frame(0)) for n in kept]
    bad = z3.Or(z3.And(enc.trans(0), enc.bad(0)), enc.disagreement(0))
    cti = _cti(scenario, enc, solver, inv)
    sound, rejected = [], []
    for text, formula, pairs in _candidates(enc):
        s = solver()
        s.add(formula, *inv, bad)
        if check_known(s) == z3.unsat:
            sound.append((text, formula, pairs))
        else:
            rejected.append(text)
    covers = covers_text(params, ranges)
    if not sound:
        return Region(scenario.name, params.design.name, ranges, None, covers, False, None, None, None, max_steps,
                      time.perf_counter() - start, tuple(rejected), False, None, cti)
    # The weakest proved candidate: one that no other proved one strictly contains.
    best = sound[0]
    for cand in sound[1:]:
        s = solver()
        s.add(cand[1], z3.Not(best[1]))
        if check_known(s) == z3.sat:
            best = cand
    text, formula, pairs = best
    s = solver()
    s.add(formula)
    some_inside = check_known(s) == z3.sat
    s = solver()
    s.add(z3.Not(formula))
    whole = check_known(s) == z3.unsat
    outside = run = config = inside = None
    if not whole:
        model, edge = _just_outside(s, pairs)
        if model is not None:
            outside = enc.param_values(model)
        if edge and some_inside:
            inside = _neighbour_inside(enc, solver, formula, outside)
        if (edge and some_inside) or (model is not None and not ranges):
            # A point scenario outside the region is its own point outside: check it too.
            config = concrete_config(scenario.config, outside) if outside else scenario.config
            # Any reap of a valid session, as the proof excludes (a spacing close too).
            # Bound 8 first: a drop and a retry past the cutoff take 8 steps on the
            # Faye stack, found in 5 s at bound 8 and 29 s at bound 16 (measured).
            run = _certified_run(scenario_from_dict(config, scenario.source), REAPS, max_steps, seed, timeout_ms,
                                 no_valid_reap, first=8)
    return Region(scenario.name, params.design.name, ranges, text, covers, whole, outside, run, config, max_steps,
                  time.perf_counter() - start, tuple(rejected), some_inside, inside, cti,
                  _cut_by(params, run), formula, dict(enc.base))
