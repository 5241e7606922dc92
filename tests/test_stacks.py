"""Stack presets: the heartbeat rules of other stacks as scenario data.

Every stack preset loads, names the source of its values, holds under its
default configuration (pinned in the manifest under every design) and is
documented in the README with its check command. Each stack's rule is real:
breaking it (an interval past the cutoff, a cutoff without its interval term)
is caught with a trace. Sessions local to their socket are judged by that
socket's server only.
"""

from __future__ import annotations

import json
import re
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.model.events import Handshake, Reaped
from stormcheck.model.fleet import actions, initial_states, is_valid, judges, step
from stormcheck.model.params import DESIGNS, Heartbeat, Params
from stormcheck.model.scenario import (
    ScenarioError,
    load_scenario,
    preset_names,
    scenario_from_dict,
    shipped_names,
)
from stormcheck.model.state import CRASHED, HELD, Action
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap

ROOT = Path(__file__).resolve().parent.parent
STACKS = [n for n in shipped_names("stacks") if n != "stacks/faye"]  # Faye itself: tests/test_faye_stack.py
MANIFEST = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())["checks"]


def raw(name: str) -> dict:
    """A stack preset's file as parsed TOML, to edit in a test."""
    return tomllib.loads((ROOT / "model" / "scenarios" / f"{name}.toml").read_text())


def test_one_preset_per_stack_of_the_reference():
    assert [n.split("/")[1] for n in STACKS] == [
        "actioncable", "grpc", "mqtt", "phoenix", "python-websockets", "signalr", "socketio-2", "socketio-4",
    ]
    # Stack presets live beside the Faye presets, not among them.
    assert not set(STACKS) & set(preset_names())


@pytest.mark.parametrize("name", STACKS)
def test_stack_preset_loads_and_names_its_sources(name):
    sc = load_scenario(name)
    assert sc.source == f"preset:{name}" and sc.name == name.split("/")[1] and sc.description
    assert not sc.params.heartbeat.faye and sc.params.rollout is None
    text = (ROOT / "model" / "scenarios" / f"{name}.toml").read_text()
    header = text.split("[scenario]")[0]
    assert "Sources:" in header
    # Every protocol value is explained in the header, by key.
    for key in ("interval", "timeout", "retry"):
        assert re.search(rf"#\s+{key}\b|#.*\b{key} \d", header), f"{name}: no source given for {key}"


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_and_design_is_pinned_and_expected_to_hold(name):
    entries = {c["design"]: c for c in MANIFEST if c["scenario"] == name}
    assert set(entries) == set(DESIGNS)
    for entry in entries.values():
        # Reviewed expectation: each stack's documented defaults are safe.
        assert set(entry["verdicts"].values()) == {"holds"} and entry["complete"] is True


@pytest.mark.parametrize("name", STACKS)
def test_stack_defaults_hold_under_the_exhaustive_engine(name):
    result = run_engine("exhaustive", load_scenario(name), PROPERTIES)
    assert str(result.verdict) == "holds" and result.stats["complete"]


def test_other_engines_prove_or_find_nothing():
    sc = load_scenario("stacks/phoenix")
    # The symbolic engine encodes the heartbeat rules: it proves the default safe for any number of clients.
    sym = run_engine("symbolic", sc, (no_valid_reap,), steps=4)
    assert str(sym.get("no_valid_reap").verdict) == "holds"
    assert sym.get("no_valid_reap").basis.startswith("proved by an inductive invariant")
    # Hypothesis runs the same model; on a safe default it finds nothing.
    hyp = run_engine("hypothesis", sc, (no_valid_reap,), seed=3, examples=30, steps=20)
    assert str(hyp.get("no_valid_reap").verdict) == "inconclusive"


# A seeded bug per rule: each must be caught, with a trace ending in the reap
# of a valid client, so the presets' "holds" is not vacuous.
BROKEN = [
    ("stacks/phoenix", {"protocol": {"interval": 59}}),  # heartbeat + RTT beyond the server timeout
    ("stacks/socketio-2", {"heartbeat": {"interval_multiplier": 0}}),  # cutoff forgets pingInterval
    ("stacks/socketio-4", {"protocol": {"interval": 25, "timeout": 1}}),  # pong later than pingTimeout
    ("stacks/actioncable", {"protocol": {"interval": 5}}),  # beats too slow for the stale threshold
    ("stacks/mqtt", {"heartbeat": {"multiplier": 1}}),  # broker without the 1.5 x grace
    ("stacks/signalr", {"protocol": {"interval": 29}}),
    ("stacks/python-websockets", {"heartbeat": {"interval_multiplier": 0}}),
]


