"""A lower-bound judge: a minimum spacing between heartbeats, with strikes (gRPC keepalive enforcement).

The server holding a connection counts a heartbeat that comes sooner than
``[heartbeat] min_spacing`` after the previous one as a strike, and closes the
connection on the strike after ``strikes`` (gRPC core's ping abuse policy and
grpc-go's handlePing: GOAWAY "too_many_pings" once the count exceeds
max_ping_strikes). The preset at the server's defaults holds; the same fleet
with a 10 s client keepalive is violated, and the checks below pin the
arithmetic: the first heartbeat is never early, a spacing equal to the
minimum is not early, and the close comes on strike ``strikes + 1``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.cli import main
from stormcheck.model.events import Reaped, Struck
from stormcheck.model.fleet import initial_states, successors
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.model.state import NO_PING
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap, parameter_agreement, reap_margin
from stormcheck.traces.export import replay_trace, trace_to_run_inputs
from stormcheck.traces.itf import Trace

ROOT = Path(__file__).resolve().parent.parent
VARIANT = "variants/grpc-keepalive-10"


def raw(name: str) -> dict:
    return tomllib.loads((ROOT / "model" / "scenarios" / f"{name}.toml").read_text())


def with_(name: str, **sections) -> dict:
    config = raw(name)
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def verdicts(config) -> dict:
    sc = load_scenario(config) if isinstance(config, str) else scenario_from_dict(config, "t")
    return {p.name: p.verdict.value for p in run_engine("exhaustive", sc, PROPERTIES).properties}


def steady_run(params, steps: int):
    """The run in which nothing fails and every RTT is 0: (action, step) pairs."""
    state, out = initial_states(params)[0], []
    for _ in range(steps):
        action, step = next((a, st) for a, st in successors(params, state)
                            if a.kind in ("reply", "arrive", "reconnect") and a.value in (-1, 0) or a.kind == "tick")
        out.append((action, step))
        state = step.state
    return out


def test_preset_holds_and_the_short_keepalive_is_cut():
    assert set(verdicts("stacks/grpc").values()) == {"holds"}
    got = verdicts(VARIANT)
    assert got["no_valid_reap"] == got["parameter_agreement"] == "violated"


def test_the_close_comes_on_the_strike_after_the_tolerated_ones():
    params = load_scenario(VARIANT).params
    assert initial_states(params)[0].clients[0].session.strikes == NO_PING
    events = [ev for _, st in steady_run(params, 14) for ev in st.events]
    struck = [ev for ev in events if isinstance(ev, Struck)]
    closed = [ev for ev in events if isinstance(ev, Reaped)]
    # Heartbeats 10 s apart: the first is never early, then strikes 1, 2, 3; 3 > 2 closes.
    assert [s.strikes for s in struck] == [1, 2, 3] and all(s.spacing == 10 for s in struck)
    assert len(closed) == 1 and closed[0].path == "spacing" and closed[0].age == 10
    assert events.index(closed[0]) == events.index(struck[-1]) + 1


@pytest.mark.parametrize("strikes", [0, 5])
def test_the_tolerance_only_delays_the_close(strikes):
    config = with_(VARIANT, heartbeat={"strikes": strikes})
    params = scenario_from_dict(config, "t").params
    events = [ev for _, st in steady_run(params, 8 + 3 * strikes) for ev in st.events]
    struck = [ev.strikes for ev in events if isinstance(ev, Struck)]
    assert struck[: strikes + 1] == list(range(1, strikes + 2))
    assert any(isinstance(ev, Reaped) and ev.path == "spacing" for ev in events)
    assert verdicts(config)["no_valid_reap"] == "violated"


def test_a_spacing_equal_to_the_minimum_is_not_early():
    # Pings I + RTT apart with RTT in {0, 2}: I = 300 lands at 300 or 302 (never early);
    # I = 299 lands at 299 (early) - one second decides.
    assert verdicts(with_("stacks/grpc", protocol={"interval": 300}))["no_valid_reap"] == "holds"
    tight = verdicts(with_("stacks/grpc", protocol={"interval": 299}))
    assert tight["no_valid_reap"] == tight["parameter_agreement"] == "violated"


def test_parameter_agreement_reads_the_lower_bound():
    params = load_scenario(VARIANT).params
    run = steady_run(params, 4)
    after_first = run[-1][1].state  # the first heartbeat arrived: the next may be early
    assert after_first.clients[0].session.strikes == 0
    assert reap_margin(params, after_first) <= 0
    ok = load_scenario("stacks/grpc").params
    assert reap_margin(ok, steady_run(ok, 4)[-1][1].state) > 0


@pytest.mark.parametrize("change, words", [
    ({"heartbeat": {"min_spacing": 0, "strikes": 3}}, "strikes = 3 without min_spacing"),
    ({"heartbeat": {"hold": "timeout"}}, 'needs hold = "none"'),
    ({"heartbeat": {"store": "shared"}}, 'store = "local"'),
    ({"heartbeat": {"min_spacing": -1}}, "min_spacing = -1"),
])
def test_bad_spacing_keys_are_refused_by_name(change, words):
    config = raw("stacks/grpc")
    for section, values in change.items():
        config[section].update(values)
    with pytest.raises(ScenarioError, match=words.replace("(", r"\(")):
        scenario_from_dict(config, "t")


def test_cli_refuses_a_bad_key_with_exit_2(tmp_path, capsys):
    text = (ROOT / "model" / "scenarios" / "stacks" / "grpc.toml").read_text().replace('store = "local"',
                                                                                       'store = "shared"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "min_spacing" in err and "Traceback" not in err


def test_the_symbolic_engine_finds_the_goaway_and_the_storm_simulation_refuses_it_by_name(capsys, tmp_path):
    assert main(["check", VARIANT, "--engine", "symbolic", "--property", "no_valid_reap", "--quiet",
                 "--out", str(tmp_path)]) == 1
    assert "certified counterexample" in capsys.readouterr().out
    assert main(["storm", "stacks/grpc"]) == 3
    assert "min_spacing" in capsys.readouterr().err


def test_the_trace_replays_and_an_older_trace_without_strikes_still_loads(tmp_path):
    assert main(["check", VARIANT, "--property", "no_valid_reap", "--out", str(tmp_path), "--quiet"]) == 1
    path = tmp_path / "grpc-keepalive-10.off.no_valid_reap.itf.json"
    params = load_scenario(VARIANT).params
    run = replay_trace(Trace.read(path), params)
    assert any(isinstance(e, Reaped) and e.path == "spacing" for e in run.steps[-1][1].events)
    # Written before Session had a strike count: the field is absent, read as its default.
    doc = json.loads(path.read_text())
    for state in doc["states"]:
        for client in state["clients"]:
            if isinstance(client["session"], dict):
                client["session"].pop("strikes")
    old = tmp_path / "old.itf.json"
    old.write_text(json.dumps(doc))
    _, _, states = trace_to_run_inputs(Trace.read(old))
    assert [cl.session.strikes for st in states for cl in st.clients if cl.session] == \
        [0] * sum(1 for st in states for cl in st.clients if cl.session)


def test_one_millisecond_decides_in_a_millisecond_fleet():
    # 299,999 ms against 300,000: struck whenever the round trip is under 1 ms; the same fleet
    # with the keepalive at the minimum (stacks/grpc's 300 s, here 300,000 ms) is never struck.
    short = verdicts("variants/grpc-keepalive-299999ms")
    assert short["no_valid_reap"] == short["parameter_agreement"] == "violated"
    config = raw("variants/grpc-keepalive-299999ms")
    config["protocol"]["interval"] = 300000
    assert set(verdicts(config).values()) == {"holds"}
