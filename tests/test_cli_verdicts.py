"""What `check` claims, and on what; and what it and its neighbours say.

Each verdict is held to what was searched: a scenario's [ranges] that the
engine did not search, a liveness property an engine refuses before it
runs, a bounded search's bound in the verdict line and beside the JSON
verdict. Then counts, suggestions, pointers and the property table say what
they mean. Everything runs on gitter-2015 (a few hundred states per design)
or a small file written to tmp_path.
"""

from __future__ import annotations

import json
import time

import pytest

from stormcheck.cli import main
from stormcheck.model.scenario_files import _read

RANGES = "\n[ranges]\ntimeout = [10, 60]\ninterval = [0, 30]\n"


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def scenario_file(tmp_path, ranges: str = RANGES):
    """gitter-2015 under the static design `off` (whose point values hold), with `ranges` appended."""
    text = _read("gitter-2015")[0].replace('design = "per-server"', 'design = "off"', 1)
    path = tmp_path / ("ranged.toml" if ranges else "point.toml")
    path.write_text(text + ranges)
    return path


# ------------------------------------------------------------------ [ranges] and the engines that skip them


def test_the_point_values_alone_hold_under_the_exhaustive_engine(tmp_path, capsys):
    # The correct design at its point values: the same file without [ranges] holds.
    rc, out, _ = cli(capsys, "check", scenario_file(tmp_path, ranges=""), "--out", tmp_path / "o", "--quiet")
    assert rc == 0 and out.rstrip().endswith("verdict: holds"), out


def test_a_ranged_scenario_is_not_said_to_hold_by_an_engine_that_checked_its_point_values(tmp_path, capsys):
    path = scenario_file(tmp_path)
    rc, out, err = cli(capsys, "check", path, "--out", tmp_path / "o", "--quiet")
    assert rc == 3, out + err
    verdict = out.rstrip().splitlines()[-1]
    assert verdict.startswith("verdict: inconclusive (at the point values only; [ranges] timeout [10, 60], "
                              "interval [0, 30] not searched by --engine exhaustive"), verdict
    assert "--engine hypothesis" in verdict and "synth" in verdict
    for name in ("no_valid_reap", "parameter_agreement"):
        row = next(line for line in out.splitlines() if line.startswith(f"  {name} "))
        assert "INCONCLUSIVE" in row and "holds at the point values only: [ranges] not searched by --engine " \
                                           "exhaustive (--engine hypothesis draws from them; the symbolic engine" in row
    # A witness found at the point values is a run of the fleet the file describes, and stands.
    row = next(line for line in out.splitlines() if line.startswith("  rehandshake_reachable "))
    assert " holds " in row and "at the point values only" in row

    rc, out, _ = cli(capsys, "check", path, "--out", tmp_path / "o", "--quiet", "--json")
    doc = json.loads(out)
    assert rc == 3 and doc["verdict"] == "inconclusive"
    assert doc["ranges_searched"] is False and doc["searched"] == "point values only"
    assert doc["ranges"] == {"timeout": [10, 60], "interval": [0, 30]}
    assert set(doc["ranges_searched_by"]) == {"hypothesis", "symbolic"}
    assert "point values only" in doc["properties"]["no_valid_reap"]["basis"]
    # Over every design, as one document: said once, at the top, as for one design.
    rc, out, _ = cli(capsys, "check", path, "--design", "all", "--out", tmp_path / "o", "--quiet", "--json")
    doc = json.loads(out)
    assert doc["ranges_searched"] is False and doc["searched"] == "point values only"


def test_a_counterexample_at_the_point_values_of_a_ranged_scenario_stands(tmp_path, capsys):
    # The 2015 design at its own values: a run of the fleet the file describes, so violated (exit 1).
    path = scenario_file(tmp_path)
    rc, out, _ = cli(capsys, "check", path, "--design", "per-server", "--property", "no_valid_reap",
                     "--out", tmp_path / "o", "--quiet", "--json")
    doc = json.loads(out)
    got = doc["properties"]["no_valid_reap"]
    assert rc == 1 and doc["verdict"] == got["verdict"] == "violated" and got["steps"] == 12
    assert got["basis"].startswith("found at depth 12") and "at the point values only" in got["basis"]
    assert doc["ranges_searched"] is False


def test_the_hypothesis_engine_searches_the_ranges_and_finds_the_violation_inside_them(tmp_path, capsys):
    # The seeded bug: a timeout of 10 against an interval up to 30 reaps valid clients.
    rc, out, _ = cli(capsys, "check", scenario_file(tmp_path), "--engine", "hypothesis", "--seed", "1",
                     "--examples", "200", "--out", tmp_path / "o", "--quiet", "--json")
    doc = json.loads(out)
    assert rc == 1 and doc["verdict"] == "violated", doc["properties"]
    assert doc["ranges_searched"] is True and doc["searched"] == "ranges"
    assert doc["properties"]["no_valid_reap"]["drawn"]["timeout"] <= 60


# ------------------------------------------------------------------ liveness: refused before running


def test_the_hypothesis_engine_refuses_liveness_at_once_as_the_symbolic_engine_does(tmp_path, capsys, monkeypatch):
    from stormcheck.checkers import hypo

    def ran(*args, **kwargs):
        raise AssertionError("the hypothesis engine ran with nothing it decides")

    monkeypatch.setattr(hypo, "check_hypothesis", ran)
    codes = {}
    for engine in ("hypothesis", "symbolic"):
        start = time.perf_counter()
        rc, out, err = cli(capsys, "check", "gitter-2015", "--engine", engine, "--property", "storm_subsides",
                           "--seed", "1", "--out", tmp_path / engine)
        assert time.perf_counter() - start < 5, engine
        codes[engine] = rc
        row = next(line for line in out.splitlines() if line.startswith("  storm_subsides "))
        assert "INCONCLUSIVE" in row and "only --engine exhaustive decides liveness" in row, row
        assert f"nothing run: no property --engine {engine} decides" in out
        assert out.rstrip().endswith("verdict: inconclusive") and "Traceback" not in err
    assert codes == {"hypothesis": 3, "symbolic": 3}


