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
    assert main(["replay", doc["files"]["synth-cti"]]) == 0


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


def test_synth_on_a_violated_stack_proves_nothing_and_says_so(capsys):
    # gRPC with a 10 s client keepalive against a 300 s minimum: no region of the upper-bound form is safe.
    assert main(["synth", "variants/grpc-keepalive-10"]) == 3
    assert "no candidate region is proved safe" in capsys.readouterr().out


def test_synth_bad_input(tmp_path, capsys):
    assert main(["synth", "--design", "nope"]) == 2
    assert "unknown design" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "missing.toml")]) == 2
    assert main(["synth", "gitter-2015", "--steps", "0"]) == 2
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    assert main(["synth", str(path), "--high-ms", "9000"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--high-ms" in err


def test_check_symbolic_states_its_bound_when_nothing_is_proved(tmp_path, capsys):
    # per-server cannot be proved (a counterexample to induction) and has no
    # reap within 4 steps: holds *within the bound*, and the basis says so.
    rc = main(["check", "--engine", "symbolic", "--steps", "4", "--property", "no_valid_reap",
               "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "bounded: no counterexample of <= 4 steps" in out and "not proved (cti" in out
    assert not list(tmp_path.iterdir())
