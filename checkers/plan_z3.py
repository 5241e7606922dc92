"""Plans for a configuration rollout with the solver: each candidate order proved over the scenario's ranges.

`checkers.plan` checks each candidate order at the scenario's point with the
exhaustive engine. Here each order is instead:

* **proved** safe (``no_valid_reap``) by the inductive invariant of
  `checkers.z3_proof` over the one-client system: any number of clients,
  unbounded time, and every parameter value of the scenario's ``[ranges]``
  at once (the point values where it has none);
* or **violated**, with parameter values the solver picked inside the
  ranges and a run at those values that the Python model replayed
  (`z3_bmc.certify` on the fleet `concrete_config` makes of them);
* or **inconclusive**: the invariant does not close (its counterexample to
  induction is named) and no run of at most the bound reaps a valid client.
  Never "holds" without a proof.

The candidates, their order and the proposal (the first order that holds)
are `checkers.plan`'s; only how each is decided differs.
"""

from __future__ import annotations

import time
from dataclasses import replace

import z3

from stormcheck import count
from stormcheck.model.scenario import Scenario, concrete_config, scenario_from_dict
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.run import ReplayError

from . import ROLLOUT_STEPS
from .plan import Candidate, PlanResult, moving_parts, orders_to_check
from .result import PropertyResult
from .z3_bmc import DEFAULT_TIMEOUT_MS, _cti_text, certify, make_solver, search
from .z3_encoding import Encoding
from .z3_proof import prove

__all__ = ["plan_symbolic", "decide_order", "with_phases"]


def with_phases(scenario: Scenario, phases) -> Scenario:
    """`scenario` with its rollout's phases replaced (config and params alike)."""
    params = replace(scenario.params, rollout=replace(scenario.params.rollout, phases=phases))
    config = dict(scenario.config, rollout=dict(scenario.config["rollout"], phases=[_phase_dict(p) for p in phases]))
    return replace(scenario, params=params, config=config)


def _phase_dict(phase) -> dict:
    keep = ("side", "part", "batch", "pace", "change") if phase.side == "servers" else ("side", "pickup", "spread")
    out = {k: getattr(phase, k) for k in keep}
    if phase.side == "clients" and phase.pickup != "release":
        del out["spread"]
    return out


def decide_order(scenario: Scenario, *, max_steps: int = ROLLOUT_STEPS, seed: int = 0,
                 timeout_ms: int = DEFAULT_TIMEOUT_MS) -> tuple[PropertyResult, dict, float]:
    """``no_valid_reap`` of `scenario`'s rollout as written, over its ``[ranges]``.

    Returns the result, the solver-picked parameter values of a
    counterexample (empty otherwise) and the seconds spent.
    """
    start = time.perf_counter()
    ranges, params = scenario.ranges, scenario.params
    threshold = scenario.config["load"]["threshold_ms"]
    make = lambda c: make_solver(seed, timeout_ms, ctx=c)  # noqa: E731
    proof = prove(params, no_valid_reap.name, make, ranges=ranges, threshold_ms=threshold)

    def result(verdict, basis, run=None):
        return PropertyResult(no_valid_reap.name, no_valid_reap.modality, verdict, basis, run)

    if proof.status == "proved":
        return result(Verdict.HOLDS, f"proved by an inductive invariant of {len(proof.lemmas)} lemmas: "
                                     f"{proof.covers}"), {}, time.perf_counter() - start
    ctx = z3.Context()
    enc = Encoding(params, ctx=ctx, ranges=ranges, threshold_ms=threshold)
    outcome = search(enc.init(), enc.trans, enc.bad, max_steps, make(ctx))
    if outcome.status == "found":
        values = enc.param_values(outcome.model)
        point = scenario_from_dict(concrete_config(scenario.config, values), scenario.source) if values else scenario
        try:
            run = certify(point.params, enc, outcome, no_valid_reap)
        except ReplayError as err:
            return result(Verdict.INCONCLUSIVE, f"the solver's {outcome.steps}-step path did not replay through "
                                                f"the model ({err}): encoding bug"), values, \
                time.perf_counter() - start
        # Without [ranges] the solver picked nothing: the run is at the file's own values.
        at = (f"{', '.join(f'{k}={v}' for k, v in values.items())} (z3 picked them in the ranges; replayed)"
              if ranges else "the scenario's point values (it has no [ranges]; replayed)")
        return result(Verdict.VIOLATED, f"certified counterexample of {count(len(run), 'step')} at {at}", run), values, \
            time.perf_counter() - start
    why = proof.reason if proof.status != "cti" else _cti_text(proof, params)
    found = "solver returned unknown" if outcome.status == "unknown" else "no counterexample"
    return result(Verdict.INCONCLUSIVE, f"not proved ({why}); {found} of <= {count(outcome.none_within, 'step')} "
                                        f"(z3 BMC)"), {}, time.perf_counter() - start


def plan_symbolic(scenario: Scenario, *, max_steps: int = ROLLOUT_STEPS, seed: int = 0, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  progress=None) -> PlanResult:
    """`checkers.plan.plan` with each candidate order decided by the solver over the scenario's ranges."""
    params = scenario.params
    if params.rollout is None:
        raise ValueError(f"scenario {scenario.name!r} has no [rollout]: there is nothing to plan")
    checked = []
    for phases in orders_to_check(params):
        prop, values, seconds = decide_order(with_phases(scenario, phases), max_steps=max_steps, seed=seed,
                                             timeout_ms=timeout_ms)
        checked.append(Candidate(phases, prop, 0, written=phases is params.rollout.phases, unit=params.unit,
                                 drawn=values, seconds=seconds))
        if progress is not None:
            progress(checked[-1].label(), prop)
    return PlanResult(scenario.name, moving_parts(params), tuple(checked))
