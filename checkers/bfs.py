"""The exhaustive engine: breadth-first search of the symmetry-reduced state graph.

It consumes the model (`initial_states`, `successors`, `canonical`) and the
properties, nothing else. States are expanded in order of depth, so the first
counterexample found for a property is a shortest one (in steps). A search
stops when every property is decided or its budget is spent; it claims
``holds`` for an ``always`` property only when the whole reachable graph was
explored.

The state graph can be kept as a `networkx.DiGraph` (``keep_graph=True``) for
analyses over cycles and components; the verdicts do not need it, and large
searches are cheaper without it.

Partial-order reduction (``reduce=True``; off by default, see `REDUCE`): in a
state where a due client's events commute with everything else that can
happen before they fire, only that client's events are expanded
(`stormcheck.checkers.por` states the conditions and proves C0-C3 for
``always`` and ``sometimes`` properties that are client-local). Symmetry
reduction stays: ample sets are chosen on canonical states by rules blind
to which client is which. The reduced graph may reach a finding a step or
more later than the full one; `check_bfs` takes verdicts from the reduced
search and each reported run from a full search bounded by the reduced
one's deepest finding, so runs stay shortest. It searches in full under a
depth bound, with a liveness property, or where `por.applies` says no.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from stormcheck import count
from stormcheck.model.fleet import actions, canonical, initial_states, successors
from stormcheck.model.params import Bounds, Params
from stormcheck.properties.core import ALWAYS, STATE, Property, Verdict
from stormcheck.traces.run import concretize

from . import por
from .lasso import LassoGraph, find_lasso
from .result import CheckResult, PropertyResult

if TYPE_CHECKING:  # imported on use (keep_graph): most searches keep no graph
    import networkx as nx

__all__ = ["check_bfs", "explore", "REDUCE"]

# Whether `check_bfs` reduces by default (where the reduction applies). Off:
# exact everywhere (tests/test_por.py), but on the benchmark's 3 x 3 fleets it
# removes under 1 % of the states (their states differ in the clients'
# timers and ages, not in the order of same-instant events) and costs the
# ample-set test in every state.
REDUCE = False


@dataclass
class _Search:
    seen: dict  # canonical state -> parent canonical state (None for roots)
    graph: nx.DiGraph | None
    transitions: int = 0
    depth: int = 0
    complete: bool = False
    cut_at_depth: bool = False  # some state at the depth bound was not expanded
    within_bound: bool = False  # every run up to the depth bound was explored
    reason: str = ""
    reduced: int = 0  # states expanded by an ample set alone (partial-order reduction)


def explore(
    params: Params,
    properties: tuple[Property, ...],
    budget: Bounds = Bounds(),
    *,
    keep_graph: bool = False,
    progress: Callable[[dict], None] | None = None,
    stop_when_decided: bool = True,
    on_edge: Callable | None = None,
    reduce: bool = False,
):
    """Search breadth-first; return the search and the findings per property.

    A finding is ``(pre_state, action, step)``; for a state property, the
    state itself with action and step None. ``on_edge(state, action, step,
    next_canonical)``, if given, sees every transition explored (the lasso
    search builds its subgraph from it).

    ``reduce=True`` searches the partial-order-reduced graph
    (`stormcheck.checkers.por`): the same verdicts for client-local
    properties, findings possibly deeper than the shortest. It needs an
    unbounded search that keeps no graph and sees no edges, and properties
    and a fleet it applies to (`por.applies`); otherwise it raises ValueError.
    """
    if reduce and (keep_graph or on_edge is not None or budget.max_depth or not por.applies(params, properties)):
        raise ValueError("partial-order reduction needs an unbounded search of client-local properties on a fleet "
                         "without rollout or moving load, keeping no graph: search without it")
    props_state = [p for p in properties if p.over == STATE]
    props_step = [p for p in properties if p.over != STATE]
    findings: dict[str, tuple] = {}
    roots = []
    for s in initial_states(params):
        c = canonical(params, s)
        if c not in roots:
            roots.append(c)
    search = _Search(seen=dict.fromkeys(roots), graph=None)
    if keep_graph:
        import networkx as nx

        search.graph = nx.DiGraph()
        search.graph.add_nodes_from(roots)
    queue = deque((r, 0) for r in roots)
    start = time.perf_counter()
    last_report = start
    seen = search.seen

    def decided() -> bool:
        return len(findings) == len(properties)

    # The properties still undecided, each with its predicate and whether a
    # False answer is the finding (a counterexample to an ``always``) or a
    # True one (a witness): `Property.interesting` unrolled, as this runs for
    # every transition.
    pending_state = [(p.name, p.check, p.modality == ALWAYS) for p in props_state]
    pending_step = [(p.name, p.check, p.modality == ALWAYS) for p in props_step]
    transitions = 0
    # The search allocates a few objects per transition and keeps most of
    # them: states are tuples of numbers and strings, which form no cycles,
    # so the cyclic garbage collector, run every few hundred allocations,
    # would only walk a growing heap to free nothing (about a sixth of the
    # search's time on the 3 x 3 fleet). Paused while searching, as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        while queue:
            state, depth = queue.popleft()
            if depth > search.depth:
                search.depth = depth
            if pending_state:
                for name, check, when_false in pending_state:
                    if (not check(params, state)) == when_false:
                        findings[name] = (state, None, None)
                pending_state = [p for p in pending_state if p[0] not in findings]
            if budget.max_depth and depth >= budget.max_depth:
                # A stated bound: runs longer than max_depth steps are not explored.
                search.cut_at_depth = True
                continue
            out_of_time = False
            for action, st in _expansion(params, state, search) if reduce else successors(params, state):
                transitions += 1
                # The time budget holds inside one expansion too: a state with a
                # million successors must not overrun it (the state's remaining
                # successors go unexplored, so the search is incomplete).
                if not transitions % 512 and time.perf_counter() - start >= budget.max_seconds:
                    out_of_time = True
                    break
                if pending_step:
                    found = False
                    for name, check, when_false in pending_step:
                        if (not check(params, state, action, st)) == when_false:
                            findings[name] = (state, action, st)
                            found = True
                    if found:
                        pending_step = [p for p in pending_step if p[0] not in findings]
                # Every state in `seen` is canonical, and canonical forms are
                # their own: a successor found there needs no canonical form.
                nxt = st.state
                if nxt not in seen:
                    nxt = canonical(params, nxt)
                if on_edge is not None:
                    on_edge(state, action, st, nxt)
                if search.graph is not None:
                    search.graph.add_edge(state, nxt)
                if nxt not in seen:
                    seen[nxt] = state
                    queue.append((nxt, depth + 1))
            if stop_when_decided and decided():
                search.reason = "every property decided"
                break
            now = time.perf_counter()
            if out_of_time:
                search.reason = f"time budget of {budget.max_seconds:g} s spent"
                break
            if len(seen) >= budget.max_states:
                search.reason = f"state budget of {budget.max_states:,} spent"
                break
            if now - start >= budget.max_seconds:
                search.reason = f"time budget of {budget.max_seconds:g} s spent"
                break
            if progress is not None and now - last_report >= 1.0:
                last_report = now
                progress({"states": len(seen), "transitions": transitions, "depth": depth,
                          "seconds": now - start, "queued": len(queue)})
        else:
            search.complete = not search.cut_at_depth
            search.within_bound = search.cut_at_depth
            search.reason = (f"every run of at most {count(budget.max_depth, 'step')} explored" if search.cut_at_depth
                             else "complete")
    finally:
        search.transitions = transitions
        if collecting:
            gc.enable()
    return search, findings


def _expansion(params: Params, state, search: _Search):
    """The steps the reduced search takes from `state`: one isolated due client's, else every one."""
    listed = actions(params, state)
    chosen = por.ample(params, state, listed)
    if chosen is None:
        return successors(params, state, listed)
    steps = list(successors(params, state, chosen))
    client = chosen[0].client
    if all(por.isolated_after(params, st.state, client) for _, st in steps):
        search.reduced += 1
        return steps
    done = dict(steps)
    return ((a, done[a]) if a in done else next(successors(params, state, [a])) for a in listed)


