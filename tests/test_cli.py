"""The command line end to end: `stormcheck check | replay | list`.

Mostly in-process through `stormcheck.cli.main(argv)`; a few tests run
``python -m stormcheck`` in a real subprocess to prove the exit codes and that
bad input never reaches stderr as a Python traceback.

Everything runs on the preset gitter-2015 (1 client, a few hundred states per
design) or on tiny scenario files written to tmp_path, so the file stays fast.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stormcheck.cli import main
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import preset_names, shipped_names
from stormcheck.properties.protocol import PROPERTIES

PRESET = "gitter-2015"
PRESETS = ["gitter-2015", "gitter-2015-3x3", "gitter-2015-published", "static-45"]
PROPS = [p.name for p in PROPERTIES]
ALWAYS_PROPS = [p.name for p in PROPERTIES if p.modality == "always"]
SOMETIMES_PROPS = [p.name for p in PROPERTIES if p.modality == "sometimes"]
NO_VALID_REAP = "gitter-2015.per-server.no_valid_reap"


def cli(capsys, *argv):
    """Run `main` in-process; (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def check_json(capsys, *argv):
    """`check --json --quiet ...`: (exit code, parsed stdout, stderr). stdout must be ONE JSON document."""
    rc, out, err = cli(capsys, "check", "--json", "--quiet", *argv)
    doc = json.loads(out)  # raises if stdout holds anything but one JSON document
    return rc, doc, err


def property_rows(out: str) -> dict[str, tuple[str, str, str]]:
    """The property table of a text `check` output: name -> (modality, verdict, basis)."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"^  (\w+)\s+(always|sometimes|eventually-always)\s+(\S+)\s+(.*)$", line)
        if m and m.group(1) in PROPS:
            assert m.group(1) not in rows, f"property listed twice: {line!r}"
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def write_scenario(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


def one_line_message(err: str) -> str:
    """The single `stormcheck: ...` line a bad input must produce on stderr."""
    no_traceback(err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("stormcheck: "), lines[0]
    return lines[0]


def read_trace(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# --------------------------------------------------------------------- check


def test_check_without_scenario_is_gitter_2015_per_server(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "found"
    rc, out, err = cli(capsys, "check", "--out", out_dir)
    assert rc == 1
    no_traceback(err)
    assert out.startswith("scenario gitter-2015 (preset:gitter-2015), design per-server, engine exhaustive")
    rows = property_rows(out)
    assert set(rows) == set(PROPS)
    assert rows["no_valid_reap"][:2] == ("always", "VIOLATED")
    assert "Counterexample to no_valid_reap:" in out
    assert "VIOLATION" in out  # the timeline of the counterexample is shown
    assert out.rstrip().endswith("verdict: violated")

    trace, timeline = out_dir / f"{NO_VALID_REAP}.itf.json", out_dir / f"{NO_VALID_REAP}.timeline.txt"
    assert trace.is_file() and timeline.is_file()
    assert str(trace) in out and str(timeline) in out
    assert "VIOLATION" in timeline.read_text(encoding="utf-8")
    meta = read_trace(trace)["#meta"]
    assert (meta["scenario"], meta["design"], meta["property"], meta["verdict"]) == (
        PRESET, "per-server", "no_valid_reap", "violated"
    )
    assert not list(out_dir.glob(".*")), "temporary files left behind"
    assert not (tmp_path / "out").exists(), "--out was given; ./out must not be used"

    rc, out, err = cli(capsys, "replay", trace)
    assert rc == 0, err
    assert "replays, 12 steps" in out and "violates no_valid_reap" in out
    assert err == ""


def test_check_design_off_holds_by_complete_search(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, out, err = cli(capsys, "check", PRESET, "--design", "off", "--out", out_dir, "--quiet")
    assert rc == 0, out + err
    rows = property_rows(out)
    assert set(rows) == set(PROPS)
    assert all(verdict == "holds" for _, verdict, _ in rows.values()), rows
    for name in ALWAYS_PROPS:
        assert "complete search" in rows[name][2]
    assert "design off" in out and out.rstrip().endswith("verdict: holds")
    assert "Counterexample" not in out and "VIOLATION" not in out
    # Nothing to show for the safety properties; the witnesses are written.
    assert not list(out_dir.glob("*no_valid_reap*")) and not list(out_dir.glob("*parameter_agreement*"))
    for name in SOMETIMES_PROPS:
        assert (out_dir / f"gitter-2015.off.{name}.itf.json").is_file()


def test_check_design_all_prints_one_block_per_design(capsys, tmp_path):
    rc, out, err = cli(capsys, "check", PRESET, "--design", "all", "--out", tmp_path / "o", "--quiet")
    assert rc == 1
    no_traceback(err)
    headers = re.findall(r"^scenario gitter-2015 \(preset:gitter-2015\), design (\S+), engine exhaustive$",
                         out, re.M)
    assert headers == list(DESIGNS)
    assert len(DESIGNS) == 6
    assert len(re.findall(r"^verdict: ", out, re.M)) == 6
    # The manifest's verdicts for no_valid_reap, design by design.
    blocks = dict(zip(headers, re.split(r"^scenario .*$", out, flags=re.M)[1:]))
    expected = {"off": "holds", "per-server": "VIOLATED", "fleet-wide": "VIOLATED",
                "fleet-wide-staged": "holds", "per-session-branch": "VIOLATED", "per-session": "holds"}
    for design, verdict in expected.items():
        assert property_rows(blocks[design])["no_valid_reap"][1] == verdict, design


def test_design_all_on_a_rollout_is_refused_naming_design_all_not_a_design_never_asked_for(capsys, tmp_path):
    # A rollout runs under "off" alone; `--design all` once failed on "per-server", which nobody asked for.
    for argv in (["check", "rollouts/phoenix-heartbeat-90", "--design", "all", "--out", tmp_path / "c"],
                 ["report", "rollouts/phoenix-heartbeat-90", "--design", "all", "--out", tmp_path / "r",
                  "--skip", "storms", "--skip", "synthesis", "--quiet"]):
        rc, out, err = cli(capsys, *argv)
        assert rc == 2 and out == "", (argv, out)
        no_traceback(err)
        assert "--design all with preset:rollouts/phoenix-heartbeat-90" in err and '"off" alone' in err, err
        assert "per-server" not in err, err
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()
    # Control: the rollout under its own design is checked as before.
    rc, out, _ = cli(capsys, "check", "rollouts/phoenix-heartbeat-90", "--out", tmp_path / "c", "--quiet")
    assert rc == 1 and out.splitlines()[-1] == "verdict: violated", out


def test_check_json_is_one_document_with_verdicts_states_and_trace_paths(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, doc, err = check_json(capsys, PRESET, "--out", out_dir)
    assert rc == 1
    assert isinstance(doc, dict)
    assert (doc["scenario"], doc["design"], doc["engine"], doc["verdict"]) == (
        PRESET, "per-server", "exhaustive", "violated"
    )
    assert list(doc["properties"]) == PROPS
    assert isinstance(doc["stats"]["states"], int) and doc["stats"]["states"] > 0
    for name, p in doc["properties"].items():
        assert p["verdict"] in ("holds", "violated", "inconclusive")
        if p["verdict"] == "violated":
            assert Path(p["trace"]).is_file() and Path(p["timeline"]).is_file(), name
    nvr = doc["properties"]["no_valid_reap"]
    assert nvr["verdict"] == "violated" and nvr["steps"] == 12
    assert nvr["trace"] == str(out_dir / f"{NO_VALID_REAP}.itf.json")


def test_check_json_design_all_is_one_document_over_six(capsys, tmp_path):
    rc, top, err = check_json(capsys, PRESET, "--design", "all", "--out", tmp_path / "o")
    assert rc == 1
    assert isinstance(top, dict) and top["verdict"] == "violated" and top["scenario"] == PRESET
    doc = list(top["designs"].values())
    assert [d["design"] for d in doc] == list(DESIGNS)
    for d in doc:
        assert list(d["properties"]) == PROPS
        assert d["stats"]["states"] > 0
        for name, p in d["properties"].items():
            if p["verdict"] == "violated" and p["modality"] == "always":
                assert Path(p["trace"]).is_file(), (d["design"], name)
    assert {d["design"]: d["verdict"] for d in doc}["off"] == "holds"


def test_json_without_a_finding_writes_nothing_and_has_no_paths(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, doc, err = check_json(capsys, PRESET, "--design", "off", "--out", out_dir,
                              "--property", "no_valid_reap")
    assert rc == 0
    p = doc["properties"]["no_valid_reap"]
    assert p["verdict"] == "holds" and p["steps"] is None and "trace" not in p
    assert not out_dir.exists()


# ------------------------------------------------------------------ budgets


def test_a_rerun_that_now_holds_removes_the_earlier_counterexample_and_says_so(capsys, tmp_path):
    # After a fix, the same scenario and design hold; the earlier run's no_valid_reap trace (same name) once
    # stayed in the folder beside the new verdict, as if it were this run's.
    scenario, out = tmp_path / "fleet.toml", tmp_path / "o"
    text = textwrap.dedent("""
        [scenario]
        name = "fleet"
        design = "off"
        [protocol]
        timeout = 20
        interval = {interval}
        [faults]
        client_crash = 1
        server_loss = 1
    """)
    scenario.write_text(text.format(interval=15))
    rc, _, _ = cli(capsys, "check", scenario, "--out", out, "--quiet")
    assert rc == 1 and (out / "fleet.off.no_valid_reap.itf.json").is_file()
    rc, _, _ = cli(capsys, "check", scenario, "--out", out, "--quiet", "--property", "dead_session_reaped")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    scenario.write_text(text.format(interval=0))
    rc, out_text, err = cli(capsys, "check", scenario, "--out", out, "--quiet", "--property", "no_valid_reap")
    assert rc == 0 and out_text.splitlines()[-1] == "verdict: holds", out_text
    stale = [f"fleet.off.no_valid_reap{s}" for s in (".itf.json", ".timeline.txt")]
    assert "removed 2 files an earlier run wrote" in err and all(name in err for name in stale), err
    left = {p.name: p.read_bytes() for p in out.iterdir()}
    # Control: what this run did not decide (the other properties' files) is left as it was.
    assert left == {k: v for k, v in before.items() if k not in stale}, sorted(left)
    rc, _, err = cli(capsys, "check", scenario, "--out", out, "--quiet", "--property", "dead_session_reaped")
    assert rc == 0 and "removed" not in err, err


def test_a_ping_pong_stack_s_timeline_starts_without_a_hold_it_does_not_have(capsys, tmp_path):
    # gRPC answers a ping at once; its timeline once began "start: c0 held by s1 (0s left)".
    rc, _, _ = cli(capsys, "check", "variants/grpc-keepalive-10", "--property", "no_valid_reap", "--quiet",
                   "--out", tmp_path)
    text = (tmp_path / "grpc-keepalive-10.off.no_valid_reap.timeline.txt").read_text()
    assert rc == 1 and "start: c0 connected to s1, its heartbeat arriving now" in text, text
    assert "held by" not in text and "0s left" not in text, text
    # Control: a long-poll (Faye) hold is still told with its time left.
    rc, _, _ = cli(capsys, "check", PRESET, "--property", "no_valid_reap", "--quiet", "--out", tmp_path)
    assert "start: c0 held by s2 (45s left)" in (tmp_path / f"{NO_VALID_REAP}.timeline.txt").read_text()


def test_max_states_budget_is_inconclusive_never_holds(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, out, err = cli(capsys, "check", PRESET, "--design", "off", "--max-states", 5, "--out", out_dir, "--quiet")
    assert rc == 3
    rows = property_rows(out)
    for name in ALWAYS_PROPS:
        assert rows[name][1] == "INCONCLUSIVE", rows[name]
        assert "state budget of 5 spent" in rows[name][2]
    assert "holds" not in out
    assert out.rstrip().endswith("verdict: inconclusive")

    rc, doc, err = check_json(capsys, PRESET, "--design", "off", "--max-states", 5, "--out", out_dir)
    assert rc == 3 and doc["verdict"] == "inconclusive"
    assert all(doc["properties"][n]["verdict"] == "inconclusive" for n in ALWAYS_PROPS)
    assert doc["stats"]["complete"] is False


def test_max_depth_bound_holds_with_stated_basis_when_witnessed(capsys, tmp_path):
    # Both witnesses are found at depth 3 on gitter-2015: all holds, exit 0.
    rc, out, err = cli(capsys, "check", PRESET, "--design", "off", "--max-depth", 3,
                       "--out", tmp_path / "o", "--quiet")
    assert rc == 0, out
    rows = property_rows(out)
    for name in ALWAYS_PROPS:
        assert rows[name][1] == "holds"
        assert "bounded" in rows[name][2] and "3 steps" in rows[name][2]
        assert "complete" not in rows[name][2]
    for name in SOMETIMES_PROPS:
        assert rows[name][1] == "holds" and "found at depth" in rows[name][2]


def test_max_depth_bound_leaves_unwitnessed_sometimes_inconclusive(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, doc, err = check_json(capsys, PRESET, "--design", "off", "--max-depth", 2, "--out", out_dir)
    assert rc == 3
    for name in ALWAYS_PROPS:
        assert doc["properties"][name]["verdict"] == "holds"
        assert "bounded" in doc["properties"][name]["basis"]
    for name in SOMETIMES_PROPS:
        # Not witnessed within 2 steps: a bounded search cannot say "violated" either.
        assert doc["properties"][name]["verdict"] == "inconclusive"
    assert doc["verdict"] == "inconclusive"
    assert doc["stats"]["depth_bound"] == 2 and doc["stats"]["complete"] is False
    assert not out_dir.exists()


def test_violation_outranks_inconclusive_in_the_exit_code(capsys, tmp_path):
    # A budget of 300 states: per-server is violated within it, fleet-wide-staged is not finished.
    rc, doc, err = check_json(capsys, PRESET, "--design", "all", "--max-states", 300, "--out", tmp_path / "o")
    verdicts = {d["design"]: d["verdict"] for d in doc["designs"].values()}
    assert verdicts["off"] == "holds"
    assert verdicts["per-server"] == "violated"
    assert verdicts["fleet-wide-staged"] == "inconclusive"
    assert rc == 1
    # Without any violation, inconclusive decides: 3.
    rc, doc, err = check_json(capsys, PRESET, "--design", "all", "--max-depth", 2, "--out", tmp_path / "o")
    assert {d["verdict"] for d in doc["designs"].values()} == {"inconclusive"} == {doc["verdict"]}
    assert rc == 3


# ---------------------------------------------------------------- properties


def test_an_engine_that_refuses_a_rollout_is_inconclusive_in_text_and_json(capsys, tmp_path):
    # The compositional engine does not cover rollouts: every property inconclusive, naming why, exit 3,
    # and the text summary prints like any other (it once failed on the refusal's missing timing).
    for json_flag in ([], ["--json"]):
        rc = main(["check", "rollouts/phoenix-heartbeat-90", "--engine", "compositional", "--out", str(tmp_path),
                   *json_flag])
        out = capsys.readouterr().out
        assert rc == 3, out
        assert "not covered: a configuration rollout" in out
    text = main(["check", "rollouts/phoenix-heartbeat-90", "--engine", "compositional", "--out", str(tmp_path)])
    assert text == 3
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "verdict: inconclusive" and "0 states, 0 transitions" in out


def test_property_option_limits_the_output(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, out, err = cli(capsys, "check", PRESET, "--property", "no_valid_reap", "--out", out_dir, "--quiet")
    assert rc == 1
    assert list(property_rows(out)) == ["no_valid_reap"]
    for other in PROPS[1:]:
        assert other not in out
    assert [p.name for p in files_under(out_dir)] == [f"{NO_VALID_REAP}.itf.json", f"{NO_VALID_REAP}.timeline.txt"]

    rc, doc, err = check_json(capsys, PRESET, "--property", "no_valid_reap", "--out", out_dir)
    assert list(doc["properties"]) == ["no_valid_reap"]


def test_unknown_property_exits_2_naming_the_known_ones(capsys, tmp_path):
    out_dir = tmp_path / "o"
    rc, out, err = cli(capsys, "check", PRESET, "--property", "no_such_prop", "--out", out_dir)
    assert rc == 2 and out == ""
    line = one_line_message(err)
    assert "no_such_prop" in line
    for name in PROPS:
        assert name in line
    assert not out_dir.exists()


def test_repeated_property_is_checked_once(capsys, tmp_path):
    rc1, doc1, _ = check_json(capsys, PRESET, "--property", "no_valid_reap", "--out", tmp_path / "a")
    rc2, out, _ = cli(capsys, "check", PRESET, "--property", "no_valid_reap", "--property", "no_valid_reap",
                      "--out", tmp_path / "b", "--quiet")
    assert rc1 == rc2 == 1
    assert len(re.findall(r"^  no_valid_reap ", out, re.M)) == 1
    assert f"  {doc1['stats']['states']:,} states," in out


# ----------------------------------------------------------------- bad input

NEGATIVE_TIMEOUT = """
    [scenario]
    name = "neg"
    [protocol]
    timeout = -5
"""
UNKNOWN_KEY = """
    [scenario]
    name = "typo"
    [protocol]
    timout = 45
"""
SYNTAX_ERROR = """
    [scenario]
    name = "broken"
    [protocol
    timeout = 45
"""


def _bad_inputs(tmp_path: Path):
    """(id, argv after 'check', substrings the one-line message must contain)."""
    neg = write_scenario(tmp_path, "neg.toml", NEGATIVE_TIMEOUT)
    unk = write_scenario(tmp_path, "unknown-key.toml", UNKNOWN_KEY)
    syn = write_scenario(tmp_path, "syntax.toml", SYNTAX_ERROR)
    missing = tmp_path / "no-such-dir" / "missing.toml"
    return {
        "negative-timeout": ([neg], [str(neg), "[protocol] timeout", "-5", ">= 1"]),
        "unknown-key": ([unk], [str(unk), "[protocol] timout", "unknown key", "timeout, interval", "Did you mean timeout"]),
        "toml-syntax": ([syn], [str(syn), "not valid TOML", "line 3"]),
        "missing-file": ([missing], [str(missing), "does not exist"]),
        "unknown-preset": (["gitter-2016"], ["gitter-2016", "not a preset name", ", ".join(PRESETS)]),
        "unknown-design": (["--design", "nope"], ["'nope'", "unknown design", *DESIGNS, "all"]),
        # A flag is checked by its [search] key's rule and named with it.
        "zero-max-seconds": (["--max-seconds", "0"], ["--max-seconds", "[search] max_seconds", "must be a number > 0"]),
        "zero-max-states": (["--max-states", "0"], ["--max-states", "[search] max_states", ">= 1"]),
        "negative-max-depth": (["--max-depth", "-1"], ["--max-depth", "[search] max_depth", ">= 0"]),
    }


BAD_INPUT_IDS = ["negative-timeout", "unknown-key", "toml-syntax", "missing-file", "unknown-preset",
                 "unknown-design", "zero-max-seconds", "zero-max-states", "negative-max-depth"]


@pytest.mark.parametrize("case", BAD_INPUT_IDS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(capsys, tmp_path, case):
    argv, needles = _bad_inputs(tmp_path)[case]
    out_dir = tmp_path / "out-folder"
    before = files_under(tmp_path)
    rc, out, err = cli(capsys, "check", *argv, "--out", out_dir)
    assert rc == 2
    assert out == ""
    line = one_line_message(err)
    for needle in needles:
        assert needle in line, f"{needle!r} missing from {line!r}"
    assert not out_dir.exists(), "a bad input must not create --out"
    assert files_under(tmp_path) == before, "a bad input must write nothing"


def test_bad_value_in_a_scenario_file_is_reported_before_any_search(capsys, tmp_path):
    # The same bad value under --design all and --json: still one line, no JSON, nothing written.
    neg = write_scenario(tmp_path, "neg.toml", NEGATIVE_TIMEOUT)
    rc, out, err = cli(capsys, "check", neg, "--design", "all", "--json", "--out", tmp_path / "o")
    assert rc == 2 and out == ""
    assert "[protocol] timeout = -5" in one_line_message(err)
    assert not (tmp_path / "o").exists()


def test_nan_max_seconds_is_bad_input(capsys, tmp_path):
    rc, out, err = cli(capsys, "check", PRESET, "--design", "off", "--max-seconds", "nan",
                       "--out", tmp_path / "o", "--quiet")
    assert rc == 2
    assert "--max-seconds" in one_line_message(err)
    assert not (tmp_path / "o").exists()


SCENARIO_NAMED = """
    [scenario]
    name = "{name}"
    design = "off"
    [topology]
    servers = 3
    clients = 1
    [load]
    levels_ms = [0, 40000]
    [faults]
    server_loss = 1
    client_crash = 1
"""


@pytest.mark.parametrize("name", ["../escaped", "a/b"])
def test_scenario_name_cannot_steer_files_out_of_the_out_folder(capsys, tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    path = write_scenario(work, "named.toml", SCENARIO_NAMED.format(name=name))
    out_dir = work / "o"
    rc, out, err = cli(capsys, "check", path, "--out", out_dir, "--quiet")
    no_traceback(err)
    outside = [p for p in files_under(tmp_path) if p != path and out_dir not in p.parents]
    assert outside == [], f"written outside --out: {outside}"
    if rc == 2:  # rejected: then up front, naming the key, with nothing created
        assert "[scenario] name" in one_line_message(err)
        assert not out_dir.exists()
    else:  # accepted: the files land inside --out
        assert rc == 0 and files_under(out_dir)


# The one folder a process cannot make whoever runs it (root included, for
# whom every permission check passes): /proc takes no new entries.
UNWRITABLE = Path("/proc/nope")
# Each command that takes --out, with options that make its work short.
OUT_COMMANDS = {
    "check": ["check", "static-45", "--engine", "hypothesis", "--seed", "1", "--examples", "5", "--quiet"],
    "storm": ["storm", "static-45", "--no-lasso", "--no-plot", "--horizon", "600", "--clients", "100", "--quiet"],
    "synth": ["synth", "static-45"],
    "sweep": ["sweep", "static-45", "--grid", "timeout=30:45:15", "--no-boundary", "--quiet"],
    "report": ["report", "static-45", "--engine", "exhaustive", "--skip", "storms", "--skip", "synthesis", "--quiet"],
}


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", sorted(OUT_COMMANDS))
def test_an_out_folder_that_cannot_be_made_is_refused_before_any_work(capsys, command):
    rc, out, err = cli(capsys, *OUT_COMMANDS[command], "--out", UNWRITABLE)
    assert rc == 2 and out == ""
    line = one_line_message(err)
    assert f"--out {UNWRITABLE}: cannot be created" in line, line


def test_an_out_folder_made_up_front_is_removed_when_nothing_is_written(capsys, tmp_path):
    out_dir = tmp_path / "new" / "deeper"
    rc, out, err = cli(capsys, "check", "static-45", "--design", "off", "--property", "no_valid_reap", "--quiet",
                       "--out", out_dir)
    assert rc == 0, err
    assert not (tmp_path / "new").exists(), "the probe's folders must go when no finding was written"
    assert files_under(tmp_path) == []


# -------------------------------------------------------------------- replay


@pytest.fixture
def written_trace(capsys, tmp_path) -> Path:
    """The gitter-2015 per-server no_valid_reap counterexample, freshly written."""
    rc, _, _ = cli(capsys, "check", PRESET, "--property", "no_valid_reap", "--out", tmp_path / "o", "--quiet")
    assert rc == 1
    path = tmp_path / "o" / f"{NO_VALID_REAP}.itf.json"
    assert path.is_file()
    return path


def test_replay_timeline_option(capsys, written_trace):
    rc, out, err = cli(capsys, "replay", written_trace, "--timeline")
    assert rc == 0 and err == ""
    assert "violates no_valid_reap" in out and "VIOLATION" in out


def test_replay_of_a_tampered_state_exits_1_naming_the_step(capsys, tmp_path, written_trace):
    doc = read_trace(written_trace)
    assert len(doc["states"]) > 5
    client = doc["states"][5]["clients"][0]
    timer = int(client["timer"]["#bigint"])  # ADR-015: every integer a #bigint
    client["timer"] = {"#bigint": str(timer + 1)}
    tampered = tmp_path / "tampered.itf.json"
    tampered.write_text(json.dumps(doc, indent=2), encoding="utf-8")

    rc, out, err = cli(capsys, "replay", tampered)
    assert rc == 1
    assert out == ""
    no_traceback(err)
    assert err.startswith(f"stormcheck: {tampered} does not replay: step 5:")


def test_replay_of_a_trace_whose_action_does_not_decode_names_the_file_and_the_state(capsys, tmp_path,
                                                                                    written_trace):
    # It once said only "stormcheck: state 3: field 'action': expected a Action record, got 'garbage'".
    doc = read_trace(written_trace)
    doc["states"][3]["action"] = "garbage"
    broken = tmp_path / "broken.itf.json"
    broken.write_text(json.dumps(doc), encoding="utf-8")
    rc, out, err = cli(capsys, "replay", broken)
    assert rc == 2 and out == "", out
    no_traceback(err)
    assert err.startswith(f"stormcheck: {broken}: state 3: field 'action': expected an Action record, got 'garbage'")
    assert "replay takes an ITF trace" in err and err.count("\n") == 1, err
    # Control: the untouched trace replays.
    assert cli(capsys, "replay", written_trace)[0] == 0


def test_replay_of_a_trace_whose_last_step_no_longer_shows_the_verdict_exits_1(capsys, tmp_path, written_trace):
    doc = read_trace(written_trace)
    doc["#meta"]["property"] = "dead_session_reaped"  # a real property this run does not witness at its end
    other = tmp_path / "other.itf.json"
    other.write_text(json.dumps(doc), encoding="utf-8")
    rc, out, err = cli(capsys, "replay", other)
    assert rc == 1
    no_traceback(err)
    assert "no longer shows dead_session_reaped" in err


def test_replay_of_a_file_that_is_not_json_exits_2(capsys, tmp_path):
    path = tmp_path / "garbage.itf.json"
    path.write_text("this is {not json\n", encoding="utf-8")
    rc, out, err = cli(capsys, "replay", path)
    assert rc == 2 and out == ""
    line = one_line_message(err)
    # What was wrong, and what the file should be.
    assert f"{path}: not JSON" in line, line
    assert "ITF trace (JSON" in line and "stormcheck check --out" in line, line


def test_replay_of_json_without_scenario_config_exits_2(capsys, tmp_path, written_trace):
    doc = read_trace(written_trace)
    del doc["#meta"]["scenario_config"]
    path = tmp_path / "nocfg.itf.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    rc, out, err = cli(capsys, "replay", path)
    assert rc == 2 and out == ""
    assert "scenario_config" in one_line_message(err)

    plain = tmp_path / "plain.json"
    plain.write_text('{"vars": [], "states": []}', encoding="utf-8")
    rc, out, err = cli(capsys, "replay", plain)
    assert rc == 2
    assert "scenario_config" in one_line_message(err)


def test_replay_of_a_missing_file_exits_2(capsys, tmp_path):
    rc, out, err = cli(capsys, "replay", tmp_path / "nope.itf.json")
    assert rc == 2
    line = one_line_message(err)
    assert f"{tmp_path / 'nope.itf.json'}: no such file" in line, line
    assert "ITF trace (JSON" in line and "stormcheck check --out" in line, line
    assert "Errno" not in line
    rc, out, err = cli(capsys, "replay", tmp_path)
    assert rc == 2
    assert f"{tmp_path}: is a folder" in one_line_message(err)


def test_replay_of_a_trace_with_a_bad_scenario_config_exits_2(capsys, tmp_path, written_trace):
    doc = read_trace(written_trace)
    doc["#meta"]["scenario_config"]["protocol"]["timeout"] = -5
    path = tmp_path / "badcfg.itf.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    rc, out, err = cli(capsys, "replay", path)
    assert rc == 2
    assert "[protocol] timeout = -5" in one_line_message(err)


def test_replay_of_a_trace_naming_an_unknown_property_exits_2(capsys, tmp_path, written_trace):
    doc = read_trace(written_trace)
    doc["#meta"]["property"] = "bogus"
    path = tmp_path / "bogus.itf.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    rc, out, err = cli(capsys, "replay", path)
    assert rc == 2
    line = one_line_message(err)
    assert "bogus" in line and "no_valid_reap" in line


# ---------------------------------------------------------------------- list


def test_list_prints_presets_designs_and_properties(capsys):
    rc, out, err = cli(capsys, "list")
    assert rc == 0 and err == ""
    assert preset_names() == PRESETS
    sections = out.strip().split("\n\n")
    assert len(sections) == 3
    # The presets end with the shipped folders, their counts and how to list them.
    *presets, folders = sections[0].splitlines()
    counts = {f: len(shipped_names(f)) for f in ("stacks", "rollouts", "proxies", "variants", "storms")}
    assert all(counts.values()), counts
    assert folders == (f"  and {sum(counts.values())} more in folders: "
                       f"{', '.join(f'{f} ({n})' for f, n in counts.items())}; "
                       "'stormcheck list FOLDER' lists them, run one as FOLDER/NAME")
    sections[0] = "\n".join(presets)
    first_words = [[line.split()[0] for line in s.strip().splitlines()[1:]] for s in sections]
    # The properties: the default set of `check`, then those checked on request (delivery, liveness).
    assert first_words == [PRESETS, list(DESIGNS), PROPS + ["no_message_loss", "storm_subsides"]]
    assert len(first_words[1]) == 6 and len(first_words[2]) == 6


# -------------------------------------------------------------- determinism

_VERSION = re.compile(rb'"version": "[^"]*"')


def test_check_json_is_deterministic(capsys, tmp_path):
    runs = []
    for name in ("first", "second"):
        rc, doc, _ = check_json(capsys, PRESET, "--design", "all", "--out", tmp_path / name)
        runs.append((rc, doc))
    (rc1, a), (rc2, b) = runs
    assert rc1 == rc2 == 1
    for da, db in zip(a["designs"].values(), b["designs"].values()):
        assert da["design"] == db["design"]
        assert {n: p["verdict"] for n, p in da["properties"].items()} == {
            n: p["verdict"] for n, p in db["properties"].items()}
        assert {n: p["steps"] for n, p in da["properties"].items()} == {
            n: p["steps"] for n, p in db["properties"].items()}
        assert da["stats"]["states"] == db["stats"]["states"]
        assert da["stats"]["transitions"] == db["stats"]["transitions"]

    first, second = tmp_path / "first", tmp_path / "second"
    names = [p.name for p in files_under(first)]
    assert names and names == [p.name for p in files_under(second)]
    for name in names:
        x, y = (first / name).read_bytes(), (second / name).read_bytes()
        if name.endswith(".itf.json"):
            assert len(_VERSION.findall(x)) == 1  # exactly one field may differ
            x, y = _VERSION.sub(b'"version": ""', x), _VERSION.sub(b'"version": ""', y)
        assert x == y, name


# --------------------------------------------------------------- subprocess


def _python_m(*argv, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.Popen([sys.executable, "-m", "stormcheck", *map(str, argv)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_subprocess_check_then_replay(tmp_path):
    rc, out, err = _finish(_python_m("check", "--out", "found", cwd=tmp_path))
    assert rc == 1, err
    no_traceback(err)
    assert "no_valid_reap" in out and "VIOLATED" in out and "VIOLATION" in out
    trace = tmp_path / "found" / f"{NO_VALID_REAP}.itf.json"
    assert trace.is_file() and (tmp_path / "found" / f"{NO_VALID_REAP}.timeline.txt").is_file()

    rc, out, err = _finish(_python_m("replay", trace.relative_to(tmp_path), cwd=tmp_path))
    assert rc == 0, err
    assert "replays" in out and err == ""


# The brief's bad inputs (the in-process test above covers a few more); each process costs
# about half a second of imports, so they run in parallel.
SUBPROCESS_BAD_INPUTS = ["negative-timeout", "unknown-key", "toml-syntax", "missing-file", "unknown-preset",
                         "unknown-design", "zero-max-seconds"]


def test_subprocess_bad_input_exits_2_without_traceback(tmp_path):
    cases = _bad_inputs(tmp_path)
    garbage = tmp_path / "garbage.itf.json"
    garbage.write_text("not json", encoding="utf-8")
    argvs = {case: ["check", *cases[case][0], "--out", tmp_path / f"out-{case}"] for case in SUBPROCESS_BAD_INPUTS}
    argvs["replay-not-json"] = ["replay", garbage]
    procs = {case: _python_m(*argv, cwd=tmp_path) for case, argv in argvs.items()}
    for case, proc in procs.items():
        rc, out, err = _finish(proc)
        assert rc == 2, (case, err)
        assert out == "", case
        line = one_line_message(err)  # no traceback, one line
        for needle in cases[case][1] if case in cases else [str(garbage)]:
            assert needle in line, (case, needle, line)
    assert not any((tmp_path / f"out-{case}").exists() for case in SUBPROCESS_BAD_INPUTS)


def test_subprocess_version(tmp_path):
    rc, out, err = _finish(_python_m("--version", cwd=tmp_path))
    assert rc == 0, err
    # The version, then how the search core runs (stormcheck/_compiled.py).
    assert re.fullmatch(r"stormcheck \S+ \(search core (compiled|from source|partly compiled)[^\n]*\)\n",
                        " ".join(out.split()) + "\n"), out
    assert out.split()[1][0].isdigit()


def test_symbolic_engine_refuses_the_exhaustive_budget(capsys):
    assert main(["check", "--engine", "symbolic", "--max-depth", "3"]) == 2
    assert "--max-depth: not used by --engine symbolic" in capsys.readouterr().err


@pytest.mark.parametrize("argv, engine", [
    (["check", "--engine", "compositional"], "compositional"),
    (["check"], "exhaustive"),
    (["sweep", "gitter-2015", "--grid", "clients=1:1"], "exhaustive"),
    (["sweep", "gitter-2015", "--grid", "clients=1:1", "--engine", "compositional"], "compositional"),
    (["report", "gitter-2015", "--engine", "exhaustive"], "exhaustive"),
])
def test_a_seed_the_engine_would_not_use_is_refused(capsys, tmp_path, argv, engine):
    # Breadth-first search draws nothing: a seed would change nothing, so it is refused, before any work.
    assert main([*argv, "--seed", "5", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--seed 5: only used by --engine hypothesis or --engine symbolic (the engine is {engine}" in err, err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_the_engines_a_seed_steers_still_take_it(capsys, tmp_path):
    assert main(["check", "static-45", "--engine", "symbolic", "--seed", "5", "--property", "no_valid_reap",
                 "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 5


def test_a_closed_pipe_is_not_reported_as_bad_input(tmp_path):
    # `stormcheck check | head -1`: the reader leaves early; no error message.
    import subprocess, sys
    proc = subprocess.run(
        f"{sys.executable} -m stormcheck check --out {tmp_path} | head -1",
        shell=True, capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.stdout.startswith("scenario gitter-2015")
    assert "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr
