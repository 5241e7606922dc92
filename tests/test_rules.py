"""The protocol as one table of rules, and the engines that re-encode it.

`fleet.RULES` states each action kind once: who takes it, when it is
enabled (its guard) and what it does (its effect). Everything else that
lists kinds derives from it, and an engine that states the rules a second
time (the Z3 encoding, the storm simulation) declares, kind by kind, what it
covers and which scenario feature it refuses instead. These tests fail when
a new rule is added that such an engine neither covers nor refuses, and when
a shipped scenario reaches a kind an engine refuses but the engine runs it.
"""

from __future__ import annotations

from collections import deque

import pytest

from stormcheck.checkers import hypo, z3_coverage
from stormcheck.checkers.z3_coverage import check_encodable
from stormcheck.model import fleet, storm_scenario
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import SHIPPED_FOLDERS, load_scenario, preset_names, shipped_names
from stormcheck.properties.core import NotEncoded

KINDS = set(fleet.ACTIONS)


def test_every_list_of_kinds_derives_from_the_table():
    assert fleet.ACTIONS == tuple(rule.kind for rule in fleet.RULES)
    assert len(KINDS) == len(fleet.RULES), "a kind is stated twice"
    assert set(fleet._APPLY) == KINDS and all(fleet._APPLY[r.kind] is r.apply for r in fleet.RULES)
    assert hypo.ADVERSARY == tuple(r.kind for r in fleet.RULES if r.adversary)
    assert "tick" not in hypo.ADVERSARY and not any(r.adversary and r.due is True for r in fleet.RULES)
    for rule in fleet.RULES:
        assert callable(rule.enabled) and callable(rule.apply) and rule.actor and rule.text, rule.kind


@pytest.mark.parametrize("engine,covered,refused", [
    ("symbolic", z3_coverage.ENCODED, z3_coverage.REFUSED),
    ("storm simulation", storm_scenario.SIMULATED, storm_scenario.UNSIMULATED),
])
def test_each_re_encoding_engine_covers_or_refuses_every_kind(engine, covered, refused):
    assert not set(covered) & set(refused), f"{engine}: a kind both covered and refused"
    missing = _neither(KINDS, covered, refused)
    assert not missing, f"{engine} neither covers nor refuses {sorted(missing)}: encode them or refuse them by name"
    assert set(covered) | set(refused) <= KINDS, f"{engine} names kinds the model does not have"
    # Seeded: a rule added to the table and to no engine's lists is caught.
    assert _neither(KINDS | {"resume"}, covered, refused) == {"resume"}


def _neither(kinds: set[str], covered, refused) -> set[str]:
    return kinds - set(covered) - set(refused)


def _kinds_reached(params, limit: int = 400) -> set[str]:
    """The action kinds a breadth-first walk of at most `limit` states reaches."""
    seen, todo, kinds = set(), deque(fleet.initial_states(params)), set()
    while todo and len(seen) < limit:
        state = todo.popleft()
        if state in seen:
            continue
        seen.add(state)
        for action, st in fleet.successors(params, state):
            kinds.add(action.kind)
            todo.append(st.state)
    return kinds


# Every shipped scenario as written, and the presets under every design.
SHIPPED = sorted({(n, None) for folder in SHIPPED_FOLDERS for n in shipped_names(folder)}
                 | {(n, d) for n in preset_names() for d in DESIGNS}, key=str)


@pytest.mark.parametrize("name,design", SHIPPED)
def test_a_scenario_that_reaches_a_refused_kind_is_refused(name, design):
    params = load_scenario(name, design=design).params
    reached = _kinds_reached(params)
    assert reached <= KINDS
    for engine, refused, refuse in (("symbolic", z3_coverage.REFUSED, check_encodable),
                                    ("storm simulation", storm_scenario.UNSIMULATED, storm_scenario.refuse_unsimulated)):
        used = sorted(reached & set(refused))
        if used:
            with pytest.raises(NotEncoded):
                refuse(params)


def test_every_refused_kind_is_reached_by_some_shipped_scenario():
    """So that the refusal test above is not vacuous: each refusal is exercised."""
    reached = set().union(*(_kinds_reached(load_scenario(name, design=d).params) for name, d in SHIPPED))
    assert set(z3_coverage.REFUSED) | set(storm_scenario.UNSIMULATED) <= reached
