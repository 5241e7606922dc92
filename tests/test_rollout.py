"""Configuration rollouts: a change from A to B, how it reaches the fleet, and plans.

For each stack whose heartbeat interval and cutoff belong to different sides
(or to different restarts), the shipped rollout moves the interval ahead of
the cutoff: `check` reports the reap of a valid client with a trace whose
timeline shows the mixed fleet, and `plan` proposes an order that holds (and
that holds when checked on its own). A change whose B is unsafe has no plan,
and the tool says so. Where the broker follows each client's own value
(MQTT), every order holds.
"""

from __future__ import annotations

import doctest
import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from stormcheck.checkers import plan as plan_module
from stormcheck.checkers import run_engine
from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.plan import candidate_orders, moving_parts, plan
from stormcheck.cli import main
from stormcheck.model.events import Began, Reaped, Reconfigured, Restarted, Upgraded
from stormcheck.model.fleet import ProtocolError, actions, initial_states, is_valid, step
from stormcheck.model.rollout import Phase
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict, shipped_names
from stormcheck.model.state import Action
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap
from stormcheck.traces.timeline import render_timeline

ROOT = Path(__file__).resolve().parent.parent
ROLLOUTS = shipped_names("rollouts")

# The rollouts that lengthen the interval before the cutoff catches up, as written.
UNSAFE_AS_WRITTEN = [
    "rollouts/actioncable-beat-10",
    "rollouts/faye-timeout-101",
    "rollouts/phoenix-heartbeat-90",
    "rollouts/signalr-keepalive-60",
    "rollouts/socketio-4-live-ping-60",
]
# As written these hold: a server that schedules and judges its own pings
# waits for the interval it uses (websockets 17.4, python-engineio 4.15), and
# a restart hands every client new handshake values; engine.io 3's timer reads
# the server's own pingInterval. Seen on the libraries.
SAFE_AS_WRITTEN = [
    "rollouts/mqtt-keepalive-120",
    "rollouts/python-websockets-ping-60",
    "rollouts/socketio-2-ping-60",
    "rollouts/socketio-4-ping-60",
]


def raw(name: str) -> dict:
    return tomllib.loads((ROOT / "model" / "scenarios" / f"{name}.toml").read_text())


def test_shipped_rollouts():
    assert ROLLOUTS == sorted(UNSAFE_AS_WRITTEN + SAFE_AS_WRITTEN)


@pytest.mark.parametrize("name", UNSAFE_AS_WRITTEN)
def test_the_written_order_reaps_a_valid_client_with_a_trace(name):
    sc = load_scenario(name)
    prop = run_engine("exhaustive", sc, PROPERTIES).get("no_valid_reap")
    assert str(prop.verdict) == "violated"
    run = prop.run
    pre, (_, last) = run.states[-2], run.steps[-1]
    assert any(isinstance(e, Reaped) and is_valid(pre, e.client) for e in last.events)
    events = [e for _, st in run.steps for e in st.events]
    assert any(isinstance(e, Began) for e in events)
    assert any(isinstance(e, (Restarted, Reconfigured, Upgraded)) for e in events)
    # The reap happens in a mixed fleet: some part still runs A, another B.
    levels = {srv.adv for srv in pre.servers} | {srv.reap for srv in pre.servers}
    levels |= {cl.session.hs_level for cl in pre.clients if cl.session and sc.params.heartbeat.client_owned}
    assert levels == {0, 1}
    # The timeline shows which configuration every part ran, step by step.
    text = render_timeline(run, sc.params, title=name)
    lines = [line for line in text.splitlines() if "configs (T/I):" in line]
    assert len(lines) >= 2 and " A (" in lines[0] and any(" B" in line for line in lines[1:])
    assert "VIOLATION" in text


@pytest.mark.parametrize("name", UNSAFE_AS_WRITTEN)
def test_plan_proposes_an_order_that_holds(name):
    sc = load_scenario(name)
    result = plan(sc.params, scenario=sc.name, budget=sc.bounds)
    assert result.candidates[0].written and str(result.candidates[0].verdict) == "violated"
    proposal = result.proposal
    assert proposal is not None and not proposal.written
    # The proposal, checked on its own as a scenario would run it, holds.
    fleet = replace(sc.params, rollout=replace(sc.params.rollout, phases=proposal.phases))
    again = check_bfs(fleet, (no_valid_reap,), budget=sc.bounds)
    assert str(again.get("no_valid_reap").verdict) == "holds" and again.stats["complete"]


