"""The published Faye stack: faye-redis 0.2.0's publish rule, the stock client's retries, no_message_loss.

Seeded-bug style: `no_message_loss` is violated on the 2015 fleet run on the
published engine, and holds on the published stack's own defaults and under
a design that keeps every server's T equal. Unit tests hold each new rule of
`stormcheck.model.fleet` to what the real software does
(docs/protocol.md, "The published stack").
"""

from dataclasses import replace

import pytest

from stormcheck.checkers import run_engine
from stormcheck.checkers.z3_coverage import check_encodable
from stormcheck.model.events import Handshake, QueueDropped, Reaped, Refreshed, Refused
from stormcheck.model.fleet import (ACTIONS, DELETE_FIRST, FLUSH_FIRST, ProtocolError, actions, initial_states,
                                    is_valid, step, successors)
from stormcheck.model.load import StormParams
from stormcheck.model.params import DESIGNS, Faults, Params
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.model.state import CRASHED, HELD, REJOIN, RETRY, Action, Client, Session
from stormcheck.model.storm import simulate
from stormcheck.properties.core import NotEncoded
from stormcheck.properties.protocol import PROPERTIES, no_message_loss, no_valid_reap

PUBLISHED = dict(publish_expired="drop-queue", after_drop="same-id", after_401="interval")


# ------------------------------------------------------------ scenario keys


