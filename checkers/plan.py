"""Plans for a configuration rollout: the orders that reach B without reaping a valid client.

A rollout (`stormcheck.model.rollout`) moves up to three parts of a fleet from
configuration A to B: the servers' *judge* (the cutoff their reapers apply),
the servers' *advice* (what they hold, advise and send) and the *clients*
(their own interval or cutoff, where the stack lets them set one). Which parts
matter is a property of the stack (`Heartbeat`): a part nothing reads is left
out of every candidate.

`candidate_orders` lists every order of the parts that matter, each part moved
once, with the servers' judge and advice moved by one restart where they are
adjacent; shorter orders (fewer restart passes) come first. `plan` checks each
candidate with the exhaustive engine, under the scenario's own pace, batch
and pick-up settings, and proposes the first that holds. It never proposes an
order whose search did not finish: an inconclusive candidate is reported as
such, and if no candidate holds the plan says there is none (or that it could
not tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import permutations
from typing import Callable

from stormcheck.model.params import Params
from stormcheck.model.rollout import Phase, Rollout, describe_phases
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import no_valid_reap

from . import points_only
from .bfs import check_bfs
from .result import PropertyResult

__all__ = ["Candidate", "PlanResult", "moving_parts", "candidate_orders", "plan"]


@dataclass(frozen=True)
class Candidate:
    """One order of phases and what checking it gave."""

    phases: tuple[Phase, ...]
    result: PropertyResult
    states: int
    written: bool = False  # the order the scenario file gives
    unit: str = "s"  # of the phases' paces and spreads (`Params.unit`)
    drawn: dict = field(default_factory=dict, hash=False)  # the solver's parameter values of a counterexample
    seconds: float = 0.0  # what deciding it took (the symbolic plan; `checkers.plan_z3`)
    finished: bool = True  # its search finished (the exhaustive plan: not stopped by the budget)

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    def label(self) -> str:
        return describe_phases(self.phases, self.unit)


@dataclass(frozen=True)
class PlanResult:
    """Every candidate checked, in order, and the proposal (None: no safe order found)."""

    scenario: str
    parts: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    # A scenario with [ranges] the plan did not search (it checked the point values): the stats
    # `checkers.points_only` gives (ranges, ranges_searched, ranges_searched_by); empty otherwise.
    ranges: dict = field(default_factory=dict)

    @property
    def proposal(self) -> Candidate | None:
        return next((c for c in self.candidates if c.verdict == Verdict.HOLDS), None)

    @property
    def verdict(self) -> Verdict:
        """holds: a safe order exists; violated: every candidate reaps; inconclusive otherwise."""
        if self.proposal is not None:
            return Verdict.HOLDS
        if any(c.verdict == Verdict.INCONCLUSIVE for c in self.candidates):
            return Verdict.INCONCLUSIVE
        return Verdict.VIOLATED


def moving_parts(params: Params) -> tuple[str, ...]:
    """The parts of the fleet whose move from A to B the stack's rules can tell apart.

    ``judge`` when a server's own cutoff judges sessions, ``advice`` when the
    servers' configuration sets the interval or the hold, ``clients`` when the
    client sets its own interval or cutoff.
    """
    hb = params.heartbeat
    parts = []
    if hb.cutoff_from == "server":
        parts.append("judge")
    if hb.interval_from in ("server", "handshake") or hb.hold == "timeout":
        parts.append("advice")
    if hb.client_owned:
        parts.append("clients")
    return tuple(parts)


def _template(rollout: Rollout, side: str) -> Phase:
    """The scenario's own pace/batch (servers) or pick-up (clients) settings for `side`."""
    return next((p for p in rollout.phases if p.side == side), Phase(side))