def _path_to(search: _Search, state) -> tuple[list, object]:
    """Canonical states from a root to `state`, root excluded."""
    path = []
    while search.seen[state] is not None:
        path.append(state)
        state = search.seen[state]
    path.reverse()
    return path, state


def check_bfs(
    params: Params,
    properties: tuple[Property, ...],
    *,
    scenario: str = "",
    budget: Bounds = Bounds(),
    progress: Callable[[dict], None] | None = None,
    measure_memory: bool = False,
    reduce: bool = REDUCE,
) -> CheckResult:
    """Exhaustively check `properties`; a verdict and a concrete run for each.

    With `reduce`, the search is partial-order reduced wherever that is exact
    (`por.applies`, no depth bound, no liveness property); every run it
    reports is then a shortest one, found by a full search bounded by the
    reduced search's finding (`stormcheck.checkers.por`, "Shortest
    counterexamples"). ``stats["reduction"]`` says which search ran.
    """
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    lassos = {p.name: LassoGraph(params, p) for p in properties if p.liveness}
    safety = tuple(p for p in properties if not p.liveness)

    def on_edge(*edge) -> None:
        for collected in lassos.values():
            collected.on_edge(*edge)

    # A lasso needs the whole graph, so with a liveness property the search
    # goes on after every other property is decided.
    reducing = reduce and not lassos and not budget.max_depth and por.applies(params, safety)
    search, findings = explore(params, safety, budget, progress=progress, stop_when_decided=not lassos,
                               on_edge=on_edge if lassos else None, reduce=reducing)
    sources = dict.fromkeys(findings, search)
    shortest = None
    if reducing and findings:
        shortest = _shortest(params, safety, search, findings, budget, time.perf_counter() - t0)
        for name, found in shortest[1].items():
            findings[name], sources[name] = found, shortest[0]
    live = {name: find_lasso(c, search, search.complete, len(search.seen)) for name, c in lassos.items()}
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if measure_memory else None
    if measure_memory:
        tracemalloc.stop()
    results = []
    states = len(search.seen)
    for prop in properties:
        if prop.name in live:
            results.append(live[prop.name])
        elif prop.name in findings:
            pre, action, st = findings[prop.name]
            run = _run_for(params, sources[prop.name], prop, pre, action, st)
            basis = f"found at depth {len(run)} after {states:,} states"
            results.append(PropertyResult(prop.name, prop.modality, prop.verdict_when_found(), basis, run))
        elif search.complete:
            basis = f"complete search: {states:,} states, {search.transitions:,} transitions"
            results.append(PropertyResult(prop.name, prop.modality, prop.verdict_when_exhausted(), basis))
        elif search.within_bound and prop.modality == "always":
            # Every run up to the stated depth bound was explored: the
            # property holds within that bound, and the basis says so.
            basis = f"bounded search: {search.reason} ({states:,} states)"
            results.append(PropertyResult(prop.name, prop.modality, Verdict.HOLDS, basis))
        else:
            basis = f"search stopped ({search.reason}) after {states:,} states"
            results.append(PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis))
    stats = {
        "states": states,
        "transitions": search.transitions,
        "depth": search.depth,
        "complete": search.complete,
        "depth_bound": budget.max_depth or None,
        "stopped": search.reason,
        "seconds": round(seconds, 3),
        "states_per_second": round(states / seconds) if seconds else None,
        "reduction": "partial-order" if reducing else "none",
    }
    if reducing:
        stats["reduced_states"] = search.reduced
        stats["shortest_search_states"] = len(shortest[0].seen) if shortest else 0
    if peak is not None:
        stats["peak_bytes"] = peak
    return CheckResult("exhaustive", scenario, params.design.name, tuple(results), stats)


def _shortest(params, properties, search: _Search, findings: dict, budget: Bounds, spent: float):
    """The full search for shortest runs of what the reduced `search` found: bounded by its deepest finding.

    Breadth-first to that depth, it finds each property's shortest run (a
    run the reduced search found is a run of the full graph, so one exists
    within the bound). Returns the search and its findings; a property it
    did not reach within the time left keeps the reduced search's run.
    """
    found = tuple(p for p in properties if p.name in findings)
    depth = max(len(_path_to(search, pre)[0]) + (action is not None or st is not None)
                for pre, action, st in findings.values())
    bounds = Bounds(max_states=budget.max_states, max_seconds=max(budget.max_seconds - spent, 0), max_depth=depth)
    return explore(params, found, bounds)


def _run_for(params, search, prop, pre, action, st):
    path, root = _path_to(search, pre)
    if action is None:
        return concretize(params, root, path)
    target = canonical(params, st.state)
    last = lambda s, a, x: prop.interesting(params, s, a, x)  # noqa: E731 - the final step must be the finding
    return concretize(params, root, path + [target], last=last)
