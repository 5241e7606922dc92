"""Judges that follow what the real libraries showed.

* A server that schedules and judges its own pings waits for the interval it
  uses (websockets 17.4, python-engineio 4.15): ``[heartbeat] interval_term``.
* An Engine.IO 4 client judges by its handshake's pingInterval + pingTimeout,
  beside the server's judge: ``[[judge]]`` (one session, several judges).
* A rollout phase may change a live server's settings: ``change = "live"``.
* A proxy's idle timeout judges a connection too: ``[[proxy]]``.

Each rule is checked against the numbers seen on the real libraries, a
seeded bug (the rule taken away) shows the judge is what finds the
violation, and the engines that do not encode a rule refuse it by name.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.checkers.plan import plan
from stormcheck.checkers.z3_coverage import check_encodable
from stormcheck.cli import main
from stormcheck.model.events import Reaped
from stormcheck.model.fleet import ACTIONS, expired_judges, initial_states, is_valid, would_reap
from stormcheck.model.load import StormParams
from stormcheck.model.scenario import ScenarioError, load_scenario, preset_names, scenario_from_dict, shipped_names
from stormcheck.model.state import Session
from stormcheck.model.storm import simulate
from stormcheck.properties.core import NotEncoded
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap
from stormcheck.traces.timeline import render_timeline

ROOT = Path(__file__).resolve().parent.parent
LIVE = "rollouts/socketio-4-live-ping-60"


def raw(name: str) -> dict:
    return tomllib.loads((ROOT / "model" / "scenarios" / f"{name}.toml").read_text())


def nvr(config_or_name) -> object:
    sc = load_scenario(config_or_name) if isinstance(config_or_name, str) else scenario_from_dict(config_or_name, "t")
    return run_engine("exhaustive", sc, (no_valid_reap,)).get("no_valid_reap")


def reaps_at(params, state, server: int) -> int:
    """The smallest session age server `server`'s liveness timer reaps, in `state`."""
    return next(age for age in range(params.age_cap + 1)
                if would_reap(params, state, server, Session(age, 0, 0, 0), "gc", 0))


# ---------------------------------------------------------------- the cutoff arithmetic


def test_websockets_frozen_peer_at_60_20_is_closed_after_80s_not_40():
    config = raw("stacks/python-websockets")
    config["protocol"].update(interval=60, timeout=20)
    params = scenario_from_dict(config, "t").params
    state = initial_states(params)[0]
    assert reaps_at(params, state, 0) == 80  # seen on websockets 17.4: 80 s of silence


def test_the_interval_in_use_is_the_servers_advice_not_its_judged_level():
    params = load_scenario("rollouts/python-websockets-ping-60").params
    state = initial_states(params)[0]
    # A's 20/20: 40. The advice (ping_interval) moved to B's 60, the judge (ping_timeout) still A's 20.
    assert reaps_at(params, state, 0) == 40
    moved = state._replace(servers=(state.servers[0]._replace(adv=1),) + state.servers[1:])
    assert reaps_at(params, moved, 0) == 20 + 60
    judged = replace(params, heartbeat=replace(params.heartbeat, interval_term="judged"))
    assert reaps_at(judged, moved, 0) == 40  # the old rule: the split the real library does not have


def test_engineio_server_cutoff_and_its_check_period():
    params = load_scenario("stacks/socketio-4").params
    state = initial_states(params)[0]
    cutoff = reaps_at(params, state, 0)
    assert cutoff == 25 + 20
    # python-engineio checks every ping_timeout / sockets: one socket, every 20 s. The model's timer
    # may fire at any moment from the cutoff on, so the real close falls in [cutoff, cutoff + 20];
    # a frozen client at 25/20 was seen dropped after 60 s.
    period = params.levels[0].timeout / params.clients
    assert cutoff <= 60 <= cutoff + period


def test_engineio_3_server_timer_reads_its_own_ping_interval():
    # engine.io 3.6.2 lib/socket.js: setTimeout(server.pingInterval + server.pingTimeout)
    params = load_scenario("rollouts/socketio-2-ping-60").params
    state = initial_states(params)[0]
    assert reaps_at(params, state, 0) == 25 + 5
    handed_out = state._replace(servers=(state.servers[0]._replace(adv=1),) + state.servers[1:])
    assert reaps_at(params, handed_out, 0) == 5 + 60  # a server handing out 60 s waits 60 + 5


def test_engineio_client_judges_by_its_handshake_values():
    params = load_scenario(LIVE).params
    (judge,) = params.judges
    assert (judge.side, judge.source) == ("client", "handshake")
    assert params.judge_cutoff(judge, 0) == 25 + 20  # A told at the handshake: 45 s, as seen
    assert params.judge_cutoff(judge, 1) == 60 + 20


