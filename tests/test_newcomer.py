"""What a new user trips over: wasted runs, misreported runs, bad input.

Each case runs ``python -m stormcheck`` in a real subprocess (the way a user
meets it), in its own folder: bad input exits 2 with one line naming what
to fix, quickly, with no traceback and nothing written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

GOOD = """[scenario]
name = "tiny"
[topology]
servers = 2
clients = 1
"""


def run(folder: Path, *argv, timeout: float = 60) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "stormcheck", *map(str, argv)], cwd=folder, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def deep_trace(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def deep_toml(path: Path) -> None:
    path.write_text(GOOD + "[protocol]\nx = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")


def deep_headers(path: Path) -> None:
    path.write_text(GOOD + "".join("[" + ".".join(["a"] * i) + "]\n" for i in range(1, 3001)))


def long_name(path: Path) -> None:
    path.write_text(GOOD.replace('"tiny"', '"' + "n" * 200 + '"'))


def many_digits(path: Path) -> None:
    path.write_text(GOOD + "[protocol]\ntimeout = " + "9" * 5000 + "\n")


def sampled_fleet(path: Path) -> None:
    path.write_text(GOOD + "[storm]\nclients = 10000000\n")


def a_file(path: Path) -> None:
    path.write_text("not a folder\n")


# case: (file to prepare as "in" or None, how, argv, words the one line must hold, seconds at most)
BAD = {
    "check-out-is-a-file": (a_file, ["check", "--engine", "hypothesis", "--seed", "1", "--out", "in"], ["--out in"], 15),
    "storm-out-is-a-file": (a_file, ["storm", "--out", "in"], ["--out in"], 15),
    "synth-out-is-a-file": (a_file, ["synth", "--out", "in"], ["--out in"], 15),
    "design-all-on-a-rollout": (None, ["check", "rollouts/phoenix-heartbeat-90", "--design", "all", "--out", "o"],
                                ["[rollout]"], 30),
    "trace-nested-100000-deep": (deep_trace, ["replay", "in"], ["in:", "nested"], 15),
    "toml-nested-5000-deep": (deep_toml, ["check", "in", "--out", "o"], ["in:", "nested"], 15),
    "toml-3000-nested-headers": (deep_headers, ["check", "in", "--out", "o"], ["in:", "line 26", "nested 21 deep"], 5),
    "hypothesis-steps-100000": (None, ["check", "--engine", "hypothesis", "--steps", "100000", "--out", "o"],
                                ["--steps 100000", "at most"], 15),
    "storm-horizon-1e9": (None, ["storm", "--horizon", "1000000000", "--out", "o"], ["--horizon", "[storm] horizon"], 15),
    "storm-clients-1e12": (None, ["storm", "--clients", str(10**12), "--out", "o"], ["--clients", "[storm] clients"], 15),
    "sampled-10M-clients": (sampled_fleet, ["storm", "in", "--mode", "sampled", "--out", "o"], ["sampled", "clients"], 15),
    "synth-steps-100000": (None, ["synth", "--steps", "100000"], ["--steps 100000", "at most"], 15),
    "scenario-name-200-chars": (long_name, ["check", "in", "--out", "o"], ["[scenario] name", "characters"], 15),
    "integer-of-5000-digits": (many_digits, ["check", "in", "--out", "o"],
                               ["in:", "line 7", "timeout", "digits"], 15),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_at_once_in_one_line_and_writes_nothing(tmp_path, case):
    prepare, argv, words, seconds = BAD[case]
    if prepare is not None:
        prepare(tmp_path / "in")
    before = files_in(tmp_path)
    rc, out, err, took = run(tmp_path, *argv)
    assert rc == 2, (case, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, (case, word, err)
    assert took < seconds, f"{case}: {took:.1f} s before the refusal"
    assert files_in(tmp_path) == before, f"{case}: wrote {files_in(tmp_path) - before}"


def test_a_utf8_byte_order_mark_is_read_as_the_text_it_marks(tmp_path):
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    rc, out, err, _ = run(tmp_path, "check", "bom.toml", "--quiet", "--out", "o")
    assert rc in (0, 1), err
    assert "scenario tiny" in out


def test_check_design_all_ends_with_one_verdict_over_all_designs(tmp_path):
    rc, out, err, _ = run(tmp_path, "check", "gitter-2015", "--design", "all", "--quiet", "--out", "o")
    assert rc == 1, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("verdict over 6 designs: violated ("), last
    assert "per-server violated" in last and "off holds" in last


def test_synth_json_prints_json_when_inconclusive(tmp_path):
    rc, out, err, _ = run(tmp_path, "synth", "rollouts/mqtt-keepalive-120", "--json")  # rollouts: not encoded
    assert rc == 3, err
    doc = json.loads(out)
    assert doc["verdict"] == "inconclusive" and doc["reason"]


@pytest.fixture(scope="module")
def trace_2015(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("t")
    rc, _, err, _ = run(folder, "check", "--quiet", "--out", "o")
    assert rc == 1, err
    return folder / "o" / "gitter-2015.per-server.no_valid_reap.itf.json"


@pytest.mark.parametrize("verdict, code", [("holds", 1), ("inconclusive", 1), ("banana", 2)])
def test_replay_checks_the_recorded_verdict(tmp_path, trace_2015, verdict, code):
    doc = json.loads(trace_2015.read_text())
    doc["#meta"]["verdict"] = verdict
    (tmp_path / "t.itf.json").write_text(json.dumps(doc))
    rc, out, err, _ = run(tmp_path, "replay", "t.itf.json")
    assert rc == code, (out, err)
    assert "verdict" in err and repr(verdict) in err or verdict in err, err
    assert "Traceback" not in err


def test_replay_of_a_timeline_says_to_give_the_trace(tmp_path, trace_2015):
    timeline = trace_2015.with_name(trace_2015.name.replace(".itf.json", ".timeline.txt"))
    rc, _, err, _ = run(tmp_path, "replay", timeline)
    assert rc == 2
    assert "timeline" in err and ".itf.json" in err and "Expecting value" not in err, err


@pytest.mark.realtime  # a time budget, measured on an otherwise idle machine
def test_exhaustive_time_budget_holds_inside_one_huge_expansion(tmp_path):
    """1.4 million RTT choices make one state's expansion long: --max-seconds 3 must still stop near 3 s."""
    rtt = ", ".join(map(str, range(1, 1_400_001)))
    (tmp_path / "wide.toml").write_text(f'[scenario]\nname = "wide"\n[protocol]\nrtt = [{rtt}]\n')
    rc, out, err, took = run(tmp_path, "check", "wide.toml", "--max-seconds", "3", "--json", "--quiet", "--out", "o",
                             timeout=180)
    assert rc in (1, 3), err
    doc = json.loads(out)
    assert doc["stats"]["seconds"] < 3 + 1.5, f"searched {doc['stats']['seconds']} s on a 3 s budget"
    assert not doc["stats"]["complete"]


