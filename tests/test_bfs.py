"""Tests for the exhaustive engine (checkers/bfs.py, checkers/result.py).

Verdicts per named design on the gitter-like fleet (3 servers, 1 client, base
level and the 40 s level, one server loss and one client crash), shortest
counterexamples proved against networkx, pinned state counts, seeded bugs
that must be caught, honest verdicts under budgets, and the soundness of the
symmetry reduction.
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import pytest

from stormcheck.checkers import bfs
from stormcheck.checkers.bfs import check_bfs, explore
from stormcheck.model import fleet
from stormcheck.model.events import Adjusted, Reaped
from stormcheck.model.fleet import canonical, initial_states, successors
from stormcheck.model.params import DESIGNS, Bounds, Faults, Level, Params, adjuster_advice
from stormcheck.model.state import HELD, RETRY, WAITING, Step
from stormcheck.properties.core import ALWAYS, SOMETIMES, STEP, Property, Verdict
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap
from stormcheck.traces import run as trace_run
from stormcheck.traces.run import replay

HIGH = Level(40_000, *adjuster_advice(40_000, 45, 1))  # (101, 15)
FAULTS = Faults(server_loss=1, client_crash=1)


def gitter(design: str, **overrides) -> Params:
    kw = dict(servers=3, clients=1, levels=(Level(0, 45, 1), HIGH), design=DESIGNS[design], faults=FAULTS)
    kw.update(overrides)
    return Params(**kw)


def assert_reaps_a_valid_client(params: Params, run) -> None:
    """Replay `run` with the model's own `step` and check its last step really is a violation."""
    replayed = replay(params, run.initial, run.actions, expected=run.states)
    assert replayed.states == run.states
    assert canonical(params, run.initial) in {canonical(params, s) for s in initial_states(params)}
    pre = replayed.states[-2]
    action, st = replayed.steps[-1]
    assert not no_valid_reap.check(params, pre, action, st)
    victims = [e for e in st.events if isinstance(e, Reaped)]
    assert any(pre.clients[e.client].phase in (HELD, WAITING, RETRY) for e in victims), victims


# ---------------------------------------------------------------- verdicts per design


@pytest.mark.parametrize("name", ["off", "fleet-wide-staged", "per-session"])
def test_safe_designs_hold_by_complete_search(name):
    params = gitter(name)
    result = check_bfs(params, PROPERTIES)
    nvr = result.get("no_valid_reap")
    assert nvr.verdict is Verdict.HOLDS
    assert nvr.basis.startswith("complete search") and nvr.run is None
    assert result.stats["complete"] is True
    assert result.get("parameter_agreement").verdict is Verdict.HOLDS
    # not vacuous: a dead session is reaped, and a reconnect happens
    for name_ in ("dead_session_reaped", "rehandshake_reachable"):
        witness = result.get(name_)
        assert witness.verdict is Verdict.HOLDS and witness.run is not None
    assert result.verdict is Verdict.HOLDS


@pytest.mark.parametrize("name, length", [("per-server", 12), ("fleet-wide", 13), ("per-session-branch", 12)])
def test_unsafe_designs_are_violated_with_a_replayable_run(name, length):
    params = gitter(name)
    result = check_bfs(params, PROPERTIES)
    nvr = result.get("no_valid_reap")
    assert nvr.verdict is Verdict.VIOLATED
    assert nvr.basis.startswith(f"found at depth {length} after")
    assert len(nvr.run) == length
    assert_reaps_a_valid_client(params, nvr.run)
    assert result.verdict is Verdict.VIOLATED


# ---------------------------------------------------------------- shortest counterexample


def test_counterexample_is_a_shortest_path_in_the_state_graph():
    params = gitter("per-server")
    run = check_bfs(params, (no_valid_reap,)).get("no_valid_reap").run
    # The whole reachable graph, same properties, not stopping at the finding.
    search, findings = explore(params, (no_valid_reap,), keep_graph=True, stop_when_decided=False)
    assert search.complete and "no_valid_reap" in findings
    graph = search.graph
    assert graph.number_of_nodes() == len(search.seen)
    roots = [s for s, parent in search.seen.items() if parent is None]
    dist = nx.multi_source_dijkstra_path_length(graph, roots)  # unit weights: BFS distances

    pre = canonical(params, run.states[-2])
    assert len(run) == dist[pre] + 1
    # And no violating step leaves any state closer to a root.
    closest = min(
        dist[state]
        for state in graph.nodes
        if any(no_valid_reap.interesting(params, state, a, st) for a, st in successors(params, state))
    )
    assert len(run) == closest + 1
    # Every step of the run is an edge of the reduced graph.
    path = [canonical(params, s) for s in run.states]
    assert all(graph.has_edge(u, v) for u, v in zip(path, path[1:]))


