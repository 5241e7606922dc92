"""The partial-order reduction (checkers/por.py) against the full search.

Every preset, stack and design of the manifest is checked both ways: the
same verdicts and the same (shortest) run lengths, and the reduced search
explores no more states. Small multi-client fleets, where the reduction
does cut states, are compared the same way; a seeded unsound independence
relation must be caught by the comparison; and the engine's reported runs
stay shortest where the reduced graph alone finds a deeper one.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from stormcheck.checkers import por
from stormcheck.checkers.bfs import _path_to, check_bfs, explore
from stormcheck.model.params import DESIGNS, Bounds, Faults, Level, Params
from stormcheck.model.scenario import load_scenario, scenario_from_dict
from stormcheck.properties.core import ALWAYS, STATE, Property, Verdict
from stormcheck.properties.protocol import PROPERTIES, by_name, dead_session_reaped, storm_subsides
from stormcheck.traces.run import replay

MANIFEST = Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json"
CHECKS = json.loads(MANIFEST.read_text())["checks"]


def summary(result) -> dict:
    return {p.name: (p.verdict, len(p.run) if p.run is not None else None) for p in result.properties}


def both(params: Params, properties, bounds: Bounds = Bounds()):
    full = check_bfs(params, properties, budget=bounds, reduce=False)
    reduced = check_bfs(params, properties, budget=bounds, reduce=True)
    return full, reduced


def assert_agree(params: Params, full, reduced) -> None:
    assert summary(reduced) == summary(full)
    assert reduced.stats["states"] <= full.stats["states"]
    assert reduced.stats["complete"] == full.stats["complete"]
    for prop in reduced.properties:
        if prop.run is not None:  # every reported run replays with the model's own `step`
            run = prop.run
            assert replay(params, run.initial, run.actions, expected=run.states).states == run.states


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c['scenario']}/{c['design']}")
def test_reduced_and_full_searches_agree_on_the_manifest(check):
    scenario = load_scenario(check["scenario"], design=check["design"])
    props = tuple(by_name(n) for n in check["verdicts"])
    full, reduced = both(scenario.params, props, scenario.bounds)
    assert_agree(scenario.params, full, reduced)
    # The full search is the manifest's own (its pinned count).
    assert full.stats["states"] == check["states"]
    # Where the reduction does not apply the engine says so and searches in full.
    applies = not scenario.bounds.max_depth and por.applies(scenario.params, props)
    assert reduced.stats["reduction"] == ("partial-order" if applies else "none")


def _fleet(clients: int, faults: Faults, gc_mult: Fraction = Fraction(8, 5)) -> Params:
    return Params(servers=2, clients=clients, levels=(Level(0, 45, 1),), design=DESIGNS["off"], gc_mult=gc_mult,
                  faults=faults)


MULTI = {
    "2c-crash": _fleet(2, Faults(client_crash=1)),
    "2c-cut": _fleet(2, Faults(client_cut=1)),
    "2c-gc-at-arrival": _fleet(2, Faults(), Fraction(46, 45)),
    "3c-none": _fleet(3, Faults()),
}


def _stack(name: str, clients: int) -> Params:
    base = load_scenario(name)
    return scenario_from_dict({**base.config, "topology": {**base.config["topology"], "clients": clients}},
                              source=f"test:{name}").params


@pytest.mark.parametrize("name", list(MULTI) + ["stacks/socketio-4 x2", "stacks/faye x2"])
def test_reduced_and_full_searches_agree_on_multi_client_fleets(name):
    params = MULTI[name] if name in MULTI else _stack(name.split()[0], 2)
    full, reduced = both(params, PROPERTIES)
    assert_agree(params, full, reduced)
    assert reduced.stats["reduction"] == "partial-order" and reduced.stats["reduced_states"] > 0


def test_the_reduction_cuts_states_on_a_multi_client_fleet():
    # Not vacuous: the ample sets close some interleavings for good.
    full, reduced = both(MULTI["2c-cut"], PROPERTIES)
    assert reduced.stats["states"] < full.stats["states"]  # 3,102 against 3,152


def test_runs_stay_shortest_where_the_reduced_graph_finds_deeper():
    # Two clients, one crash: the reduced graph meets the first reap of a dead
    # session a step later than the full one (the sweep waits for a due
    # client's event). The engine reports the shortest run all the same.
    params = MULTI["2c-crash"]
    search, found = explore(params, (dead_session_reaped,), reduce=True)
    pre, action, _ = found["dead_session_reaped"]
    deeper = len(_path_to(search, pre)[0]) + 1
    full, reduced = both(params, (dead_session_reaped,))
    shortest = len(full.get("dead_session_reaped").run)
    assert deeper > shortest
    assert len(reduced.get("dead_session_reaped").run) == shortest == 7
    assert reduced.stats["shortest_search_states"] > 0


def test_a_seeded_unsound_independence_is_caught(monkeypatch):
    # Declare a due client's event independent of the GC sweep that would
    # reap it at the same instant (drop I2 and I3's reap check): the reduced
    # search fires the refresh first and never sees the reap.
    params = _fleet(1, Faults(), Fraction(46, 45))
    full, honest = both(params, PROPERTIES)
    assert_agree(params, full, honest)
    assert summary(full)["no_valid_reap"] == (Verdict.VIOLATED, 4)
    monkeypatch.setattr(por, "_reapable", lambda params, state, client: False)
    unsound = check_bfs(params, PROPERTIES, reduce=True)
    assert summary(unsound) != summary(full)
    assert unsound.get("no_valid_reap").verdict is Verdict.HOLDS  # what an unchecked reduction would claim


def test_the_engine_searches_in_full_where_the_reduction_is_not_exact():
    params = MULTI["2c-crash"]
    not_local = Property("no_crash", ALWAYS, STATE, lambda p, s: s.crashes_left > 0, "Nothing crashes.")
    for props, bounds in [((storm_subsides,), Bounds()), (PROPERTIES, Bounds(max_depth=5)), ((not_local,), Bounds())]:
        assert check_bfs(params, props, budget=bounds, reduce=True).stats["reduction"] == "none"
        with pytest.raises(ValueError, match="partial-order reduction needs"):
            explore(params, props, bounds, reduce=True)
    with pytest.raises(ValueError, match="keeping no graph"):
        explore(params, PROPERTIES, keep_graph=True, reduce=True)