def test_check_help_states_the_symbolic_steps_default_the_code_uses(tmp_path):
    from stormcheck.checkers import ROLLOUT_STEPS, SYMBOLIC_STEPS

    rc, out, err, _ = run(tmp_path, "check", "--help")
    assert rc == 0, err
    text = " ".join(out.split())  # argparse wraps the help to the terminal's width
    shown = re.search(r"symbolic: the BMC bound \(default: [^)]*?else (\d+); (\d+) with a rollout\)", text)
    assert shown, text
    assert (int(shown.group(1)), int(shown.group(2))) == (SYMBOLIC_STEPS, ROLLOUT_STEPS)


def test_an_unknown_scenario_lists_stacks_and_rollouts_and_suggests_the_close_one(tmp_path):
    rc, out, err, _ = run(tmp_path, "check", "rollouts/phoenix", "--out", "o")
    assert rc == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for name in ("gitter-2015", "stacks/phoenix", "stacks/mqtt", "rollouts/phoenix-heartbeat-90",
                 "rollouts/faye-timeout-101", "proxies/nginx-websockets"):
        assert name in err, (name, err)
    assert err.rstrip().endswith("Did you mean rollouts/phoenix-heartbeat-90?"), err
    assert files_in(tmp_path) == set()


def test_nesting_is_measured_outside_strings_and_comments():
    import doctest

    from stormcheck.model import toml_depth

    assert doctest.testmod(toml_depth).failed == 0
    deep_inline = "x = " + "{a = " * 30 + "1" + "}" * 30
    assert toml_depth.too_deep(deep_inline) == (1, 21)
    assert toml_depth.too_deep('x = "' + "[" * 100 + '"\ny = \'\'\'\n' + "{" * 100 + "\n'''\n") is None
    for name in ("gitter-2015", "stacks/socketio-4", "rollouts/phoenix-heartbeat-90", "proxies/nginx-websockets"):
        from stormcheck.model.scenario_files import _read
        assert toml_depth.too_deep(_read(name)[0], limit=3) is None, name


def test_report_leaves_no_hypothesis_folder_in_the_current_directory(tmp_path):
    env_free = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    proc = subprocess.run([sys.executable, "-m", "stormcheck", "report", "gitter-2015", "--engine", "hypothesis",
                           "--skip", "synthesis", "--skip", "storms", "--examples", "5", "--quiet", "--out", "rep"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env_free)
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert (tmp_path / "rep" / "report.html").exists()
    assert files_in(tmp_path) - {p for p in files_in(tmp_path) if p.startswith("rep")} == set()