# ---------------------------------------------------------------- pinned state counts


@pytest.mark.parametrize(
    "name, states, transitions, depth",
    [
        # A change in these numbers is a change in the model's semantics or in
        # its reductions (time abstraction, symmetry, dead fields, due-event
        # order): it must be explained in the commit that makes it.
        ("off", 163, 474, 14),
        ("per-session", 303, 926, 17),
    ],
)
def test_pinned_state_counts(name, states, transitions, depth):
    search, _ = explore(gitter(name), (), stop_when_decided=False)
    assert search.complete
    assert (len(search.seen), search.transitions, search.depth) == (states, transitions, depth)


# ---------------------------------------------------------------- seeded bugs


def test_seeded_bug_reaper_ignoring_the_multiplier_is_caught():
    # Cutoff 1 x T: a client held for T = 45 reaches age 45 >= 45 at the end
    # of its first hold, and the publish path of any server reaps it.
    buggy = gitter("off", publish_mult=Fraction(1), gc_mult=Fraction(1))
    result = check_bfs(buggy, (no_valid_reap,))
    nvr = result.get("no_valid_reap")
    assert nvr.verdict is Verdict.VIOLATED
    assert result.stats["states"] < 5_000  # found after 14 states
    assert [a.kind for a in nvr.run.actions] == ["tick", "publish"]
    reaped = nvr.run.steps[-1][1].events[0]
    assert (reaped.path, reaped.age, reaped.timeout, reaped.cutoff) == ("publish", 45, 45, "45")
    assert_reaps_a_valid_client(buggy, nvr.run)
    # The real multipliers on the same fleet: safe.
    assert check_bfs(gitter("off"), (no_valid_reap,)).get("no_valid_reap").verdict is Verdict.HOLDS


def test_seeded_bug_client_skipping_a_refresh_is_caught(monkeypatch):
    params = gitter("off")
    assert check_bfs(params, (no_valid_reap,)).get("no_valid_reap").verdict is Verdict.HOLDS

    honest = fleet._APPLY["reply"]

    def lazy_reply(params, state, action):
        # The client sits out one refresh: it waits T longer than advised.
        st = honest(params, state, action)
        cl = st.state.clients[action.client]
        late = params.levels[fleet.reply_level(params, state, action.client)].timeout
        clients = list(st.state.clients)
        clients[action.client] = cl._replace(timer=cl.timer + late)
        return Step(st.state._replace(clients=tuple(clients)), st.events)

    monkeypatch.setitem(fleet._APPLY, "reply", lazy_reply)
    result = check_bfs(params, (no_valid_reap,))
    nvr = result.get("no_valid_reap")
    assert nvr.verdict is Verdict.VIOLATED
    assert result.stats["states"] < 5_000  # found after 40 states
    # held 45, answered, waits 1 + 45: its connect arrives at age 91 >= 72
    assert [a.kind for a in nvr.run.actions] == ["tick", "reply", "tick", "arrive"]
    assert nvr.run.steps[-1][1].events[0].age == 91
    assert_reaps_a_valid_client(params, nvr.run)


# ---------------------------------------------------------------- budgets


def test_a_state_budget_never_gives_holds():
    result = check_bfs(gitter("off"), PROPERTIES, budget=Bounds(max_states=50))
    assert result.stats["complete"] is False
    for prop in result.properties:
        if prop.modality == ALWAYS:
            assert prop.verdict is Verdict.INCONCLUSIVE
            assert "state budget of 50 spent" in prop.basis
    assert result.verdict is Verdict.INCONCLUSIVE


def test_a_time_budget_never_gives_holds():
    result = check_bfs(gitter("per-session"), PROPERTIES, budget=Bounds(max_seconds=0))
    assert result.get("no_valid_reap").verdict is Verdict.INCONCLUSIVE
    assert "time budget of 0 s spent" in result.get("no_valid_reap").basis


def _load_rises(params, pre, action, st) -> bool:
    return any(isinstance(e, Adjusted) for e in st.events)


LOAD_RISES = Property("load_rises", SOMETIMES, STEP, _load_rises, "Some server's adjuster moves.")


