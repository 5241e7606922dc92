"""Session resumption: a reconnect within a stated window keeps the session.

``[heartbeat] resume_window`` (a local store): a running client whose socket
closes keeps its session for the window, and its reconnect to any server
within it resumes the session (Socket.IO 4's connection state recovery,
maxDisconnectionDuration); past it the session is gone, which counts
against a client that did as told. The checks: the preset at the
documented default holds, a window shorter than the reconnect delay is
violated, the seeded bug (the window taken away) turns every resume into a
new session, and the engines that do not encode the rule refuse it by name.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.cli import main
from stormcheck.model.events import Handshake, Reaped, Resumed
from stormcheck.model.fleet import initial_states, is_valid, step
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.model.state import CUT, RETRY, Action
from stormcheck.properties.protocol import PROPERTIES

ROOT = Path(__file__).resolve().parent.parent
PRESET = "variants/socketio-4-recovery"
SHORT = "variants/socketio-4-recovery-2"


def raw(name: str) -> dict:
    return tomllib.loads((ROOT / "model" / "scenarios" / f"{name}.toml").read_text())


def verdicts(config) -> dict:
    sc = load_scenario(config) if isinstance(config, str) else scenario_from_dict(config, "t")
    return {p.name: p.verdict.value for p in run_engine("exhaustive", sc, PROPERTIES).properties}


def test_preset_holds_and_a_window_shorter_than_the_reconnect_is_violated():
    assert set(verdicts(PRESET).values()) == {"holds"}
    assert verdicts(SHORT)["no_valid_reap"] == "violated"


def test_a_dropped_client_resumes_within_the_window_and_not_without_one():
    params = load_scenario(PRESET).params
    state = initial_states(params)[0]
    s = state.clients[0].server
    dropped = step(params, state, Action("lose", server=s)).state
    assert dropped.clients[0].phase == RETRY and dropped.clients[0].session.age == 0
    delay = params.retry_delay
    later = step(params, dropped, Action("tick", value=delay)).state
    other = 1 - s
    resumed = step(params, later, Action("reconnect", client=0, server=other))
    assert [type(e) for e in resumed.events] == [Resumed] and resumed.events[0].age == delay
    assert resumed.state.clients[0].session.hs_level == dropped.clients[0].session.hs_level
    # The seeded bug: no window, so the same reconnect starts a new session.
    config = raw(PRESET)
    del config["heartbeat"]["resume_window"]
    bare = scenario_from_dict(config, "t").params
    dropped = step(bare, initial_states(bare)[0], Action("lose", server=s)).state
    assert dropped.clients[0].session == ()
    later = step(bare, dropped, Action("tick", value=delay)).state
    fresh = step(bare, later, Action("reconnect", client=0, server=other))
    assert any(isinstance(e, Handshake) for e in fresh.events)


def test_past_the_window_the_session_is_gone_and_counts_only_against_a_valid_client():
    params = load_scenario(SHORT).params
    state = initial_states(params)[0]
    s = state.clients[0].server
    dropped = step(params, state, Action("lose", server=s)).state
    later = step(params, dropped, Action("tick", value=params.retry_delay)).state
    st = step(params, later, Action("reconnect", client=0, server=1 - s))
    expired = [e for e in st.events if isinstance(e, Reaped)]
    assert expired and expired[0].path == "resume" and is_valid(later, 0)
    assert any(isinstance(e, Handshake) for e in st.events)
    # A client cut off longer than the window is not valid: its lost session is no violation.
    long_cut = raw(PRESET)
    assert long_cut["faults"]["cut_duration"] > long_cut["heartbeat"]["resume_window"]
    params = load_scenario(PRESET).params
    state = initial_states(params)[0]
    cut = step(params, state, Action("cut", client=0)).state
    assert cut.clients[0].phase == CUT and not is_valid(cut, 0)


def test_a_shared_store_refuses_the_window_by_name():
    config = raw(PRESET)
    config["heartbeat"]["store"] = "shared"
    del config["heartbeat"]["interval_term"]  # it needs a local store too
    with pytest.raises(ScenarioError, match="resume_window = 120 with store"):
        scenario_from_dict(config, "t")


def test_the_symbolic_engine_finds_the_lost_session_and_the_storm_simulation_refuses_it_by_name(capsys, tmp_path):
    assert main(["check", SHORT, "--engine", "symbolic", "--property", "no_valid_reap", "--quiet",
                 "--out", str(tmp_path)]) == 1
    assert "certified counterexample" in capsys.readouterr().out
    assert main(["storm", PRESET]) == 3
    assert "resume_window" in capsys.readouterr().err
