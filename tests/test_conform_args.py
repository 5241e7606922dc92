"""`stormcheck conform`'s arguments: a mixed-up target or an option of another kind of run is bad input.

Each is refused (exit 2, one line naming the option or target and what it takes) before any real
process starts; a preset with no real implementation here is unverified (exit 3), saying why.
"""

from pathlib import Path

import pytest

from stormcheck.cli import main
from stormcheck.conformance import procs

ROOT = Path(__file__).resolve().parents[1]
TRACE = str(ROOT / "counterexamples/gitter-2015.per-server.no_valid_reap.itf.json")


@pytest.fixture
def nothing_starts(monkeypatch):
    monkeypatch.setattr(procs.Processes, "start", lambda self, *a, **k: pytest.fail("a process started"))


def _conform(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["conform", *argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return rc, err


@pytest.mark.parametrize("argv, words", [
    (["gitter-2015"], ["gitter-2015: is a scenario", "--free-run", ".itf.json"]),
    (["static-45", "--seconds", "30"], ["static-45: is a scenario", "--free-run"]),
    ([TRACE, "--free-run"], ["--free-run with", "is a trace", "drop --free-run"]),
    ([TRACE, "--seconds", "20"], ["--seconds: only used with --free-run"]),
    ([TRACE, "--seed", "3"], ["--seed: only used with --free-run"]),
    ([TRACE, "--run", "free-run"], ["--run free-run: only for a stack scenario"]),
    (["stacks/python-websockets", "--scale", "0.05"], ["--scale: not used for the stack scenario",
                                                       "stacks/python-websockets", "--run"]),
    (["stacks/mqtt", "--seed", "1"], ["--seed: not used for the stack scenario"]),
    (["stacks/mqtt", "--engine", "published"], ["--engine: not used for the stack scenario"]),
    ([TRACE, "--scale", "-1"], ["--scale -1: must be between 0.02 and 1"]),
])
def test_mixed_up_targets_and_options_are_refused_before_anything_starts(capsys, nothing_starts, argv, words):
    rc, err = _conform(capsys, *argv)
    assert rc == 2, err
    for word in words:
        assert word in err, (word, err)


def test_a_cloud_load_balancer_is_unverified_like_the_stacks_with_no_server_here(capsys, nothing_starts):
    rc, err = _conform(capsys, "proxies/aws-alb-websockets")
    assert rc == 3 and "unverified" in err and "AWS Application Load Balancer" in err, err
    rc, err = _conform(capsys, "stacks/phoenix")  # control: unverified as before
    assert rc == 3 and "unverified: no Phoenix server" in err, err
    from stormcheck.conformance.stacks import conformance_lines
    listed = "\n".join(conformance_lines())
    assert "proxies/aws-alb-websockets" in listed and "stacks/phoenix" in listed, listed


def test_a_trace_still_reaches_the_stack_and_a_free_run_its_scenario(capsys, monkeypatch):
    """Controls: a trace with --scale, and a free run with --seconds and --seed, pass the checks."""
    import stormcheck.conformance.faye_fleet as fleet
    monkeypatch.setattr(fleet.shutil, "which", lambda name: None)  # stops at the stack check: exit 3
    rc, err = _conform(capsys, TRACE, "--scale", "0.05")
    assert rc == 3 and "redis-server" in err, err
    rc, err = _conform(capsys, "gitter-2015-published", "--free-run", "--seconds", "30", "--seed", "2")
    assert rc == 3 and "redis-server" in err, err


def test_a_free_run_s_progress_is_a_line_a_second_in_a_log_and_rewritten_in_place_on_a_terminal(monkeypatch):
    # In a log (not a terminal) every update once went on one line, joined by carriage returns.
    import io

    from stormcheck import conform_cmd
    clock = iter([0.0, 0.2, 0.5, 1.1, 1.3, 2.4])
    monkeypatch.setattr(conform_cmd.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    progress = conform_cmd._FreeProgress(True, log)
    for at in (1, 2, 3, 11, 13, 24):
        progress(at, 60)
    progress.done()
    assert log.getvalue() == "free run: t=1/60 model s\nfree run: t=11/60 model s\nfree run: t=24/60 model s\n"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()  # control: a terminal gets every update, rewritten in place, then one newline
    progress = conform_cmd._FreeProgress(True, tty)
    for at in (1, 2):
        progress(at, 60)
    progress.done()
    assert tty.getvalue() == "\rfree run: t=1/60 model s\rfree run: t=2/60 model s\n"
    quiet = io.StringIO()
    conform_cmd._FreeProgress(False, quiet)(5, 60)
    assert quiet.getvalue() == ""
