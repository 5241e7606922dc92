"""The README as written: every TOML block loads, every command shown runs as shown.

- Every ```toml block is loaded as a scenario. A block without ``[scenario]``
  is a fragment of one; `FRAGMENTS` names the shipped scenario it is read
  into (its first line picks the entry).
- Every ``bin/stormcheck ...`` command the README shows (in ```sh blocks,
  after ``$`` in output blocks, and in inline code) is in exactly one table:
  `RUN` (run here, in an empty folder, with the exit code and, where the
  README shows output, that output), `SKIPPED` (not run, with the reason),
  or it is a usage line with placeholders (``[--json]``, ``SCENARIO``),
  whose every option must be one its command accepts. A command added to the
  README without a table entry fails `test_every_command_is_run_or_skipped_with_a_reason`.
- Shown output is shortened in the README: each shown line must appear in
  the real output, in order; a line "..." stands for lines left out, and a
  line ending in "..." for the rest of that line. Timings in seconds are
  normalised; verdict lines and timelines must match exactly.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stormcheck.model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")

# A TOML block that is a fragment: its first line -> the shipped scenario it is added to.
FRAGMENTS = {
    "[[judge]]": "stacks/socketio-4",  # the client judge of Engine.IO 4, and a proxy in front
    "[rollout]": "stacks/phoenix",  # "here: the servers' websocket timeout", "the clients' heartbeat"
}

# command -> (exit code, first line of the README block showing its output, or None when none is shown)
RUN = {
    "bin/stormcheck": (1, "scenario gitter-2015 (preset:gitter-2015), design per-server, engine exhaustive"),
    "bin/stormcheck check gitter-2015": (1, "scenario gitter-2015 (preset:gitter-2015), design per-server, engine "
                                            "exhaustive"),
    "bin/stormcheck check gitter-2015-published --property no_message_loss": (1, None),
    "bin/stormcheck check rollouts/phoenix-heartbeat-90": (1, "t=   0s  ROLLOUT phase 1 begins"),
    "bin/stormcheck plan rollouts/phoenix-heartbeat-90": (0, "scenario phoenix-heartbeat-90"),
    "bin/stormcheck check stacks/socketio-2": (0, None),
    "bin/stormcheck check stacks/socketio-4": (0, None),
    "bin/stormcheck check stacks/phoenix": (0, None),
    "bin/stormcheck check stacks/python-websockets": (0, None),
    "bin/stormcheck check stacks/signalr": (0, None),
    "bin/stormcheck check stacks/actioncable": (0, None),
    "bin/stormcheck check stacks/mqtt": (0, None),
    "bin/stormcheck check stacks/grpc": (0, None),
    "bin/stormcheck list variants": (0, None),
    "bin/stormcheck list storms": (0, None),
    "bin/stormcheck check my-stack.toml": (0, None),  # after the README's `cp` of the Phoenix preset
}
# Run, but 20-30 s each on a 2-core machine: marked slow.
RUN_SLOW = {
    "bin/stormcheck synth gitter-2015": (0, "$ bin/stormcheck synth gitter-2015"),
    "bin/stormcheck storm": (1, "  design              rank  mitigation"),
}
SKIPPED = {
    "bin/stormcheck storm small.toml --mode sampled --design per-server --no-lasso":
        "small.toml is gitter-2015 scaled to 100 clients, as the README says; tests/test_storm_certify.py runs the "
        "same command on a 60-client copy and replays its traces",
    "bin/stormcheck check gitter-2015 --engine hypothesis":
        "1,000 runs per property; tests/test_hypothesis_engine.py runs the engine on this fleet with smaller budgets",
    "bin/stormcheck check my-fleet.toml --engine hypothesis --examples 2000 --steps 60 --seed 7":
        "2,000 runs of 60 steps per property; my-fleet.toml itself is the README's TOML block, loaded and checked "
        "by test_the_example_scenario_runs_and_its_mistake_reads_as_shown",
    "bin/stormcheck check my-stack.toml --engine hypothesis --examples 2000":
        "2,000 runs per property; my-stack.toml is checked exhaustively in RUN",
    "bin/stormcheck storm gitter-2015 --design all --out storms --json":
        "six designs x six mitigations of 50,000 clients (about a minute); `bin/stormcheck storm` runs in RUN_SLOW",
    "bin/stormcheck storm storms/setup-deadline-20 --goodput":
        "8 runs and a 16-run curve of 50,000 clients for 2 simulated hours (over a minute on 2 cores); "
        "tests/test_storm.py holds the preset's outcomes, the curve's metastable load and the command's output files",
    "bin/stormcheck storm storms/socketio-4-rolling-restart":
        "8 runs of 50,000 clients for 2 simulated hours and a lasso search (about 20 s on 2 cores); "
        "tests/test_storm_faults.py holds the preset's outcomes and the command's exit code and header",
    "bin/stormcheck report gitter-2015 --design all --out review": "about 130 s (README); tests/test_report.py "
                                                                   "builds reports with small budgets",
    "bin/stormcheck report": "about 170 s (README); tests/test_report.py builds reports with small budgets",
    "bin/stormcheck conform counterexamples/gitter-2015.per-server.no_valid_reap.itf.json":
        "drives real Faye + Redis (about 19 s, needs node and redis-server); tests/test_conformance_faye.py",
    "bin/stormcheck conform stacks/python-websockets": "real stack; tests/test_conformance_stacks.py",
    "bin/stormcheck conform rollouts/socketio-4-live-ping-60": "real stack; tests/test_conformance_stacks.py",
    "bin/stormcheck conform rollouts/socketio-2-ping-60": "real stack (npm); tests/test_conformance_stacks.py",
    "bin/stormcheck conform stacks/mqtt": "real stack (mosquitto); tests/test_conformance_stacks.py",
    "bin/stormcheck conform proxies/nginx-websockets-ping-90": "real stack (nginx); tests/test_conformance_stacks.py",
    "bin/stormcheck conform rollouts/python-websockets-ping-60 --run rollout-planned --json":
        "real stack; tests/test_conformance_stacks.py",
}
PLACEHOLDER = re.compile(r"\[|\b[A-Z]{2,}\b")  # a usage line: [--json], SCENARIO, TRACE, ROLLOUT...


def blocks() -> list[tuple[str, str, int]]:
    """(language, body, line) of every fenced block of the README."""
    return [(m.group(1), m.group(2), TEXT.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", TEXT, re.S | re.M)]


def commands() -> dict[str, int]:
    """Every ``bin/stormcheck`` command the README shows -> its line."""
    found: dict[str, int] = {}
    for lang, body, line in blocks():
        for i, text in enumerate(body.splitlines()):
            text = text.removeprefix("$ ") if lang == "" else text
            if lang in ("sh", "") and text.startswith("bin/stormcheck"):
                found.setdefault(text.split("  #")[0].split(" #")[0].strip(), line + 1 + i)
    for m in re.finditer(r"`(bin/stormcheck[^`]*)`", TEXT):
        found.setdefault(m.group(1).strip(), TEXT.count("\n", 0, m.start()) + 1)
    return found


def shown_block(first_line: str) -> str:
    matches = [body for lang, body, _ in blocks() if lang == "" and body.startswith(first_line)]
    assert len(matches) == 1, f"the README shows no (or more than one) output block starting {first_line!r}"
    return matches[0]


def normalised(line: str) -> str:
    return re.sub(r"\b\d+(\.\d+)? s\b", "<t> s", line.rstrip())


def assert_shows(shown: str, actual: str) -> None:
    """Each line the README shows is in `actual`, in order ("..." elides lines, or the rest of a line)."""
    lines = [normalised(x) for x in actual.splitlines()]
    at = 0
    for want in shown.splitlines():
        if want.startswith("$ ") or want.strip() in ("", "..."):
            continue
        want = normalised(want)
        prefix = want.endswith("...")
        want = want.removesuffix("...").rstrip() if prefix else want
        for i in range(at, len(lines)):
            if lines[i] == want or (prefix and lines[i].startswith(want)):
                at = i + 1
                break
        else:
            raise AssertionError(f"the README shows\n  {want!r}\nbut the output (from line {at + 1}) is:\n"
                                 + "\n".join(lines[at:]))


@pytest.fixture()
def folder(tmp_path) -> Path:
    """An empty folder holding what the README's commands expect: my-fleet.toml and my-stack.toml."""
    (tmp_path / "my-fleet.toml").write_text(toml_blocks()[0][1], encoding="utf-8")
    shutil.copy(ROOT / "model/scenarios/stacks/phoenix.toml", tmp_path / "my-stack.toml")  # the README's `cp`
    return tmp_path