@pytest.mark.parametrize("section,key,value", [
    ("protocol", "publish_expired", "delete"),
    ("protocol", "publish_expired", 1),
    ("client", "after_drop", "reconnect"),
    ("client", "after_401", True),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(section, key, value):
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({"scenario": {"name": "x"}, section: {key: value}}, "f.toml")
    text = str(err.value)
    assert text.startswith(f"f.toml: [{section}] {key} = ") and "must be one of" in text


def test_unknown_client_key_is_refused_with_the_allowed_keys():
    with pytest.raises(ScenarioError, match=r"\[client\] after_drops: unknown key; allowed keys in \[client\]: "
                                            r"after_drop, after_401"):
        scenario_from_dict({"scenario": {"name": "x"}, "client": {"after_drops": "same-id"}}, "f.toml")


def test_same_id_needs_a_shared_store():
    raw = {"scenario": {"name": "x"}, "client": {"after_drop": "same-id"},
           "heartbeat": {"store": "local", "paths": ["gc"]}}
    with pytest.raises(ScenarioError, match=r'\[client\] after_drop = "same-id" with \[heartbeat\] store = "local"'):
        scenario_from_dict(raw, "f.toml")


def test_drop_queue_needs_a_publish_path():
    raw = {"scenario": {"name": "x"}, "protocol": {"publish_expired": "drop-queue"}, "heartbeat": {"paths": ["gc"]}}
    with pytest.raises(ScenarioError, match=r"\[protocol\] publish_expired .* with \[heartbeat\] paths"):
        scenario_from_dict(raw, "f.toml")


def test_cli_exits_2_on_a_bad_key(tmp_path, capsys):
    from stormcheck.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "bad"\n[client]\nafter_401 = "later"\n')
    assert main(["check", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert '[client] after_401 = "later"' in err and "at-once" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_defaults_leave_old_configs_unchanged_and_presets_read_the_keys():
    old = load_scenario("gitter-2015")
    assert "client" not in old.config and "publish_expired" not in old.config["protocol"]
    assert (old.params.publish_expired, old.params.after_drop, old.params.after_401) == (
        "destroy", "rehandshake", "at-once")
    for name in ("stacks/faye", "gitter-2015-published"):
        p = load_scenario(name).params
        assert (p.publish_expired, p.after_drop, p.after_401) == tuple(PUBLISHED.values())
        again = scenario_from_dict(load_scenario(name).config, "stored")
        assert again.params == p


def test_stacks_faye_values_are_the_packages_defaults():
    # faye 1.4.3 proxy.js TIMEOUT 60 / INTERVAL 0, dispatcher.js DEFAULT_RETRY 5;
    # faye-redis 0.2.0 cutoffs 1.6 x and 2 x timeout.
    p = load_scenario("stacks/faye").params
    assert (p.t0, p.i0, p.retry, float(p.publish_mult), float(p.gc_mult)) == (60, 0, 5, 1.6, 2.0)
    assert p.design.name == "off" and p.heartbeat.faye


# ------------------------------------------------------------ the rules, step by step


def _fleet(**kw) -> Params:
    return replace(Params(servers=2, clients=1, rtt=(0,), faults=Faults(server_loss=1)), **kw)


def test_same_id_retry_keeps_the_session_and_refreshes_it():
    params = _fleet(after_drop="same-id")
    s0 = initial_states(params)[0]
    held_on = s0.clients[0].server
    dropped = step(params, s0, Action("lose", server=held_on)).state
    cl = dropped.clients[0]
    assert cl.phase == RETRY and cl.session == s0.clients[0].session  # the session survives
    ticked = step(params, dropped, Action("tick", value=cl.timer)).state
    other = 1 - held_on
    st = step(params, ticked, Action("reconnect", client=0, server=other))
    assert [type(e) for e in st.events] == [Refreshed]  # a connect on the same id, no handshake
    assert st.events[0].age == params.retry_delay and st.state.clients[0].phase == HELD
    # Control: Gitter's client abandons the session and re-handshakes.
    params = _fleet()
    gone = step(params, s0, Action("lose", server=held_on)).state
    assert gone.clients[0].session == ()
    st = step(params, step(params, gone, Action("tick", value=gone.clients[0].timer)).state,
              Action("reconnect", client=0, server=other))
    assert [type(e) for e in st.events] == [Handshake]


def _refused_state(params: Params):
    """A waiting client whose session the store no longer has: its next connect gets 401."""
    s0 = initial_states(params)[0]
    cl = s0.clients[0]
    return s0._replace(clients=(Client("waiting", cl.server, 0, ()),))


def test_stock_client_waits_the_advised_interval_after_a_401():
    params = _fleet(i0=3, levels=(Params().levels[0].__class__(0, 45, 3),), after_401="interval")
    pre = _refused_state(params)
    st = step(params, pre, Action("arrive", client=0))
    assert [type(e) for e in st.events] == [Refused]
    cl = st.state.clients[0]
    assert (cl.phase, cl.timer, cl.session) == (REJOIN, 3, ()) and is_valid(st.state, 0)
    assert Action("tick", value=3) in actions(params, st.state)
    later = step(params, st.state, Action("tick", value=3)).state
    again = step(params, later, Action("reconnect", client=0, server=0))
    assert [type(e) for e in again.events] == [Handshake]  # no second 401: it handshakes
    # Control: Gitter's client re-handshakes at once, in the same step.
    params = replace(params, after_401="at-once")
    st = step(params, _refused_state(params), Action("arrive", client=0))
    assert [type(e) for e in st.events] == [Refused, Handshake]


def test_same_id_retry_of_a_reaped_session_is_refused_first():
    params = _fleet(after_drop="same-id")
    s0 = initial_states(params)[0]
    pre = s0._replace(clients=(Client(RETRY, -1, 0, ()),))
    st = step(params, pre, Action("reconnect", client=0, server=0))
    assert [type(e) for e in st.events] == [Refused, Handshake]


def _old_session(params: Params, age: int):
    s0 = initial_states(params)[0]
    cl = s0.clients[0]
    return s0._replace(clients=(cl._replace(timer=5, session=Session(age, 0, 0, 0)),))


def test_published_publish_path_drops_the_queue_and_keeps_the_session():
    params = _fleet(publish_expired="drop-queue")
    pre = _old_session(params, 72)  # 1.6 x 45 = 72
    other = 1 - pre.clients[0].server
    st = step(params, pre, Action("publish", server=other, value=DELETE_FIRST))
    assert st.state == pre
    assert [type(e) for e in st.events] == [QueueDropped] and st.events[0].cutoff == "72"
    assert st.events[0].holder == pre.clients[0].server and st.events[0].lost
    assert not no_message_loss.check(params, pre, None, st) and no_valid_reap.check(params, pre, None, st)
    # The other order of the race: the holder flushed the queue before the
    # delete, so the message was delivered; the session survives all the same.
    st = step(params, pre, Action("publish", server=other, value=FLUSH_FIRST))
    assert st.state == pre and not st.events[0].lost and no_message_loss.check(params, pre, None, st)
    # One order or the other: a publish with no order is not a move of this state.
    with pytest.raises(ProtocolError, match="not enabled"):
        step(params, pre, Action("publish", server=other))
    # Control: the fork destroys the subscriber; the message goes with the session.
    params = _fleet()
    st = step(params, pre, Action("publish", server=other))
    assert isinstance(st.events[0], Reaped) and st.state.clients[0].session == ()
    assert not no_message_loss.check(params, pre, None, st)


def test_a_crashed_clients_dropped_queue_is_no_loss():
    params = _fleet(publish_expired="drop-queue")
    pre = _old_session(params, 80)
    pre = pre._replace(clients=(pre.clients[0]._replace(phase=CRASHED, server=-1, timer=0),))
    st = step(params, pre, Action("publish", server=0))  # no socket, no race: one publish
    assert isinstance(st.events[0], QueueDropped) and st.events[0].holder == -1
    assert st.events[0].lost and no_message_loss.check(params, pre, None, st)


# ------------------------------------------------------------ checkers


def test_no_message_loss_is_violated_on_the_2015_fleet_on_the_published_engine():
    sc = load_scenario("gitter-2015-published")
    result = run_engine("exhaustive", sc, (no_message_loss,))
    prop = result.get("no_message_loss")
    assert str(prop.verdict) == "violated"
    pre, action, st = prop.run.states[-2], prop.run.actions[-1], prop.run.steps[-1][1]
    assert action.kind == "publish" and any(isinstance(e, QueueDropped) for e in st.events)
    assert action.value == DELETE_FIRST and is_valid(pre, 0)


@pytest.mark.parametrize("name,design", [
    ("stacks/faye", "off"),
    ("gitter-2015-published", "off"),
    ("gitter-2015-published", "fleet-wide-staged"),
    ("gitter-2015-published", "per-session"),
])
def test_no_message_loss_holds_where_every_judge_agrees(name, design):
    result = run_engine("exhaustive", load_scenario(name, design=design), (no_message_loss, no_valid_reap))
    assert {str(p.verdict) for p in result.properties} == {"holds"} and result.stats["complete"]


def test_stacks_faye_holds_and_reaps_the_dead():
    result = run_engine("exhaustive", load_scenario("stacks/faye"), PROPERTIES + (no_message_loss,))
    assert str(result.verdict) == "holds" and result.stats["complete"]


def test_the_exhaustive_engine_reaches_every_new_rule():
    # The engines derive from ACTIONS; this shows the new rules are reached
    # through them: a queue drop, a same-id retry, a 401 wait.
    params = replace(load_scenario("gitter-2015-published").params, i0=1)
    seen, frontier, found = set(), list(initial_states(params)), set()
    while frontier and len(seen) < 20000:
        state = frontier.pop()
        if state in seen:
            continue
        seen.add(state)
        for action, st in successors(params, state):
            assert action.kind in ACTIONS
            if any(isinstance(e, QueueDropped) for e in st.events):
                found.add("queue")
            if any(cl.phase == REJOIN for cl in st.state.clients):
                found.add("rejoin")
            if any(cl.phase == RETRY and cl.session for cl in st.state.clients):
                found.add("same-id")
            frontier.append(st.state)
    assert found == {"queue", "rejoin", "same-id"}


def test_hypothesis_engine_finds_the_lost_message():
    sc = load_scenario("gitter-2015-published")
    result = run_engine("hypothesis", sc, (no_message_loss,), seed=1)
    prop = result.get("no_message_loss")
    assert str(prop.verdict) == "violated"
    assert any(isinstance(e, QueueDropped) for e in prop.run.steps[-1][1].events)


@pytest.mark.parametrize("field,value", list(PUBLISHED.items()))
def test_the_storm_simulation_refuses_the_published_keys_by_name_and_z3_encodes_them(field, value):
    params = replace(Params(), **{field: value})
    check_encodable(params)
    with pytest.raises(NotEncoded, match=rf"not encoded: .*{field} = '{value}'.*storm simulation"):
        simulate(params, StormParams(), mode="fluid", seed=0)
    check_encodable(Params())  # at the defaults: encoded


def test_symbolic_engine_proves_the_published_preset_without_an_adjuster():
    sc = load_scenario("gitter-2015-published", design="off")
    got = run_engine("symbolic", sc, (no_valid_reap,), seed=0).get("no_valid_reap")
    assert str(got.verdict) == "holds" and got.basis.startswith("proved by an inductive invariant")


def test_every_design_of_the_new_presets_is_pinned():
    import json
    from pathlib import Path

    manifest = json.loads((Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json").read_text())
    for name in ("stacks/faye", "gitter-2015-published"):
        for key in ("checks", "liveness"):
            assert {c["design"] for c in manifest[key] if c["scenario"] == name} == set(DESIGNS), (name, key)
        checks = [c for c in manifest["checks"] if c["scenario"] == name]
        assert all("no_message_loss" in c["verdicts"] for c in checks)
    by = {(c["scenario"], c["design"]): c["verdicts"] for c in manifest["checks"]}
    assert by["gitter-2015-published", "per-server"]["no_message_loss"] == "violated"
    assert {v for d in DESIGNS for v in by["stacks/faye", d].values()} == {"holds"}


def test_storm_command_refuses_the_published_stack_before_writing_anything(tmp_path, capsys):
    from stormcheck.cli import main

    out = tmp_path / "storm"
    assert main(["storm", "gitter-2015-published", "--out", str(out)]) == 3  # inconclusive: not encoded
    err = capsys.readouterr().err
    assert "not encoded: [protocol] publish_expired = 'drop-queue'" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