# ---------------------------------------------------------------- seeded bugs and controls


def test_a_live_interval_raise_is_violated_through_the_clients_judge():
    prop = nvr(LIVE)
    assert str(prop.verdict) == "violated"
    pre, (_, last) = prop.run.states[-2], prop.run.steps[-1]
    (ev,) = [e for e in last.events if isinstance(e, Reaped)]
    assert ev.path == "client" and ev.judged_by == "handshake" and is_valid(pre, ev.client)
    assert ev.cutoff == "45" and ev.age >= 45
    text = render_timeline(prop.run, load_scenario(LIVE).params, title=LIVE)
    assert "gives up on" in text and "live, without a restart" in text and "(past it since t=45)" in text


def test_without_the_client_judge_the_live_raise_goes_unseen():
    # The seeded bug: take the client's judge away; the server's own judge
    # (60 + 20 s, the interval in use) is content, so nothing is found.
    config = raw(LIVE)
    del config["judge"]
    assert str(nvr(config).verdict) == "holds"


def test_the_same_raise_by_restarts_holds():
    config = raw(LIVE)
    del config["rollout"]["phases"][0]["change"]
    assert str(nvr(config).verdict) == "holds"
    assert str(nvr("rollouts/socketio-4-ping-60").verdict) == "holds"  # the restart-based rollout, as seen


def test_plan_proposes_restarts_for_a_live_change_no_order_saves():
    sc = load_scenario(LIVE)
    result = plan(sc.params, scenario=sc.name, budget=sc.bounds)
    assert str(result.candidates[0].verdict) == "violated" and result.candidates[0].written
    assert [p.change for p in result.proposal.phases] == ["restart"]


def test_websockets_rollout_as_written_holds_and_the_old_split_would_not():
    assert str(nvr("rollouts/python-websockets-ping-60").verdict) == "holds"
    config = raw("rollouts/python-websockets-ping-60")
    del config["heartbeat"]["interval_term"]
    assert str(nvr(config).verdict) == "violated"


def test_a_heartbeat_longer_than_the_proxys_idle_timeout_is_cut():
    prop = nvr("proxies/nginx-websockets-ping-90")
    assert str(prop.verdict) == "violated"
    (ev,) = [e for e in prop.run.steps[-1][1].events if isinstance(e, Reaped)]
    assert ev.path == "proxy" and ev.cutoff == "60" and is_valid(prop.run.states[-2], ev.client)
    for name in ("proxies/nginx-websockets", "proxies/aws-alb-websockets"):
        assert str(nvr(name).verdict) == "holds"
    # As seen by hand: a 40 s idle cutoff in front of 60 s pings cuts healthy connections.
    config = raw("proxies/nginx-websockets")
    config["protocol"]["interval"] = 60
    config["proxy"][0]["idle_timeout"] = 40
    assert str(nvr(config).verdict) == "violated"


def test_a_proxy_closes_a_crashed_clients_half_open_connection():
    params = load_scenario("proxies/nginx-websockets").params
    state = initial_states(params)[0]
    cl = state.clients[0]
    crashed = state._replace(clients=(cl._replace(phase="crashed", session=cl.session._replace(age=60)),))
    assert expired_judges(params, crashed) == [(0, 0)]
    assert expired_judges(params, state) == []


def test_presets_without_the_new_rules_are_unchanged():
    for name in preset_names() + shipped_names("stacks") + shipped_names("rollouts"):
        if name in ("stacks/python-websockets", "stacks/socketio-4", "stacks/socketio-2", LIVE,
                    "rollouts/python-websockets-ping-60", "rollouts/socketio-4-ping-60", "rollouts/socketio-2-ping-60",
                    "stacks/grpc"):  # gRPC's lower bound (tests/test_spacing.py)
            continue
        sc = load_scenario(name)
        assert sc.params.judge_rules() == () and sc.params.judges == ()
        assert "judge" not in sc.config and "interval_term" not in sc.config.get("heartbeat", {})


# ---------------------------------------------------------------- engines


def test_the_hypothesis_engine_finds_both_new_judges():
    for name in (LIVE, "proxies/nginx-websockets-ping-90"):
        result = run_engine("hypothesis", load_scenario(name), (no_valid_reap,), seed=3, examples=300, steps=20)
        assert str(result.get("no_valid_reap").verdict) == "violated", name
    assert {"expire", "reconfigure"} <= set(ACTIONS)