@pytest.mark.parametrize("name, edit", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_rule_is_caught_with_a_trace(name, edit):
    config = raw(name)
    for section, values in edit.items():
        config[section].update(values)
    sc = scenario_from_dict(config, f"{name} (edited)")
    prop = run_engine("exhaustive", sc, (no_valid_reap,)).get("no_valid_reap")
    assert str(prop.verdict) == "violated"
    pre, (action, last) = prop.run.states[-2], prop.run.steps[-1]
    assert any(isinstance(e, Reaped) and is_valid(pre, e.client) for e in last.events)


# ------------------------------------------------------------ the rules


def test_faye_defaults_are_unchanged():
    assert Params().heartbeat == Heartbeat() and Heartbeat().faye
    for name in preset_names():
        sc = load_scenario(name)
        assert sc.params.heartbeat.faye and sc.params.rollout is None and "heartbeat" not in sc.config


def test_ping_style_cutoff_adds_the_interval_term():
    p = load_scenario("stacks/socketio-2").params
    assert p.cutoff("gc", 0) == Fraction(5 + 25) and p.hold(0) == 0
    assert p.reap_ages["gc"] == (30,)


def test_a_local_session_is_judged_by_its_own_server_only():
    p = load_scenario("stacks/socketio-4").params
    state = next(s for s in initial_states(p) if s.clients[0].server == 1)
    assert judges(p, state, 0) == [1]
    # Under Faye's shared store every up server judges every session.
    faye = load_scenario("gitter-2015").params
    assert judges(faye, initial_states(faye)[0], 0) == [0, 1, 2]


def test_a_crashed_clients_half_open_socket_is_reaped_by_its_server():
    p = load_scenario("stacks/phoenix").params
    state = next(s for s in initial_states(p) if s.clients[0].server == 0)
    state = step(p, state, Action("crash", client=0)).state
    assert state.clients[0].phase == CRASHED and state.clients[0].server == 0
    while not any(a.kind == "gc" for a in actions(p, state)):
        (tick,) = [a for a in actions(p, state) if a.kind == "tick"]
        state = step(p, state, tick).state
    assert [a.server for a in actions(p, state) if a.kind == "gc"] == [0]
    swept = step(p, state, Action("gc", server=0))
    assert any(isinstance(e, Reaped) and e.client == 0 for e in swept.events)


def test_a_reconnect_to_a_local_store_is_a_new_session():
    p = load_scenario("stacks/signalr").params
    state = next(s for s in initial_states(p) if s.clients[0].server == 0)
    state = step(p, state, Action("cut", client=0)).state
    assert state.clients[0].session  # the half-open socket keeps it until judged or closed
    while not any(a.kind == "reconnect" for a in actions(p, state)):
        state = step(p, state, [a for a in actions(p, state) if a.kind == "tick"][0]).state
    st = step(p, state, Action("reconnect", client=0, server=1))
    assert any(isinstance(e, Handshake) for e in st.events)
    assert st.state.clients[0].phase == HELD and st.state.clients[0].session.age == 0


# ------------------------------------------------------------ the format

S = {"scenario": {"name": "mine"}}


@pytest.mark.parametrize("heartbeat, words", [
    ({"hold": "poll"}, ['[heartbeat] hold = "poll"', '"timeout", "none"']),
    ({"paths": []}, ["[heartbeat] paths = []", "non-empty list"]),
    ({"paths": ["gc", "gc"]}, ['[heartbeat] paths = ["gc", "gc"]', "distinct"]),
    ({"store": 1}, ["[heartbeat] store = 1", '"shared", "local"']),
    ({"multiplier": 0}, ["[heartbeat] multiplier = 0", "number > 0"]),
    ({"interval_multiplier": -1}, ["[heartbeat] interval_multiplier = -1", ">= 0"]),
    ({"every": 3}, ["[heartbeat]", "every", "allowed keys"]),
])
def test_heartbeat_mistakes_name_file_key_value_and_what_is_allowed(heartbeat, words):
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({**S, "heartbeat": heartbeat}, "mine.toml")
    message = str(err.value)
    assert message.startswith("mine.toml: ")
    for w in words:
        assert w in message


def test_heartbeat_multiplier_and_protocol_multiplier_conflict():
    with pytest.raises(ScenarioError, match=r"\[heartbeat\] multiplier = 1 with \[protocol\] gc_multiplier = 3"):
        scenario_from_dict({**S, "heartbeat": {"multiplier": 1}, "protocol": {"gc_multiplier": 3}}, "mine.toml")


def test_a_user_stack_starts_from_a_preset_and_reads_back_unchanged(tmp_path):
    text = (ROOT / "model" / "scenarios" / "stacks" / "phoenix.toml").read_text()
    mine = tmp_path / "my-phoenix.toml"
    mine.write_text(text.replace('name = "phoenix"', 'name = "my-phoenix"').replace("interval = 30", "interval = 45"))
    sc = load_scenario(str(mine))
    assert sc.name == "my-phoenix" and sc.params.levels[0].interval == 45
    assert scenario_from_dict(sc.config, "again") == sc


def test_readme_documents_every_stack_preset_with_its_command():
    readme = (ROOT / "README.md").read_text()
    for name in STACKS:
        assert f"stormcheck check {name}" in readme, f"README lacks the command that checks {name}"