def stormcheck(folder: Path, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    args = shlex.split(command)[1:] or ["check"]  # bin/stormcheck alone is `check`
    return subprocess.run([sys.executable, "-m", "stormcheck", *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def toml_blocks() -> list[tuple[str, str, int]]:
    return [b for b in blocks() if b[0] == "toml"]


# ---------------------------------------------------------------- the tests


def test_every_command_is_run_or_skipped_with_a_reason():
    tables = RUN.keys() | RUN_SLOW.keys() | SKIPPED.keys()
    shown = commands()
    usage = {c for c in shown if PLACEHOLDER.search(c)}
    assert not usage & tables, "a usage line cannot be run"
    assert sorted(shown.keys() - usage - tables) == [], "README commands with no entry in RUN, RUN_SLOW or SKIPPED"
    assert sorted(tables - shown.keys()) == [], "table entries the README no longer shows"
    assert all(SKIPPED.values())


@pytest.mark.parametrize("lang, body, line", toml_blocks(), ids=lambda x: str(x)[:12])
def test_every_toml_block_loads_as_a_scenario(tmp_path, lang, body, line):
    first = body.splitlines()[0].split("#")[0].strip()
    if "[scenario]" in tomllib.loads(body) or body.startswith("[scenario]"):
        text = body
    else:
        assert first in FRAGMENTS, f"README line {line}: a TOML fragment ({first}) with no scenario in FRAGMENTS"
        base = ROOT / "model" / "scenarios" / f"{FRAGMENTS[first]}.toml"
        text = base.read_text(encoding="utf-8") + "\n" + body
    path = tmp_path / "block.toml"
    path.write_text(text, encoding="utf-8")
    load_scenario(str(path))  # a ScenarioError here names the key the README gets wrong


@pytest.mark.parametrize("command", sorted(c for c in commands() if PLACEHOLDER.search(c)))
def test_usage_lines_show_only_options_their_command_takes(tmp_path, command):
    words = command.split()
    sub = words[1] if len(words) > 1 and not PLACEHOLDER.search(words[1]) else "check"
    help_text = stormcheck(tmp_path, f"bin/stormcheck {sub} --help").stdout
    for option in sorted(set(re.findall(r"--[a-z][a-z-]*", command))):
        assert re.search(rf"{option}\b", help_text), f"README: `{command}` shows {option}; `{sub} --help` lacks it"


def _run_and_compare(folder: Path, command: str, code: int, shown: str | None) -> None:
    proc = stormcheck(folder, command)
    assert proc.returncode == code, (command, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    if shown is not None:
        assert_shows(shown_block(shown), proc.stdout)


@pytest.mark.parametrize("command", sorted(RUN))
def test_command_runs_as_the_readme_shows(folder, command):
    _run_and_compare(folder, command, *RUN[command])


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(RUN_SLOW))
def test_slow_command_runs_as_the_readme_shows(folder, command):
    _run_and_compare(folder, command, *RUN_SLOW[command])


def test_the_example_scenario_runs_and_its_mistake_reads_as_shown(folder):
    proc = stormcheck(folder, "bin/stormcheck check my-fleet.toml --quiet")
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.startswith("scenario my-fleet (my-fleet.toml), design fleet-delayed"), proc.stdout
    example = (folder / "my-fleet.toml").read_text()
    (folder / "my-fleet.toml").write_text(re.sub(r"(?m)^timeout = 30 ", "timeout = -5 ", example))
    proc = stormcheck(folder, "bin/stormcheck check my-fleet.toml")
    assert proc.returncode == 2
    assert proc.stderr == shown_block("stormcheck: my-fleet.toml: [protocol] timeout = -5")


def test_the_stack_mistake_reads_as_shown(folder):
    text = (folder / "my-stack.toml").read_text()
    (folder / "my-stack.toml").write_text(re.sub(r'(?m)^hold = "none"', 'hold = "poll"', text))
    proc = stormcheck(folder, "bin/stormcheck check my-stack.toml")
    assert proc.returncode == 2
    shown = re.search(r"`(my-stack\.toml: \[heartbeat\] hold = \"poll\":\s+must be one of [^`]*)`", TEXT)
    assert shown, "the README no longer shows the my-stack.toml mistake"
    assert proc.stderr.strip() == "stormcheck: " + " ".join(shown.group(1).split())
