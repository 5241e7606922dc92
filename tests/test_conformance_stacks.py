"""The stack presets, rollouts and proxy scenarios held to their real libraries.

Every ``conformance`` entry of counterexamples/manifest.json whose stack is
one of `stormcheck.conformance.stacks.STACKS` is run on the real library: the
real verdict must be the recorded one, and the recorded model verdict must be
what the model says now. The frozen-client runs are the controls of the free
runs (the same judge does drop a client that stops answering), and the two
nginx scenarios are each other's control (a heartbeat longer than the idle
timeout is cut, a shorter one is not). Under CI (CI=true) a missing component
fails; elsewhere the test skips naming what to install.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stormcheck.cli import main as cli
from stormcheck.conformance.stacks import STACKS
from stormcheck.conformance.stacks.conform import conform, held, runs_for
from stormcheck.conformance.stacks.harness import Config
from stormcheck.conformance.stacks.runs import frozen_client, live_change
from stormcheck.model.scenario import load_scenario

# Real servers on a scaled clock, or real time: run alone (bin/test's second part).
pytestmark = pytest.mark.realtime

ROOT = Path(__file__).resolve().parent.parent
STACK_NAMES = {s.stack: s for s in STACKS.values()}


def _entries() -> list[dict]:
    manifest = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())
    return [e for e in manifest.get("conformance", []) if e["stack"] in STACK_NAMES]


def _stacks_in_manifest() -> list[str]:
    return sorted({STACK_NAMES[e["stack"]].key for e in _entries()})


def _need(stack) -> None:
    missing = stack.missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{stack.stack}: missing under CI: {missing}")
        pytest.skip(f"{stack.stack}: install {missing}")


def test_every_stack_scenario_and_run_has_an_entry():
    have = {(e["stack"], e["scenario"], e["run"]) for e in _entries()}
    for stack in STACKS.values():
        for name in held(stack):
            for run in runs_for(load_scenario(name)):
                assert (stack.stack, name, run) in have, f"no conformance entry for {stack.stack} {name} {run}"


@pytest.mark.parametrize("key", _stacks_in_manifest())
def test_real_library_gives_the_recorded_verdicts(key):
    """Every entry of one stack; its scenarios run at once (they only wait on timers)."""
    stack = STACKS[key]
    _need(stack)
    entries = [e for e in _entries() if e["stack"] == stack.stack]
    scenarios = sorted({e["scenario"] for e in entries})
    with ThreadPoolExecutor(max_workers=len(scenarios)) as pool:
        runs = {name: tuple(e["run"] for e in entries if e["scenario"] == name) for name in scenarios}
        futures = {name: pool.submit(conform, load_scenario(name), runs[name]) for name in scenarios}
        results = [r for name in scenarios for r in futures[name].result()]
    recorded = {(e["scenario"], e["run"]): e for e in entries}
    assert len(results) == len(entries)
    for r in results:
        e = recorded[(r.scenario, r.run)]
        assert r.model == e["model"], f"{r.scenario} {r.run}: the model now says {r.model}, recorded {e['model']}"
        assert r.real == e["real"], f"{r.scenario} {r.run}: the real library showed {r.real} ({r.detail}), " \
                                    f"recorded {e['real']}"


def test_websockets_judge_counts_the_interval_in_use():
    """A frozen peer at ping_interval 60 / ping_timeout 20 is closed after 60 + 20 s, not A's 20 + 20."""
    stack = STACKS["websockets"]
    _need(stack)
    params = load_scenario("rollouts/python-websockets-ping-60").params
    out = frozen_client(stack, params, Config(timeout=20, interval=60))
    lo, hi = stack.tolerance_for(Config(20, 60))
    assert out.observed is not None and 80 - lo <= out.observed <= 80 + hi, out.detail
    assert out.observed > float(params.cutoff("gc", 0)) + hi  # the written split's 40 s is not what runs


def test_socketio4_live_interval_raise_drops_a_healthy_client_and_a_small_one_does_not():
    """Engine.IO 4 clients judge by their handshake's pingInterval + pingTimeout (25 + 20 = 45 s)."""
    stack = STACKS["socketio-4"]
    _need(stack)
    params = load_scenario("stacks/socketio-4").params
    raised = live_change(stack, params, Config(timeout=20, interval=60))
    assert raised.real == "violated" and "Server has stopped communicating" in raised.detail, raised.detail
    control = live_change(stack, params, Config(timeout=20, interval=30))
    assert control.real == "holds", control.detail


def _conform(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli(["conform", *args])
    return rc, capsys.readouterr().err


def test_conform_refuses_a_run_the_scenario_does_not_have(capsys):
    rc, err = _conform(capsys, "rollouts/mqtt-keepalive-120", "--run", "free-run")
    assert rc == 2, err
    assert "'free-run' does not apply" in err and "rollout-as-written" in err


def test_conform_says_why_phoenix_signalr_and_actioncable_are_unverified(capsys):
    for name in ("stacks/phoenix", "rollouts/signalr-keepalive-60", "stacks/actioncable"):
        rc, err = _conform(capsys, name)
        assert rc == 3 and "unverified" in err, (name, err)
