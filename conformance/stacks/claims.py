"""What the model claims about a stack scenario, computed now (never copied from a file).

Each conformance run is held to one claim:

* ``free-run``: ``no_valid_reap`` of the scenario (no healthy client dropped);
* ``frozen-client``: ``dead_session_reaped`` (a silent client is dropped) and
  the cutoff the model applies, ``m x T + k x I`` of configuration A
  (`Params.cutoff`), in model seconds;
* ``rollout-as-written``: ``no_valid_reap`` with the phases as the file gives them;
* ``rollout-planned``: ``stormcheck plan``'s proposal (the first candidate
  order that holds) and its verdict; no proposal: the written order, violated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.plan import plan
from stormcheck.model.params import Params
from stormcheck.model.rollout import Phase
from stormcheck.model.scenario import Scenario
from stormcheck.properties.protocol import dead_session_reaped, no_valid_reap

__all__ = ["Claim", "free_run_claim", "frozen_claim", "rollout_claim", "planned_phases", "cutoff"]


@dataclass(frozen=True)
class Claim:
    """The model's verdict for one run ("holds"/"violated"/"inconclusive") and what it rests on."""

    verdict: str
    basis: str
    phases: tuple[Phase, ...] = ()
    cutoff: Fraction | None = None  # model seconds, frozen-client runs only


def cutoff(params: Params, level: int = 0) -> Fraction:
    """The judge's cutoff at `level` (0: A), in model seconds: the one the frozen control meets."""
    return params.cutoff("gc", level)


def _verdict(params: Params, scenario: Scenario, prop) -> tuple[str, str]:
    result = check_bfs(params, (prop,), scenario=scenario.name, budget=scenario.bounds).get(prop.name)
    return str(result.verdict), result.basis


def free_run_claim(scenario: Scenario) -> Claim:
    params = replace(scenario.params, rollout=None)
    return Claim(*_verdict(params, scenario, no_valid_reap))


def frozen_claim(scenario: Scenario) -> Claim:
    params = replace(scenario.params, rollout=None)
    verdict, basis = _verdict(params, scenario, dead_session_reaped)
    return Claim(verdict, basis, cutoff=cutoff(params))


def rollout_claim(scenario: Scenario, phases: tuple[Phase, ...] | None = None) -> Claim:
    params = scenario.params
    if phases is not None:
        params = replace(params, rollout=replace(params.rollout, phases=phases))
    return Claim(*_verdict(params, scenario, no_valid_reap), phases=params.rollout.phases)


def planned_phases(scenario: Scenario) -> Claim:
    """The order `stormcheck plan` proposes, with its verdict (the written order if none holds)."""
    result = plan(scenario.params, scenario=scenario.name, budget=scenario.bounds)
    chosen = result.proposal or result.candidates[0]
    return Claim(str(chosen.verdict), chosen.result.basis, phases=chosen.phases)