def candidate_orders(params: Params) -> list[tuple[Phase, ...]]:
    """Every order in which the parts that matter can move, fewest phases first.

    Examples
    --------
    >>> from stormcheck.model.scenario import load_scenario
    >>> params = load_scenario("rollouts/phoenix-heartbeat-90").params
    >>> [describe_phases(c) for c in candidate_orders(params)]  # doctest: +NORMALIZE_WHITESPACE
    ['1. servers to B, 1 at a time every 30s; 2. clients to B by a release over 120s',
     '1. clients to B by a release over 120s; 2. servers to B, 1 at a time every 30s']
    """
    rollout = params.rollout
    servers, clients = _template(rollout, "servers"), _template(rollout, "clients")
    parts = moving_parts(params)
    split = {"judge", "advice"} <= set(parts)  # else one restart moves what matters
    orders: list[tuple[Phase, ...]] = []
    for order in permutations(parts):
        for merge in (True, False):
            phases: list[Phase] = []
            for part in order:
                if part == "clients":
                    phases.append(clients)
                elif not split:
                    phases.append(replace(servers, part="both"))
                elif merge and phases and phases[-1].side == "servers":
                    phases[-1] = replace(servers, part="both")  # judge and advice in one restart
                else:
                    phases.append(replace(servers, part=part))
            if tuple(phases) not in orders:
                orders.append(tuple(phases))
    if servers.change == "live":
        # A live change leaves open sockets with their handshake's values; a
        # restart hands every client the new ones. Try restarts after.
        orders += [tuple(replace(p, change="restart") if p.side == "servers" else p for p in o) for o in orders]
    # Stable: among orders of the same length, the order permutations gave.
    return sorted(orders, key=len)


def orders_to_check(params: Params) -> list[tuple[Phase, ...]]:
    """The written order first, then every other candidate order (`candidate_orders`)."""
    if params.rollout is None:
        raise ValueError("this scenario has no [rollout]: there is nothing to plan")
    written = params.rollout.phases
    return [written, *(o for o in candidate_orders(params) if o != written)]


def plan(
    params: Params,
    *,
    scenario: str = "",
    budget=None,
    progress: Callable[[str, PropertyResult], None] | None = None,
    ranges: dict | None = None,
    watch: Callable[[int, int], Callable[[dict], None] | None] | None = None,
) -> PlanResult:
    """Check the written order and every candidate order; propose the first that holds.

    Parameters
    ----------
    params : Params
        A fleet with a rollout (`Params.rollout`).
    budget : Bounds, optional
        The search budget of each candidate (the scenario's).
    progress : callable, optional
        Called with each candidate's label and result as it is decided.
    ranges : dict, optional
        The scenario's ``[ranges]``, which this search does not cover: each
        candidate is then judged at the point values only, as `check` judges
        them (`checkers.points_only`): an order that holds there is
        inconclusive, never proposed as safe for every value.
    watch : callable, optional
        Called with a candidate's number and the number of candidates as its search starts; what it
        returns gets that search's progress reports (`check_bfs`'s `progress`), about once a second.
    """
    if params.rollout is None:
        raise ValueError(f"scenario {scenario!r} has no [rollout]: there is nothing to plan")
    checked, stats = [], {}
    orders = orders_to_check(params)
    for number, phases in enumerate(orders, 1):
        fleet = replace(params, rollout=replace(params.rollout, phases=phases))
        kwargs = {"budget": budget} if budget is not None else {}
        on_search = watch(number, len(orders)) if watch is not None else None
        result = check_bfs(fleet, (no_valid_reap,), scenario=scenario, progress=on_search, **kwargs)
        finished = result.get(no_valid_reap.name).verdict != Verdict.INCONCLUSIVE
        if ranges:
            result = points_only(result, ranges)
            stats = {k: result.stats[k] for k in ("ranges", "ranges_searched", "ranges_searched_by")}
        prop = result.get(no_valid_reap.name)
        checked.append(Candidate(phases, prop, result.stats["states"], written=phases is params.rollout.phases,
                                 unit=params.unit, finished=finished))
        if progress is not None:
            progress(describe_phases(phases, params.unit), prop)
    return PlanResult(scenario, moving_parts(params), tuple(checked), ranges=stats)
