"""Malformed input, seeded and bounded in time: never a traceback, never a hang, nothing written.

Mutations of a scenario file, of command lines and of a written trace go
through `stormcheck.cli.main` (an uncaught exception is a traceback to a
user), each in a forked copy of the test process: cheap, since everything
is imported already, and a case that runs past 60 s is killed and reported
as a hang instead of stalling the suite. Each must end with an exit code in
0..3, and a run that exits 2 (bad input) must leave its output folder
unwritten.
An independent ITF reader (the `itf-py` package) must load every trace the
tool writes.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import time
from pathlib import Path

import pytest

from stormcheck.cli import main

SEED, SECONDS, CASE_LIMIT = 16, 30, 60
BASE = """[scenario]
name = "fuzz"
[topology]
servers = 2
clients = 1
[protocol]
timeout = 45
interval = 1
rtt = [1, 2]
[search]
max_seconds = 5
"""
VALUES = ["0", "-1", "1e400", "nan", "\"x\"", "[]", "{}", "true", "9" * 5000, "[" * 50 + "]" * 50,
          "\"" + "n" * 300 + "\"", "2147483648", "1.5"]
FLAGS = [["--max-seconds", "0"], ["--max-states", "-3"], ["--steps", "0"], ["--examples", "0"], ["--design", "nope"],
         ["--property", "nope"], ["--engine", "nope"], ["--seed", "x"], ["--max-depth", "-1"]]


def _scenario_text(rng: random.Random) -> str:
    lines = BASE.splitlines()
    i = rng.randrange(len(lines))
    kind = rng.randrange(4)
    if kind == 0 and "=" in lines[i]:
        lines[i] = lines[i].split("=")[0] + "= " + rng.choice(VALUES)
    elif kind == 1:
        lines.insert(i, rng.choice(["[nope]", "bogus = 1", "[topology]", "= 3", "\ufeff"]))
    elif kind == 2:
        del lines[i]
    else:
        text = "\n".join(lines)
        cut = rng.randrange(len(text))
        return text[:cut] + rng.choice(["\x00", "{", "]", "\"", "'''"]) + text[cut:]
    return "\n".join(lines) + "\n"


def _trace_doc(rng: random.Random, doc: dict) -> str:
    doc = json.loads(json.dumps(doc))
    kind = rng.randrange(5)
    if kind == 0:
        doc["#meta"][rng.choice(list(doc["#meta"]))] = rng.choice([None, 1, "x", [], {}])
    elif kind == 1:
        doc["states"] = doc["states"][: rng.randrange(len(doc["states"]))]
    elif kind == 2:
        state = rng.choice(doc["states"])
        state[rng.choice(list(state))] = rng.choice([None, -1, "x", {"#bigint": "z"}, {"#set": 3}])
    elif kind == 3:
        doc["loop"] = rng.choice([-1, 10**6, "0", 0])
    else:
        text = json.dumps(doc)
        return text[: rng.randrange(len(text))]
    return json.dumps(doc)


def run_case(call, argv: list[str], limit: float) -> tuple[int | None, str | None]:
    """(exit code, problem) of `call(argv)` in a forked child, killed after `limit` s.

    The problem is the uncaught exception's type and message, or the hang.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the case, report, and leave without any cleanup of the parent's
        os.close(read)
        try:
            try:
                report = {"rc": call(argv)}
            except SystemExit as exit_:  # argparse refuses with exit 2 and its usage line
                report = {"rc": exit_.code}
            except BaseException as err:  # noqa: BLE001 - this is what the fuzz looks for
                report = {"problem": f"{type(err).__name__}: {err}"}
            os.write(write, json.dumps(report, default=str).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        data, deadline = b"", time.monotonic() + limit
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([read], [], [], left)[0]:
                continue
            if not (chunk := os.read(read, 65536)):
                break
            data += chunk
        else:
            os.kill(pid, signal.SIGKILL)
            return None, f"still running after {limit:g} s: killed"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    if not data:
        return None, "the case's process died without a report"
    report = json.loads(data)
    return report.get("rc"), report.get("problem")


def test_a_hanging_case_is_stopped_and_reported():
    t0 = time.monotonic()
    rc, problem = run_case(lambda argv: time.sleep(600), [], limit=1)
    assert rc is None and "still running after 1 s" in problem
    assert time.monotonic() - t0 < 10
    assert run_case(lambda argv: 1 / 0, [], limit=10) == (None, "ZeroDivisionError: division by zero")
    assert run_case(lambda argv: 3, [], limit=10) == (3, None)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("w")
    assert main(["check", "--quiet", "--out", str(out / "o")]) == 1
    assert main(["storm", "--no-plot", "--quiet", "--out", str(out / "s")]) in (0, 1)
    return out


def test_fuzz_of_scenarios_arguments_and_traces(tmp_path, written, capsys):
    rng = random.Random(SEED)
    trace = json.loads((written / "o" / "gitter-2015.per-server.no_valid_reap.itf.json").read_text())
    deadline = time.monotonic() + SECONDS
    cases, bad, problems = 0, 0, []
    while time.monotonic() < deadline:
        case = tmp_path / f"c{cases}"
        case.mkdir()
        kind = cases % 3
        if kind == 0:
            (case / "s.toml").write_text(_scenario_text(rng), encoding="utf-8", errors="surrogatepass")
            argv = ["check", str(case / "s.toml"), "--quiet", "--out", str(case / "out")]
        elif kind == 1:
            argv = ["check", "gitter-2015", "--quiet", "--out", str(case / "out"), *rng.choice(FLAGS)]
        else:
            (case / "t.itf.json").write_text(_trace_doc(rng, trace))
            argv = ["replay", str(case / "t.itf.json")]
        cases += 1
        rc, problem = run_case(main, argv, CASE_LIMIT)
        capsys.readouterr()
        if problem is not None:
            problems.append(f"{argv}: {problem}")
            continue
        if rc not in (0, 1, 2, 3):
            problems.append(f"{argv}: exit {rc}")
        if rc == 2:
            bad += 1
            if (case / "out").exists():
                problems.append(f"{argv}: bad input, yet wrote {sorted(p.name for p in (case / 'out').iterdir())}")
    print(f"input fuzz: {cases} cases, {bad} refused as bad input, {len(problems)} problems")
    assert cases >= 30 and bad > 0
    assert problems == []


def test_an_independent_itf_reader_loads_every_trace_the_tool_writes(written):
    itf_py = pytest.importorskip("itf_py", reason="install the test extra: pip install -e '.[test]' (itf-py)")
    root = Path(__file__).resolve().parents[1]
    traces = sorted(written.rglob("*.itf.json")) + sorted((root / "counterexamples").rglob("*.itf.json"))
    assert len(traces) >= 5
    lassos = 0
    for path in traces:
        doc = json.loads(path.read_text())
        trace = itf_py.trace_from_json(doc)
        assert len(trace.states) == len(doc["states"]) >= 1, path
        assert trace.vars == doc["vars"], path
        if trace.loop is not None:
            lassos += 1
            assert "loop_closes" in doc["#meta"] or path.is_relative_to(root), path
    assert lassos >= 1