def test_a_depth_bound_is_stated_in_the_basis():
    # per-server: no_valid_reap is first violated at step 12, parameter
    # agreement at 8; a load move needs lose, tick, reconnect first (step 4).
    params = gitter("per-server")
    props = (*PROPERTIES, LOAD_RISES)
    result = check_bfs(params, props, budget=Bounds(max_depth=3))
    assert result.stats["complete"] is False and result.stats["depth_bound"] == 3
    for name in ("no_valid_reap", "parameter_agreement"):
        prop = result.get(name)
        assert prop.verdict is Verdict.HOLDS
        assert prop.basis.startswith("bounded search: every run of at most 3 steps explored")
    unmet = result.get("load_rises")
    assert unmet.verdict is Verdict.INCONCLUSIVE and unmet.run is None
    # sometimes properties with a witness within the bound hold by it
    assert result.get("dead_session_reaped").verdict is Verdict.HOLDS
    assert len(result.get("dead_session_reaped").run) <= 3


def test_a_depth_bound_covers_runs_of_exactly_that_length():
    params = gitter("per-server")
    just_short = check_bfs(params, (no_valid_reap,), budget=Bounds(max_depth=11)).get("no_valid_reap")
    assert just_short.verdict is Verdict.HOLDS and "at most 11 steps" in just_short.basis
    long_enough = check_bfs(params, (no_valid_reap,), budget=Bounds(max_depth=12)).get("no_valid_reap")
    assert long_enough.verdict is Verdict.VIOLATED and len(long_enough.run) == 12


def test_a_depth_bound_beyond_the_graph_is_a_complete_search():
    result = check_bfs(gitter("off"), (no_valid_reap,), budget=Bounds(max_depth=100))
    assert result.stats["complete"] is True
    assert result.get("no_valid_reap").basis.startswith("complete search")


# ---------------------------------------------------------------- symmetry reduction


def _without_symmetry(monkeypatch) -> None:
    # The engine reduces through checkers.bfs.canonical; the runs it reports
    # are rebuilt through traces.run.canonical. Both must go.
    identity = lambda params, state: state  # noqa: E731
    monkeypatch.setattr(bfs, "canonical", identity)
    monkeypatch.setattr(trace_run, "canonical", identity)


def test_symmetry_reduction_keeps_every_verdict(monkeypatch):
    params = gitter("per-server", clients=2)
    reduced = check_bfs(params, PROPERTIES)
    _without_symmetry(monkeypatch)
    plain = check_bfs(params, PROPERTIES)

    def summary(result):
        return {p.name: (p.verdict, len(p.run) if p.run else None) for p in result.properties}

    # Same verdicts, and the same (shortest) run lengths.
    assert summary(reduced) == summary(plain)
    assert summary(reduced)["no_valid_reap"] == (Verdict.VIOLATED, 10)
    assert reduced.stats["states"] < plain.stats["states"]  # 1,069 against 7,480
    assert_reaps_a_valid_client(params, plain.get("no_valid_reap").run)


def test_reduced_states_are_the_canonical_images_of_all_reachable_states(monkeypatch):
    params = Params(servers=2, clients=2, levels=(Level(0, 45, 1),), design=DESIGNS["off"],
                    faults=Faults(server_loss=1))
    reduced, _ = explore(params, (), stop_when_decided=False)
    _without_symmetry(monkeypatch)
    plain, _ = explore(params, (), stop_when_decided=False)
    assert reduced.complete and plain.complete
    images = {fleet.canonical(params, s) for s in plain.seen}
    assert set(reduced.seen) <= images  # this much holds: nothing spurious
    assert images == set(reduced.seen)


def test_staged_lowering_waits_for_clients_answered_under_other_advice():
    # Found by differential search: a lowering whose advice reached one
    # server before another let a client be answered with the old long
    # interval after it had been refreshed under the (coincidentally equal)
    # new level; reapers then lowered and reaped it on schedule. A staged
    # rollout must wait until every session is refreshed under the new advice.
    levels = tuple(Level(ms, *adjuster_advice(ms, 42, 5)) for ms in (0, 80000))
    params = Params(servers=2, clients=1, t0=42, i0=5, levels=levels, design=DESIGNS["fleet-wide-staged"],
                    faults=Faults(server_loss=1, client_crash=1))
    result = check_bfs(params, (no_valid_reap,))
    assert result.get("no_valid_reap").verdict == Verdict.HOLDS
    assert result.stats["complete"]