@pytest.mark.parametrize("name, rule", [
    ("stacks/python-websockets", 'interval_term = "in-use"'),
    ("stacks/socketio-4", "[[judge]]"),
    (LIVE, 'change = "live"'),
    ("proxies/nginx-websockets", "[[proxy]]"),
])
def test_z3_encodes_every_new_rule_and_the_storm_simulation_refuses_a_live_change_only(name, rule):
    sc = load_scenario(name)
    check_encodable(sc.params)  # the symbolic engine states each of them, a live change included
    if name == LIVE:
        with pytest.raises(NotEncoded, match="not encoded.*storm simulation") as err:
            simulate(sc.params, StormParams(clients=10, horizon=60))
        assert "[rollout]" in str(err.value)
    else:
        # The interval in use, client judges and proxies: simulated too.
        series = simulate(sc.params, StormParams(clients=10, horizon=60))
        assert series.meta["clients_at_end"] == pytest.approx(10)


# ---------------------------------------------------------------- the format


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["proxy"][0].pop("idle_timeout"), "[[proxy]] #1: idle_timeout: missing"),
    (lambda c: c["proxy"][0].update(idle_timeout=0), "idle_timeout = 0"),
    (lambda c: c["proxy"][0].update(resets="data-only"), 'resets = "data-only": not modelled'),
    (lambda c: c["proxy"][0].update(counts_pings=False), "counts_pings = false: not modelled"),
    (lambda c: c["proxy"][0].update(counts_pings="yes"), "must be true or false"),
    (lambda c: c["proxy"][0].update(timeout=3), "timeout: unknown key"),
    (lambda c: c.update(judge=[{"side": "proxy"}]), "a proxy is a [[proxy]] table"),
    (lambda c: c.update(judge=[{"cutoff_from": "server"}]), 'cutoff_from = "server"'),
    (lambda c: c["heartbeat"].update(interval_term="sometimes"), '[heartbeat] interval_term = "sometimes"'),
    (lambda c: c["heartbeat"].update(interval_from="client"), 'interval_term = "in-use" with interval_from'),
    (lambda c: c["heartbeat"].update(hold="timeout"), "[[proxy]] with [heartbeat] hold"),
])
def test_mistakes_name_the_key_the_value_and_what_is_allowed(edit, words):
    config = copy.deepcopy(raw("proxies/nginx-websockets"))
    edit(config)
    with pytest.raises(ScenarioError, match="proxies|t:") as err:
        scenario_from_dict(config, "t")
    assert words in str(err.value)


def test_a_live_change_applies_to_servers_only_and_reads_back_unchanged(tmp_path):
    config = raw(LIVE)
    sc = load_scenario(LIVE)
    assert scenario_from_dict(sc.config, "again") == replace(sc, source="again")
    config["rollout"]["phases"] = [{"side": "clients", "change": "live"}]
    config["heartbeat"]["interval_from"] = "client"
    config["heartbeat"]["interval_term"] = "judged"
    with pytest.raises(ScenarioError, match="change applies only to side"):
        scenario_from_dict(config, "t")


def test_the_cli_refuses_a_bad_proxy_before_it_starts(tmp_path, capsys):
    text = (ROOT / "model" / "scenarios" / "proxies" / "nginx-websockets.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("idle_timeout = 60", "idle_timeout = -1"))
    assert main(["check", str(bad), "--quiet", "--out", str(tmp_path / "out")]) == 2
    assert "[[proxy]] #1 idle_timeout = -1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_websockets_17_backoff():
    from stormcheck.model.policies import Policy

    policy = Policy("websockets", cap=90)
    assert policy.delays(1, 0) == ((0, 1.0, 0),)  # a dropped connection: at once
    assert [d for d, _, _ in policy.delays(2, 0)] == [0, 1, 2, 3, 4, 5]  # a failed attempt: random 0-5 s
    # then 3.1 x 1.618^n s (3.1, 5.02, 8.12, 13.1, 21.2, 34.4, 55.6, 89.99), capped at 90
    assert [policy.delays(a, 0)[0][0] for a in range(3, 13)] == [3, 5, 8, 13, 21, 34, 56, 90, 90, 90]
    # the preset's one delay: at once (1 s, the smallest the format takes)
    assert load_scenario("stacks/python-websockets").params.retry == 1


def test_list_shows_the_proxy_presets(capsys):
    assert main(["list", "proxies"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:]] == shipped_names("proxies")
    assert shipped_names("proxies") == [
        "proxies/aws-alb-websockets", "proxies/nginx-websockets", "proxies/nginx-websockets-ping-90"]


def test_the_timeline_names_every_judge(tmp_path):
    prop = nvr("proxies/nginx-websockets-ping-90")
    text = render_timeline(prop.run, load_scenario("proxies/nginx-websockets-ping-90").params)
    assert "judge: proxy nginx, idle timeout 60s" in text and "proxy nginx cuts valid c0" in text
    text = render_timeline(nvr(LIVE).run, load_scenario(LIVE).params)
    assert "judge: the client itself, 1 x T + 1 x I as told at its handshake" in text
