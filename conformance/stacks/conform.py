"""A stack scenario's runs on the real library, each beside the model's claim for it.

`runs_for` names the runs a scenario is held to (a stack preset: ``free-run``
and ``frozen-client``; a rollout: ``rollout-as-written`` and
``rollout-planned``; a proxy scenario: ``proxy-idle``); `conform` runs them
(concurrently: they only wait on timers) and returns one `Result` each.
A result *reproduces* when the real verdict is the model's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from stormcheck.conformance import STACK_RUN_KINDS
from stormcheck.model.scenario import Scenario

from . import STACKS
from .claims import Claim, free_run_claim, frozen_claim, planned_phases, rollout_claim
from .harness import levels
from .runs import RefusedRun, check_expressible, free_run, frozen_client, rollout, spacing_run

__all__ = ["Result", "RUN_KINDS", "held", "scale_of", "stack_of", "runs_for", "conform", "NotAStack"]

RUN_KINDS = STACK_RUN_KINDS


class NotAStack(ValueError):
    """The scenario is not one of the stacks with a real implementation here."""


@dataclass(frozen=True)
class Result:
    stack: str
    scenario: str
    run: str
    model: str
    real: str
    detail: str
    wall_seconds: float
    phases: str = ""
    observed: float | None = None  # frozen-client: model s from connect to the judge's close
    cutoff: float | None = None  # frozen-client: the model's cutoff, model s
    tolerance: tuple[float, float] | None = None

    @property
    def reproduced(self) -> bool:
        return self.model == self.real


def _key(scenario: Scenario) -> str:
    """The name a stack lists it by: ``stacks/NAME``, ``rollouts/NAME`` or a repo-relative path."""
    src = scenario.source
    if src.startswith("preset:"):
        return src[len("preset:"):]
    path = Path(src).resolve()
    root = Path(__file__).resolve().parents[2]
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return src


def held(stack) -> tuple[str, ...]:
    """Every scenario `stack`'s real library is held to: its preset, rollouts, proxy scenarios and variants."""
    names = (stack.preset, *stack.rollouts, *getattr(stack, "scenarios", ()), *getattr(stack, "variants", ()))
    return tuple(n for n in names if n)


def stack_of(scenario: Scenario):
    """The stack whose real library runs `scenario` (by its preset, rollout or scenario file)."""
    key = _key(scenario)
    for stack in STACKS.values():
        if key in held(stack):
            return stack
    known = sorted(k for s in STACKS.values() for k in held(s))
    raise NotAStack(f"{scenario.source}: not a stack scenario with a real implementation here; "
                    f"these run on real libraries: {', '.join(known)}")


def scale_of(stack, scenario: Scenario) -> float:
    """Real seconds per model second for `scenario` on `stack`: its own, or one fitted to a lower bound's keepalive."""
    if scenario.params.heartbeat.min_spacing and hasattr(stack, "scale_for"):
        return stack.scale_for(levels(scenario.params)[0].interval)
    return stack.scale


def runs_for(scenario: Scenario) -> tuple[str, ...]:
    stack = stack_of(scenario)
    key = _key(scenario)
    if key in getattr(stack, "scenarios", ()):
        return ("proxy-idle",)
    if scenario.params.rollout is not None:
        return ("rollout-as-written", "rollout-planned")
    return getattr(stack, "preset_runs", ("free-run", "frozen-client"))


def _one(stack, scenario: Scenario, run: str, seconds: float | None) -> Result:
    params = scenario.params
    if run == "free-run" and params.heartbeat.min_spacing:
        # A lower bound: one healthy client against the server's minimum spacing,
        # its keepalive put on the stack's floor (a model second as a fraction of a real one).
        claim = free_run_claim(scenario)
        client = levels(params)[0]
        hb = params.heartbeat
        out = spacing_run(stack.at_scale(scale_of(stack, scenario)), params, client, hb.min_spacing,
                          hb.strikes, pings=hb.strikes + 4)
        return Result(stack.stack, _key(scenario), run, claim.verdict, out.real, out.detail, out.seconds)
    if run in ("free-run", "proxy-idle"):
        claim = free_run_claim(scenario)
        if run == "proxy-idle" and seconds is None:
            seconds = max(150.0, 3.0 * next(j.timeout for j in params.judges if j.side == "proxy"))
        out = free_run(stack, params, seconds)
        return Result(stack.stack, _key(scenario), run, claim.verdict, out.real, out.detail, out.seconds)
    if run == "frozen-client":
        claim = frozen_claim(scenario)
        out = frozen_client(stack, params)
        lo, hi = stack.tolerance_for(levels(params)[0])
        cut = float(claim.cutoff)
        real, detail = out.real, out.detail
        if out.observed is not None and not cut - lo <= out.observed <= cut + hi:
            real = "violated"
            detail += f"; outside the model's cutoff {cut:g} model s (-{lo:g}/+{hi:g})"
        return Result(stack.stack, _key(scenario), run, claim.verdict, real, detail, out.seconds,
                      observed=out.observed, cutoff=cut, tolerance=(lo, hi))
    claim: Claim = rollout_claim(scenario) if run == "rollout-as-written" else planned_phases(scenario)
    out = rollout(stack, params, claim.phases)
    label = "; ".join(f"{i}. {p.label()}" for i, p in enumerate(claim.phases, 1))
    return Result(stack.stack, _key(scenario), run, claim.verdict, out.real, out.detail, out.seconds, phases=label)


def conform(scenario: Scenario, runs: tuple[str, ...] | None = None, seconds: float | None = None) -> list[Result]:
    """Run `runs` (default: every run of the scenario) on its stack's real library, side by side."""
    stack = stack_of(scenario)
    wanted = runs_for(scenario)
    runs = runs or wanted
    for run in runs:
        if run not in wanted:
            raise RefusedRun(f"{scenario.source}: run {run!r} does not apply; this scenario's runs are "
                             f"{', '.join(wanted)}")
    if scenario.params.rollout is not None:
        # Refuse what the real stack cannot express before anything starts.
        check_expressible(stack, scenario.params.rollout.phases)
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = [pool.submit(_one, stack, scenario, run, seconds) for run in runs]
        return [f.result() for f in futures]
