"""Liveness in the exhaustive engine: lassos through the state graph.

An ``eventually-always`` property is violated by an infinite run that, from
some point on, takes no excluded step (for `storm_subsides`: no fault, none
in progress) and still takes bad steps (reconnects) again and again. In a
finite state graph such a run exists exactly when a strongly connected
component of the graph of non-excluded steps is reachable and has a bad
step inside it (`networkx.strongly_connected_components`). The run shown is
a lasso: the shortest prefix the breadth-first search knows to the
component, then a cycle inside it through a bad step, repeated until a turn
ends in a concrete state an earlier turn ended in (symmetry reduction may
bring the cycle back to a state that differs only by which client or server
is which; the loop then spans those turns).

The cycle is a behaviour the protocol allows, with the model's choices
(which server the load balancer picks, when a loaded server's adjuster
moves) made against the fleet: it shows that the feedback loop exists, not
how often a real load balancer would close it. `model.storm` measures that.

A cycle found in a partial graph is a real cycle: ``violated`` stands even
when the search was cut short. ``holds`` needs the whole graph (no budget
spent, no depth bound); otherwise the verdict is inconclusive.
"""

from __future__ import annotations

from stormcheck.model.params import Params
from stormcheck.properties.core import Property, Verdict
from stormcheck.traces.run import ReplayError, Run, concretize

from .result import PropertyResult

__all__ = ["LassoGraph", "find_lasso"]

# How many turns of the cycle may be needed to close it exactly: the states
# a turn can end in are permutations of one state, at most 8! of them.
_MAX_TURNS = 40_320


class LassoGraph:
    """Collects, during one search, the steps a liveness property cares about.

    Pass `on_edge` to `checkers.bfs.explore`. Only non-excluded steps are
    kept, each edge labelled with whether one of its steps is bad.
    """

    def __init__(self, params: Params, prop: Property) -> None:
        import networkx as nx  # on use: a search without liveness properties need not load it

        self.params, self.prop = params, prop
        self.graph = nx.DiGraph()

    def on_edge(self, state, action, step, nxt) -> None:
        if self.prop.exclude(self.params, state, action, step):
            return
        bad = not self.prop.check(self.params, state, action, step)
        if self.graph.has_edge(state, nxt):
            self.graph[state][nxt]["bad"] |= bad
        else:
            self.graph.add_edge(state, nxt, bad=bad)


def find_lasso(collected: LassoGraph, search, complete: bool, states: int) -> PropertyResult:
    """The verdict for the collected property, with a lasso when violated.

    `search` is the `checkers.bfs` search whose parent links give the
    shortest prefix to each state. Every choice (which component, which
    entry, which bad step) is by breadth-first discovery order, never by
    set order, so the lasso is the same on every run.
    """
    import networkx as nx

    params, prop, g = collected.params, collected.prop, collected.graph
    order = {state: i for i, state in enumerate(search.seen)}  # BFS order: by depth, then discovery
    best = None
    for component in nx.strongly_connected_components(g):
        sub = g.subgraph(component)
        bad = [(u, v) for u, v, d in sub.edges(data=True) if d["bad"]]
        if not bad:
            continue
        entry = min(component, key=order.__getitem__)
        if best is None or order[entry] < order[best[0]]:
            best = (entry, component, min(bad, key=lambda e: (order[e[0]], order[e[1]])))
    if best is None:
        if complete:
            return PropertyResult(prop.name, prop.modality, Verdict.HOLDS,
                                  f"complete search ({states:,} states): no reachable cycle of fault-free "
                                  "steps contains a bad step")
        return PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE,
                              f"no lasso among the {states:,} states explored; only a complete search can "
                              "show there is none")
    entry, component, bad = best
    run = _lasso_run(params, prop, search, g.subgraph(component), entry, bad)
    cycle = len(run) - run.loop
    basis = (f"lasso: {run.loop}-step prefix, then a {cycle}-step cycle with no fault that repeats forever "
             f"(strongly connected component of {len(component):,} states, {states:,} states explored)")
    return PropertyResult(prop.name, prop.modality, Verdict.VIOLATED, basis, run)


def _lasso_run(params, prop, search, component, entry, bad_edge) -> Run:
    import networkx as nx

    prefix = []
    root = entry
    while search.seen[root] is not None:
        prefix.append(root)
        root = search.seen[root]
    prefix.reverse()
    u, v = bad_edge
    to_u = nx.shortest_path(component, entry, u)[1:]
    cycle = to_u + [v]
    cycle += nx.shortest_path(component, v, entry)[1:]
    if cycle[-1] != entry:  # a self-loop on the entry: u == v == entry
        cycle.append(entry)
    bad_at = len(to_u) + 1  # the step over the bad edge, counted within one turn

    def accept(i, state, action, step):
        # A turn's steps must be the collected kind: not excluded, and the
        # step over the bad edge bad.
        if prop.exclude(params, state, action, step):
            return False
        return i != bad_at or not prop.check(params, state, action, step)

    try:
        run = concretize(params, root, prefix)
        # Turn by turn: each ends in a state of the entry's class, a
        # permutation of the first. The orbit is finite, so some turn ends in
        # a state an earlier turn ended in: the loop goes back there.
        ends = {run.states[-1]: len(run)}
        steps = list(run.steps)
        for _ in range(_MAX_TURNS):
            turn = concretize(params, steps[-1][1].state if steps else root, cycle, accept=accept)
            steps.extend(turn.steps)
            end = turn.states[-1]
            if end in ends:
                return Run(root, tuple(steps), loop=ends[end])
            ends[end] = len(steps)
    except ReplayError:
        raise RuntimeError("the lasso found in the reduced graph does not concretize") from None
    raise RuntimeError("the lasso's cycle did not close within the permutation bound")


def lasso_problem(params: Params, prop: Property, run: Run) -> str | None:
    """Why `run` is not a closed lasso whose cycle violates `prop`; None when it is.

    The cycle must close (last state = the loop's first), take no excluded
    step, and take at least one bad step: what a replay of a stored lasso
    re-checks.
    """
    loop = run.loop
    if loop is None or loop >= len(run) or run.states[-1] != run.states[loop]:
        return f"it is no lasso: its last state is not state {loop}"
    states = run.states
    cycle = [(states[i], *run.steps[i]) for i in range(loop, len(run))]
    if any(prop.exclude(params, pre, action, st) for pre, action, st in cycle):
        return f"its cycle takes a step {prop.name} excludes"
    if all(prop.check(params, pre, action, st) for pre, action, st in cycle):
        return f"its cycle no longer violates {prop.name}"
    return None