def test_the_plans_put_the_judge_first():
    def first_part(name):
        sc = load_scenario(name)
        return plan(sc.params, scenario=sc.name, budget=sc.bounds).proposal.phases[0]

    # Server-side judge, client-side interval: servers first.
    assert first_part("rollouts/phoenix-heartbeat-90").side == "servers"
    assert first_part("rollouts/signalr-keepalive-60").side == "servers"
    # Client-side judge (the stale threshold), server-side beat: clients first.
    assert first_part("rollouts/actioncable-beat-10").side == "clients"
    # Both on the servers, shared store: every reaper adopts B before any advice does.
    faye = first_part("rollouts/faye-timeout-101")
    assert (faye.side, faye.part) == ("servers", "judge")


def test_when_the_broker_follows_each_client_every_order_holds():
    sc = load_scenario("rollouts/mqtt-keepalive-120")
    assert moving_parts(sc.params) == ("clients",)
    result = plan(sc.params, scenario=sc.name, budget=sc.bounds)
    assert [str(c.verdict) for c in result.candidates] == ["holds"] and result.proposal.written


def test_no_plan_when_configuration_b_itself_is_unsafe(tmp_path, capsys):
    config = raw("rollouts/phoenix-heartbeat-90")
    config["rollout"]["timeout"] = 60  # the interval goes to 90 s, the server timeout stays 60 s
    sc = scenario_from_dict(config, "unsafe")
    result = plan(sc.params, scenario=sc.name, budget=sc.bounds)
    assert result.proposal is None and str(result.verdict) == "violated"
    assert all(str(c.verdict) == "violated" for c in result.candidates)
    # The command says so, exit code 1.
    path = tmp_path / "unsafe.toml"
    text = (ROOT / "model/scenarios/rollouts/phoenix-heartbeat-90.toml").read_text()
    path.write_text(text.replace("timeout = 180", "timeout = 60"))
    assert main(["plan", str(path), "--quiet"]) == 1
    assert "no safe order" in capsys.readouterr().out


def test_candidate_orders():
    faye = load_scenario("rollouts/faye-timeout-101").params
    assert moving_parts(faye) == ("judge", "advice")
    assert [tuple((p.side, p.part) for p in c) for c in candidate_orders(faye)] == [
        (("servers", "both"),),
        (("servers", "judge"), ("servers", "advice")),
        (("servers", "advice"), ("servers", "judge")),
    ]
    phoenix = load_scenario("rollouts/phoenix-heartbeat-90").params
    assert [tuple(p.side for p in c) for c in candidate_orders(phoenix)] == [
        ("servers", "clients"), ("clients", "servers"),
    ]


# ------------------------------------------------------------ the model


def test_rollout_steps_are_guarded_and_deterministic():
    p = load_scenario("rollouts/faye-timeout-101").params
    state = initial_states(p)[0]
    assert Action("launch") in actions(p, state)
    with pytest.raises(ProtocolError, match="restart"):
        step(p, state, Action("restart", server=0))
    launched = step(p, state, Action("launch"))
    assert launched == step(p, state, Action("launch"))
    assert [a for a in actions(p, launched.state) if a.kind == "restart"] == [
        Action("restart", server=0), Action("restart", server=1)
    ]
    restarted = step(p, launched.state, Action("restart", server=0)).state
    srv = restarted.servers[0]
    assert (srv.adv, srv.reap, srv.down) == (1, 1, 5)
    assert restarted.rollout == 120  # the next batch after the pace
    assert restarted.tuner_timer == 0  # a rollout's fleet has no tuner


def test_a_static_fleet_is_unchanged_by_the_rollout_machinery():
    # Without a rollout, no rollout action is ever enabled.
    p = load_scenario("static-45").params
    for state in initial_states(p):
        assert not {a.kind for a in actions(p, state)} & {"launch", "restart", "upgrade"}


# ------------------------------------------------------------ the format

BASE = {
    "scenario": {"name": "r", "design": "off"},
    "topology": {"servers": 2},
    "rollout": {"timeout": 90, "phases": [{"side": "servers"}]},
}