def test_a_swarm_of_nothing_to_decide_is_not_run_either(tmp_path, capsys):
    rc, out, _ = cli(capsys, "check", "gitter-2015", "--engine", "hypothesis", "--property", "storm_subsides",
                     "--seed", "1", "--runs", "3", "--out", tmp_path, "--quiet", "--json")
    doc = json.loads(out)
    assert rc == 3 and doc["stats"]["not_run"] == "no property --engine hypothesis decides"


# ------------------------------------------------------------------ a bounded search says its bound


@pytest.mark.parametrize("depth, verdict, line, code", [
    (11, "holds", "verdict: holds within 11 steps", 0),  # the 2015 bug is 12 steps deep
    (12, "violated", "verdict: violated", 1),
])
def test_the_verdict_line_and_json_carry_the_depth_bound(tmp_path, capsys, depth, verdict, line, code):
    argv = ("check", "gitter-2015", "--max-depth", depth, "--property", "no_valid_reap", "--out", tmp_path, "--quiet")
    rc, out, _ = cli(capsys, *argv)
    assert rc == code and out.rstrip().splitlines()[-1] == line, out
    rc, out, _ = cli(capsys, *argv, "--json")
    doc = json.loads(out)
    assert doc["verdict"] == verdict and doc["within_steps"] == (depth if verdict == "holds" else None)
    assert list(doc)[list(doc).index("verdict") + 1] == "within_steps"  # beside the verdict it qualifies


def test_an_unbounded_search_claims_no_bound(tmp_path, capsys):
    rc, out, _ = cli(capsys, "check", "gitter-2015", "--design", "off", "--out", tmp_path, "--quiet", "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["verdict"] == "holds" and doc["within_steps"] is None


# ------------------------------------------------------------------ wording


@pytest.mark.parametrize("given", ["0", "0.0"])
def test_a_whole_max_seconds_is_said_back_as_a_whole_number(tmp_path, capsys, given):
    rc, _, err = cli(capsys, "check", "gitter-2015", "--max-seconds", given, "--out", tmp_path)
    assert rc == 2 and "Traceback" not in err
    assert "--max-seconds 0: " in err and "[search] max_seconds = 0: must be a number > 0" in err, err
    assert "0.0" not in err


@pytest.mark.parametrize("name, said", [
    # Nothing like it in the folder: the folder's presets, and no far-fetched guess.
    ("stacks/nope", "stacks/nope: does not exist; stacks/ holds: stacks/actioncable, stacks/faye, stacks/grpc"),
    ("stacks/grcp", "Did you mean stacks/grpc?"),
    ("stack/grpc", "Did you mean stacks/grpc?"),
    ("rollouts/phoenix", "Did you mean rollouts/phoenix-heartbeat-90?"),
])
def test_an_unknown_scenario_gets_a_close_match_or_its_folders_list(tmp_path, capsys, name, said):
    rc, _, err = cli(capsys, "check", name, "--out", tmp_path)
    assert rc == 2 and said in err, err
    if "Did you mean" not in said:
        assert "Did you mean" not in err and "rollouts/" not in err, err


def test_a_one_step_trace_replays_as_one_step(tmp_path, capsys):
    from stormcheck.model.scenario import load_scenario
    from stormcheck.traces.export import replay_trace, run_to_trace
    from stormcheck.traces.itf import Trace
    from stormcheck.traces.run import Run

    # The first step of a witness the check writes, as a trace of its own.
    assert cli(capsys, "check", "gitter-2015", "--property", "rehandshake_reachable", "--out", tmp_path,
               "--quiet")[0] == 0
    sc = load_scenario("gitter-2015")
    run = replay_trace(Trace.read(tmp_path / "gitter-2015.per-server.rehandshake_reachable.itf.json"), sc.params)
    path = tmp_path / "one.itf.json"
    run_to_trace(Run(run.initial, run.steps[:1]), sc.params, {"scenario_config": sc.config}).write(path)
    rc, out, _ = cli(capsys, "replay", path)
    assert rc == 0 and f"{path}: replays, 1 step (gitter-2015" in out, out


def test_plan_without_a_rollout_points_to_the_list_of_rollouts(capsys):
    rc, _, err = cli(capsys, "plan", "gitter-2015")
    assert rc == 2 and "see 'stormcheck list rollouts' for the shipped rollouts" in err, err


def test_the_property_table_keeps_two_spaces_between_columns_with_a_liveness_row(tmp_path, capsys):
    rc, out, _ = cli(capsys, "check", "gitter-2015", "--property", "no_valid_reap", "--property", "storm_subsides",
                     "--out", tmp_path, "--quiet")
    assert rc == 1
    rows = [line for line in out.splitlines() if line.startswith(("  no_valid_reap ", "  storm_subsides "))]
    assert len(rows) == 2
    at = {row.index("VIOLATED") for row in rows}
    assert len(at) == 1, rows  # the verdicts in one column ...
    column = at.pop()
    assert all(row[column - 2:column] == "  " for row in rows), rows  # ... apart from the longest modality
