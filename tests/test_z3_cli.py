"""The symbolic engine and ``synth`` on the command line (stormcheck/synth_cmd.py, cli.py)."""

from __future__ import annotations

import json

import pytest

from stormcheck.cli import main

RANGED = """
[scenario]
name = "ranged-off"
design = "off"

[protocol]
rtt = [0, 2]

[ranges]
timeout = [10, 120]
interval = [0, 30]
rtt_max = [0, 10]
"""


def test_check_symbolic_writes_a_certified_trace_that_replays(tmp_path, capsys):
    code = main(["check", "gitter-2015", "--engine", "symbolic", "--property", "no_valid_reap",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1 and "certified counterexample" in out
    trace = tmp_path / "gitter-2015.per-server.no_valid_reap.itf.json"
    assert trace.exists()
    assert main(["replay", str(trace)]) == 0


def test_check_symbolic_proves_a_safe_design(tmp_path, capsys):
    code = main(["check", "gitter-2015", "--engine", "symbolic", "--design", "per-session",
                 "--property", "no_valid_reap", "--out", str(tmp_path), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["properties"]["no_valid_reap"]["basis"].startswith("proved by an inductive invariant")


def test_synth_prints_a_checked_region_as_json(tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    code = main(["synth", str(path), "--json", "--out", str(tmp_path / "out")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["verdict"] == "answered" and doc["kind"] == "region"
    assert doc["constraint"] == "T0 + I0 + rtt_max < ceil(1.6 x T0)" and doc["proved"]
    assert doc["outside_certified_steps"] is not None and doc["inside"] is not None
    # The run just outside is written as a trace that replays.
    assert main(["replay", doc["files"]["synth-outside"]]) == 0
    # So is the counterexample to induction, labelled as one (its first state may be unreachable).
    cti = json.loads(open(doc["files"]["synth-cti"]).read())
    assert cti["#meta"]["kind"] == "counterexample to induction" and "property" not in cti["#meta"]
    capsys.readouterr()
    assert main(["replay", doc["files"]["synth-cti"]]) == 0
    assert "a counterexample to induction, NOT a counterexample" in capsys.readouterr().out
    assert main(["replay", doc["files"]["synth-outside"]]) == 0  # control: a real reap says no such thing
    assert "NOT a counterexample" not in capsys.readouterr().out


def test_synth_text(tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    assert main(["synth", str(path)]) == 0
    out = capsys.readouterr().out
    assert "safe (proved: any number of clients, unbounded time" in out and "synth: answered" in out


def test_synth_on_what_is_not_encoded_is_inconclusive(capsys):
    assert main(["synth", "rollouts/socketio-4-ping-60"]) == 3
    assert "not encoded: a configuration rollout ([rollout])" in capsys.readouterr().err


@pytest.mark.parametrize("name, region", [
    ("stacks/mqtt", "I0 + rtt_max < ceil(1.5 x T0)"),  # a ping answered at once: no hold term
    ("stacks/socketio-4", "I0 + rtt_max < ceil(1 x T0 + 1 x I0)"),  # Engine.IO's cutoff: pingInterval + pingTimeout
])
def test_synth_on_a_stack_states_its_region_in_the_stack_rules(capsys, name, region):
    assert main(["synth", name]) == 0
    out = capsys.readouterr().out
    assert region in out and "proved: any number of clients" in out and "safe" in out


def test_synth_on_a_violated_stack_shows_the_bound_it_breaks(capsys):
    # gRPC with a 10 s client keepalive against a 300 s minimum: no upper-bound form is safe; the
    # region with the spacing's lower bound is proved, the scenario is outside it, and a run there
    # is certified (the "too many pings" close).
    assert main(["synth", "variants/grpc-keepalive-10"]) == 0
    out = capsys.readouterr().out
    assert "not sufficient: I0 + rtt_max < ceil(1 x T0)" in out
    assert "I0 + rtt_min >= 300 and I0 + rtt_max < ceil(1 x T0)" in out and "the scenario's values do not satisfy" in out
    assert ("outside, at the scenario's values: a valid session is closed by its server: pings too close together "
            "(certified run of") in out


def test_synth_bad_input(tmp_path, capsys):
    assert main(["synth", "--design", "nope"]) == 2
    assert "unknown design" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "missing.toml")]) == 2
    assert main(["synth", "gitter-2015", "--steps", "0"]) == 2
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    assert main(["synth", str(path), "--high-ms", "9000"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--high-ms 9000: only used when synth finds an adjuster's thresholds" in err
    assert "has [ranges]" in err


def test_synth_refuses_high_ms_for_a_design_without_an_adjuster(capsys):
    # static-45's design is off: synth finds no thresholds, so --high-ms would be dropped unread.
    assert main(["synth", "static-45", "--high-ms", "5"]) == 2
    err = capsys.readouterr().err
    assert "--high-ms 5: only used when synth finds an adjuster's thresholds" in err, err
    assert "static-45 has design off, which has no adjuster" in err and "Traceback" not in err


def test_check_symbolic_states_its_bound_when_nothing_is_proved(tmp_path, capsys):
    # per-server cannot be proved (a counterexample to induction) and has no
    # reap within 4 steps: holds *within the bound*, and the basis says so.
    rc = main(["check", "--engine", "symbolic", "--steps", "4", "--property", "no_valid_reap",
               "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "bounded: no counterexample of <= 4 steps" in out and "not proved (cti" in out
    assert not list(tmp_path.iterdir())


def _ranged_stack(tmp_path, name: str) -> str:
    """Stack preset `name` with its timeout, interval and RTT ranged, as a file."""
    from stormcheck.model.scenario_files import _preset_dir

    text = (_preset_dir() / f"stacks/{name}.toml").read_text()
    path = tmp_path / f"{name}.toml"
    path.write_text(text + "\n[ranges]\ntimeout = [5, 300]\ninterval = [1, 120]\nrtt_max = [0, 10]\n")
    return str(path)


def test_every_stack_names_its_timeout_interval_and_unit():
    from stormcheck.model.scenario import load_scenario, shipped_names

    for name in shipped_names("stacks"):
        terms = load_scenario(name).config.get("terms", {})
        assert {"timeout", "interval", "unit"} <= set(terms), name
        assert terms["timeout"] != terms["interval"], name  # the two axes are told apart


def test_synth_states_a_stack_region_in_its_own_names_and_unit(tmp_path, capsys):
    # Engine.IO's settings are milliseconds: the proved points, x 1000, under pingTimeout / pingInterval.
    path = _ranged_stack(tmp_path, "socketio-4")
    assert main(["synth", path, "--json", "--out", str(tmp_path / "out")]) == 0
    doc = json.loads(capsys.readouterr().out)
    terms = doc["terms"]
    assert terms["constraint_unit"] == "s"  # the constraint's terms and constants, as the scenario counts
    assert terms["unit"] == "ms" and terms["names"] == {"timeout": "pingTimeout", "interval": "pingInterval",
                                                        "rtt_max": "RTT"}
    assert terms["constraint"] == doc["constraint"].replace("T0", "pingTimeout").replace("I0", "pingInterval") \
        .replace("rtt_max", "RTT")
    for side in ("inside", "outside"):
        model = doc[side]
        assert terms[side] == {"pingTimeout": 1000 * model["timeout"], "pingInterval": 1000 * model["interval"],
                               "RTT": 1000 * model["rtt_max"]}
    assert main(["replay", doc["files"]["synth-outside"]]) == 0  # the point outside is a real reap
    capsys.readouterr()
    assert main(["synth", path]) == 0
    out = capsys.readouterr().out
    assert "in socketio-4's own terms (settings in ms):" in out
    assert f"outside (a certified run reaps a valid session): pingTimeout = {1000 * doc['outside']['timeout']} ms" in out


def test_synth_names_a_proxys_bound_and_cut_in_its_own_terms(capsys):
    # nginx-websockets-ping-90: pings every 90 s through nginx's 60 s proxy_read_timeout.
    assert main(["synth", "proxies/nginx-websockets-ping-90"]) == 0
    out = capsys.readouterr().out
    assert "I0 + rtt_max < 60 (nginx's idle timeout) and I0 + rtt_max < ceil(1 x T0 + 1 x I0)" in out
    assert "safe where ping_interval + RTT < 60 (nginx's proxy_read_timeout) and " in out
    assert "outside, at the scenario's values: a valid session is cut by the proxy nginx (certified run of" in out
    assert main(["synth", "proxies/nginx-websockets-ping-90", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outside_cut"] == "cut by the proxy nginx"


def test_a_region_with_nothing_to_restate_prints_no_terms_heading(tmp_path):
    # A region over [ranges] with nothing proved and no point checked has nothing to say in the
    # stack's terms: no heading either. Control: the same stack's proved region restates itself.
    import dataclasses

    from stormcheck.checkers.z3_synth import safe_region
    from stormcheck.model.scenario import load_scenario
    from stormcheck.terms import in_terms

    scenario = load_scenario(_ranged_stack(tmp_path, "socketio-4"))
    region = safe_region(scenario)
    lines = in_terms(scenario, region)
    assert lines[0] == "  in socketio-4's own terms (settings in ms):" and len(lines) > 1
    empty = dataclasses.replace(region, constraint=None, inside=None, outside=None, outside_run=None)
    assert in_terms(scenario, empty) == []


def test_a_scenario_without_terms_keeps_the_model_names(tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    assert main(["synth", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["terms"] is None
    assert main(["synth", str(path)]) == 0
    assert "own terms" not in capsys.readouterr().out


@pytest.mark.parametrize("line, says", [
    ('unit = "minutes"', '[terms] unit = "minutes": must be one of "s", "ms"'),
    ('timeout = ""', '[terms] timeout = "": must be a non-empty string'),
    ("keepalive = 60", "[terms] keepalive: unknown key; allowed keys in [terms]: timeout, interval, rtt, idle_timeout, unit"),
])
def test_bad_terms_exit_2_naming_key_value_and_what_is_allowed(tmp_path, capsys, line, says):
    path = tmp_path / "bad.toml"
    path.write_text(RANGED + f"\n[terms]\n{line}\n")
    assert main(["synth", str(path)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_an_inconclusive_rollout_names_its_counterexample_to_induction_as_a_reader_says_it(tmp_path, capsys):
    # The basis once printed the records' repr: "State(clients=(Client(phase='waiting', server=1, ...".
    code = main(["check", "rollouts/faye-timeout-101", "--engine", "symbolic", "--steps", "3", "--property",
                 "no_valid_reap", "--json", "--quiet", "--out", str(tmp_path)])
    basis = json.loads(capsys.readouterr().out)["properties"]["no_valid_reap"]["basis"]
    assert code == 3 and "counterexample to induction" in basis, basis
    assert "State(" not in basis and "Client(" not in basis and "Session(" not in basis, basis
    assert "c0 waiting on s1, timer 16s, session age 102s (handshake at T=45 I=1" in basis, basis
    assert "s1 up, advising T=101 I=15, judging by T=101" in basis and "the bad step from it: gc(" in basis, basis
    # Control: a rollout the symbolic engine proves has no counterexample to induction to tell.
    code = main(["check", "rollouts/mqtt-keepalive-120", "--engine", "symbolic", "--steps", "3", "--property",
                 "no_valid_reap", "--json", "--quiet", "--out", str(tmp_path)])
    basis = json.loads(capsys.readouterr().out)["properties"]["no_valid_reap"]["basis"]
    assert code == 0 and basis.startswith("proved by an inductive invariant"), basis