def with_rollout(**changes):
    config = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        section, _, name = key.partition("__")
        config.setdefault(section, {})[name] = value
    return config


@pytest.mark.parametrize("config, words", [
    (with_rollout(scenario__design="per-server"), ["[scenario] design", "per-server", '"off"']),
    (with_rollout(load__levels_ms=[0, 40000]), ["[load] levels_ms", "leave levels_ms at [0]"]),
    (with_rollout(rollout__timeout=45), ["configuration B must differ from A"]),
    (with_rollout(rollout__phases=[]), ["[rollout] phases = []", "non-empty list of tables"]),
    (with_rollout(rollout__phases=[{"side": "clients"}]), ["#1", "clients take their interval", "from the server"]),
    (with_rollout(rollout__phases=[{"side": "servers", "pickup": "advice"}]),
     ["#1 pickup", 'side = "servers"', 'only to side = "clients"']),
    (with_rollout(rollout__phases=[{"side": "servers"}, {"side": "servers", "part": "judge"}]),
     ["#2", "judge", "phase #1 already did"]),
    (with_rollout(rollout__phases=[{"side": "servers", "batch": 3}]), ["batch = 3", "[topology] servers = 2"]),
    (with_rollout(rollout__phases=[{"side": "moon"}]), ['side = "moon"', '"servers", "clients"']),
    (with_rollout(rollout__when=3), ["[rollout]", "when", "allowed keys"]),
])
def test_rollout_mistakes_name_file_key_value_and_what_is_allowed(config, words):
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(config, "r.toml")
    message = str(err.value)
    assert message.startswith("r.toml: ")
    for w in words:
        assert w in message, message


def test_a_rollout_runs_under_a_static_design_only():
    sc = load_scenario("rollouts/faye-timeout-101")
    with pytest.raises(ScenarioError, match="static design"):
        sc.with_design("per-server")
    assert sc.with_design("off") == sc


def test_phase_tables_read_back_unchanged():
    sc = load_scenario("rollouts/signalr-keepalive-60")
    assert sc.params.rollout.phases == (
        Phase("clients", pickup="release", spread=300), Phase("servers", batch=1, pace=60),
    )
    assert scenario_from_dict(sc.config, "again") == sc


# ------------------------------------------------------------ the commands


def test_check_and_replay_a_rollout(tmp_path, capsys):
    assert main(["check", "rollouts/signalr-keepalive-60", "--out", str(tmp_path), "--quiet",
                 "--property", "no_valid_reap"]) == 1
    trace = tmp_path / "signalr-keepalive-60.off.no_valid_reap.itf.json"
    assert main(["replay", str(trace)]) == 0
    assert "violates no_valid_reap" in capsys.readouterr().out


def test_plan_command(capsys):
    assert main(["plan", "rollouts/phoenix-heartbeat-90", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "VIOLATED" in out and "(as written)" in out
    assert "proposed order: 1. servers to B" in out and '[[rollout.phases]]\nside = "servers"' in out
    assert main(["plan", "rollouts/phoenix-heartbeat-90", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "holds" and doc["proposal"].startswith("1. servers")
    assert [c["verdict"] for c in doc["candidates"]] == ["violated", "holds"]


def test_plan_shows_each_long_search_s_progress_as_check_does(capsys, monkeypatch):
    # A candidate's search once ran silently for as long as its budget allowed: plan printed a line only
    # when an order was decided. The search's own once-a-second reports (here one, made up) are shown.
    real = plan_module.check_bfs

    def reporting(*args, progress=None, **kwargs):
        if progress is not None:
            progress({"states": 12_345, "transitions": 40_000, "depth": 9, "seconds": 1.0})
        return real(*args, **kwargs)

    monkeypatch.setattr(plan_module, "check_bfs", reporting)
    assert main(["plan", "rollouts/phoenix-heartbeat-90"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["plan phoenix-heartbeat-90", "stormcheck"] * 2, err
    assert err[0] == ("plan phoenix-heartbeat-90: order 1 of 2: 12,345 states, 40,000 transitions, depth 9, "
                      "12,345 states/s, 1 s"), err
    assert err[2].startswith("plan phoenix-heartbeat-90: order 2 of 2: 12,345 states"), err
    # Control: --quiet and --json print none of it, and the plan is the same.
    for flag in ("--quiet", "--json"):
        assert main(["plan", "rollouts/phoenix-heartbeat-90", flag]) == 0
        assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, message", [
    (["--steps", "10"], "--steps 10: only used by --engine symbolic (the engine is exhaustive"),
    (["--seed", "3"], "--seed 3: only used by --engine symbolic (the engine is exhaustive"),
])
def test_plan_refuses_a_symbolic_option_naming_it_and_its_value(capsys, argv, message):
    # It said "--steps and --seed are options of --engine symbolic" whichever was given, without its value.
    assert main(["plan", "rollouts/phoenix-heartbeat-90", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"stormcheck: {message}") and err.count("\n") == 1, err
    # Control: the symbolic plan takes it.
    assert main(["plan", "rollouts/phoenix-heartbeat-90", "--engine", "symbolic", *argv, "--quiet"]) == 0
    capsys.readouterr()


def test_plan_refuses_a_scenario_without_a_rollout(capsys):
    assert main(["plan", "stacks/phoenix"]) == 2
    assert "has no [rollout] table" in capsys.readouterr().err


def test_readme_documents_the_rollouts_and_plan():
    readme = (ROOT / "README.md").read_text()
    for name in ROLLOUTS:
        assert name in readme
    assert "stormcheck plan rollouts/" in readme


def test_docstring_examples_run():
    assert doctest.testmod(plan_module).failed == 0


def test_list_shows_the_shipped_stacks_and_rollouts(capsys):
    assert main(["list", "rollouts"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:]] == ROLLOUTS
    assert main(["list", "stacks"]) == 0
    assert "stacks/phoenix" in capsys.readouterr().out


def test_clients_pick_up_b_with_the_next_advice():
    config = raw("rollouts/phoenix-heartbeat-90")
    config["rollout"]["phases"][0] = {"side": "clients", "pickup": "advice"}
    # Every client has B within one heartbeat; with servers 30 s apart the
    # client's own server would restart before its 60 s cutoff: slow them down.
    config["rollout"]["phases"][1]["pace"] = 120
    sc = scenario_from_dict(config, "advice pick-up")
    prop = run_engine("exhaustive", sc, (no_valid_reap,)).get("no_valid_reap")
    assert str(prop.verdict) == "violated"
    events = [e for _, st in prop.run.steps for e in st.events]
    assert Upgraded(0, 1, "advice") in events
    # Servers first, then the advice: safe.
    config["rollout"]["phases"].reverse()
    again = run_engine("exhaustive", scenario_from_dict(config, "servers first"), (no_valid_reap,))
    assert str(again.get("no_valid_reap").verdict) == "holds"


def test_every_rollout_is_pinned_in_the_manifest():
    checks = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())["checks"]
    pinned = {c["scenario"]: c["verdicts"]["no_valid_reap"] for c in checks if c["scenario"].startswith("rollouts/")}
    # Reviewed expectations: the written orders that move the interval first reap.
    assert pinned == {**{n: "violated" for n in UNSAFE_AS_WRITTEN}, **{n: "holds" for n in SAFE_AS_WRITTEN}}


def _unsafe_b(tmp_path):
    """python-websockets-ping-60 with B's pong wait (1 s) shorter than the 2 s RTT: unsafe with no rollout at all."""
    from stormcheck.model.scenario_files import _preset_dir

    text = (_preset_dir() / "rollouts/python-websockets-ping-60.toml").read_text(encoding="utf-8")
    head, rollout = text.split("\n[rollout]\n")
    rollout = ("\n" + rollout).replace("\ntimeout = 30\n", "\ntimeout = 1\n").replace("\ninterval = 60\n", "\ninterval = 70\n")
    path = tmp_path / "roll70.toml"
    path.write_text(head + "\n[rollout]" + rollout, encoding="utf-8")
    return path


def test_plan_with_no_safe_order_says_configuration_b_alone_is_unsafe_and_shows_why(tmp_path, capsys):
    # B's 1 s pong wait is shorter than the 2 s RTT: unsafe with no rollout at all,
    # so no order helps, and the plan shows B's own counterexample.
    from stormcheck.plan_cmd import b_alone

    path = _unsafe_b(tmp_path)
    alone = b_alone(load_scenario(str(path)))
    assert "rollout" not in alone.config and alone.params.rollout is None
    assert (alone.params.t0, alone.params.i0) == (1, 70)
    assert main(["plan", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "configuration B (timeout 1, interval 70) is unsafe by itself, with no rollout at all: " \
           "no_valid_reap is violated" in out, out
    assert "s1 liveness timer reaps valid c0" in out  # its counterexample, as a timeline
    assert f"copy {path} with [protocol] timeout = 1, interval = 70 and no [rollout]" in out
    assert "B itself, or every way to reach it" not in out


def test_plan_json_carries_the_configuration_b_alone_diagnosis_the_text_gives(tmp_path, capsys):
    # The same unsafe B as above: the JSON says what the text says, with B's own counterexample.
    path = _unsafe_b(tmp_path)
    assert main(["plan", str(path), "--quiet"]) == 1
    said = capsys.readouterr().out
    assert main(["plan", str(path), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    b = doc["b_alone"]
    assert b["configuration"] == {"timeout": 1, "interval": 70, "unit": "s"}
    assert (b["property"], b["verdict"], b["basis"]) == ("no_valid_reap", "violated", "found at depth 3 after 10 states")
    assert b["says"].startswith("configuration B (timeout 1, interval 70) is unsafe by itself") and b["says"] in said
    assert b["counterexample"]["steps"] == 3 and b["counterexample"]["timeline"] in said
    assert "s1 liveness timer reaps valid c0" in b["counterexample"]["timeline"]
    assert b["to_check"] in said
    # A plan with a safe order has nothing to diagnose.
    assert main(["plan", "rollouts/phoenix-heartbeat-90", "--json"]) == 0
    assert "b_alone" not in json.loads(capsys.readouterr().out)


def _ranged_phoenix(tmp_path, ranged: bool = True) -> Path:
    text = (ROOT / "model" / "scenarios" / "rollouts" / "phoenix-heartbeat-90.toml").read_text()
    path = tmp_path / "ranged.toml"
    path.write_text(text + ("\n[ranges]\ntimeout = [40, 80]\ninterval = [10, 30]\nrtt_max = [1, 4]\n" if ranged else ""))
    return path


def test_an_exhaustive_plan_of_a_ranged_scenario_says_it_judged_the_point_values_only(tmp_path, capsys):
    # Servers first holds at the file's point values; the exhaustive plan never searched the [ranges], so it
    # proposes nothing and says so, as `check` does, instead of calling the order safe.
    from stormcheck.checkers import RANGES_ELSEWHERE

    path = _ranged_phoenix(tmp_path)
    assert main(["plan", str(path), "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "proposed order" not in out and "\n  holds" not in out and "did not finish" not in out, out
    assert "INCONCLUSIVE 1. servers to B" in out
    assert "holds at the point values only: [ranges] not searched by --engine exhaustive" in out
    assert out.rstrip().endswith(
        "verdict: inconclusive (at the point values only; [ranges] timeout [40, 80], interval [10, 30], "
        f"rtt_max [1, 4] not searched by --engine exhaustive: {RANGES_ELSEWHERE})"), out
    assert main(["plan", str(path), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["proposal"] is None and doc["ranges_searched"] is False and doc["searched"] == "point values only"
    assert [c["verdict"] for c in doc["candidates"]] == ["violated", "inconclusive"]
    # The control: without [ranges] the same fleet gets its proposal, and no word of ranges.
    assert main(["plan", str(_ranged_phoenix(tmp_path, ranged=False)), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "proposed order: 1. servers to B" in out and "[ranges]" not in out and out.rstrip().endswith("holds")


def test_configuration_b_alone_of_a_ranged_scenario_is_not_called_safe_from_its_point_values(tmp_path):
    from stormcheck.plan_cmd import b_alone_diagnosis

    said = b_alone_diagnosis(load_scenario(str(_ranged_phoenix(tmp_path))))
    assert said["verdict"] == "inconclusive" and "alone is safe" not in said["says"], said
    assert "holds at the point values only: [ranges] not searched by --engine exhaustive" in said["basis"]
    assert b_alone_diagnosis(load_scenario(str(_ranged_phoenix(tmp_path, ranged=False))))["verdict"] == "holds"
