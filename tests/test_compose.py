"""The compositional exhaustive mode (checkers/compose.py): one client against any number of others.

Its "holds for any number of clients" rests on two claims. Every step of a
fleet, seen from one of its clients that has not crashed, changes nothing
that client sees or is a step of the one-client system with the
environment's moves (its three abstractions included: load that moves
freely, no crash, one-unit ticks). And from a client's crash on, nothing
violates a composable property for it. The first two tests check them over
random runs of every preset, stack, variant and proxy under every design it
covers, with fleets of 1 to 3 clients; seeded flaws (an environment that
cannot split time, a load that still waits for a ``hot`` flag the system
no longer keeps, a property that judges crashed clients) fail them. The
rest check the engine: it proves the safe 2015 designs for any number of
clients, reports the violated ones with their concrete run, never reports a
violation the scenario's own fleet does not reproduce, and refuses rollouts
by name.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.checkers import compose
from stormcheck.checkers.compose import env_step, env_successors, one_client, project, unsupported
from stormcheck.model.fleet import initial_states, successors
from stormcheck.model.events import Reaped
from stormcheck.model.state import CRASHED
from stormcheck.model.params import Bounds
from stormcheck.model.scenario import load_scenario
from stormcheck.properties.core import ALWAYS, STATE, STEP, Property, Verdict
from stormcheck.properties.protocol import PROPERTIES, by_name
from stormcheck.traces.run import replay

MANIFEST = json.loads((Path(__file__).parent.parent / "counterexamples" / "manifest.json").read_text())["checks"]
COVERED = sorted({(c["scenario"], c["design"]) for c in MANIFEST
                  if unsupported(load_scenario(c["scenario"], design=c["design"]).params) is None})


# The composable step properties (parameter_agreement, a state property, is a function of the view itself).
VIEWED = (by_name("no_valid_reap"), by_name("no_message_loss"))


def _listed(p1, before, after, env, longest: int = 1000) -> bool:
    """Is `after` one step of `env` from `before`, or a run of its ticks (a fleet's tick may be many of them)?"""
    for _ in range(longest):
        steps = list(env(p1, before))
        if after in {x.state for _, x in steps}:
            return True
        before = next((x.state for a, x in steps if a.kind == "tick"), None)
        if before is None:
            return False
    return False


def _views_are_env_steps(params, runs: int, length: int, seed: int, is_step=None,
                         system=one_client, any_loss: bool = False) -> tuple[int, list]:
    """Random runs of `params`' fleet; (client steps checked, the first that is not an env step, if any).

    `any_loss`: against the coarser system, whose losses end when the environment says.
    """
    rng = random.Random(seed)
    p1 = system(params)
    lost = p1.faults.loss_duration if any_loss else 0

    def view(state, c):
        return project(state, c, lost)

    checked, bad = 0, []
    for _ in range(runs):
        state = rng.choice(initial_states(params))
        for c in range(params.clients):
            assert view(state, c) in initial_states(p1)
        for _ in range(length):
            steps = list(successors(params, state))
            if not steps:
                break
            action, st = rng.choice(steps)
            # A violating fleet step is, seen from some client, a violating step of its system.
            for prop in VIEWED:
                if not prop.check(params, state, action, st):
                    assert any(not prop.check(p1, view(state, c), a, x) for c in range(params.clients)
                               for a, x in env_successors(p1, view(state, c), any_loss)
                               if x.state == view(st.state, c)), (prop.name, action)
            for c in range(params.clients):
                if st.state.clients[c].phase == CRASHED:
                    continue  # c's crash, or a step after it: nothing to see go wrong (the next test)
                before, after = view(state, c), view(st.state, c)
                if before == after:
                    continue  # invisible to c
                checked += 1
                ok = (env_step(p1, before, after, any_loss) is not None if is_step is None
                      else is_step(p1, before, after))
                if not ok:
                    bad.append((c, state, action, st.state))
                    return checked, bad
            state = st.state
    return checked, bad


@pytest.mark.slow
@pytest.mark.parametrize("name, design", COVERED, ids=[f"{n}/{d}" for n, d in COVERED])
def test_every_fleet_step_seen_from_one_client_is_a_step_against_the_environment(name, design):
    base = load_scenario(name, design=design).params
    total = 0
    for clients in (1, 2, 3):
        params = dataclasses.replace(base, clients=clients)
        for any_loss in (False, True):
            checked, bad = _views_are_env_steps(params, runs=6, length=40, seed=clients, any_loss=any_loss)
            assert not bad, (f"{clients} clients, any_loss={any_loss}: client {bad[0][0]}'s view of {bad[0][2]} is "
                             "no step of its system")
            total += checked
    assert total > 40  # the runs did reach steps each client sees


def _violated_after_a_crash(params, props, runs: int, length: int, seed: int):
    """Random runs of `params`' fleet with one client, crashing it whenever it may; (states checked at or after
    its crash, the first state or step there that violates one of `props` or None)."""
    rng = random.Random(seed)
    p1 = dataclasses.replace(params, clients=1)  # crashes and all: not the compositional system
    checked = 0
    for _ in range(runs):
        state = rng.choice(initial_states(p1))
        for _ in range(length):
            steps = list(successors(p1, state))
            if state.clients[0].phase == CRASHED:
                checked += 1
                for prop in props:
                    if prop.over == STATE and not prop.check(p1, state):
                        return checked, (prop.name, state)
                    bad = next((a for a, x in steps if prop.over != STATE and not prop.check(p1, state, a, x)), None)
                    if bad is not None:
                        return checked, (prop.name, bad)
            if not steps:
                break
            crash = [(a, x) for a, x in steps if a.kind == "crash"]
            state = (rng.choice(crash) if crash else rng.choice(steps))[1].state
    return checked, None


COMPOSABLE = tuple(p for p in (*PROPERTIES, by_name("no_message_loss")) if compose.composable(p))


@pytest.mark.slow
@pytest.mark.parametrize("name, design", COVERED, ids=[f"{n}/{d}" for n, d in COVERED])
def test_nothing_violates_a_composable_property_from_a_clients_crash_on(name, design):
    params = load_scenario(name, design=design).params
    if not params.faults.client_crash:
        params = dataclasses.replace(params, faults=dataclasses.replace(params.faults, client_crash=1))
    checked, bad = _violated_after_a_crash(params, COMPOSABLE, runs=6, length=60, seed=1)
    assert bad is None, bad
    assert checked > 50  # the runs did reach crashed clients


def test_seeded_flaws_in_the_abstractions_are_caught():
    """Controls: a property that judges crashed clients; a system whose load still waits for ``hot``."""
    params = load_scenario("gitter-2015", design="per-server").params
    judges_the_dead = Property("no_reap_at_all", ALWAYS, STEP, lambda p, pre, a, step: not any(
        isinstance(e, Reaped) for e in step.events), "seeded: no session is ever reaped", local=True)
    assert compose.composable(judges_the_dead)
    assert _violated_after_a_crash(params, (judges_the_dead,), runs=6, length=60, seed=1)[1] is not None
    assert _violated_after_a_crash(params, COMPOSABLE, runs=6, length=60, seed=1)[1] is None

    def hot_still_read(fleet):
        return dataclasses.replace(one_client(fleet), load_trigger=fleet.load_trigger)

    params = dataclasses.replace(params, clients=2)
    assert any(_views_are_env_steps(params, runs=6, length=40, seed=s, system=hot_still_read)[1] for s in range(4))
    assert not any(_views_are_env_steps(params, runs=6, length=40, seed=s)[1] for s in range(4))


def test_a_seeded_flaw_in_the_coarser_system_is_caught():
    """Control: losses of any length, but an environment that never ends one, misses every restore."""
    def never_ends_a_loss(params, state):
        return ((a, st) for a, st in env_successors(params, state, any_loss=True)
                if a.kind != compose.ENV or a.value != compose.END_LOSS)

    params = dataclasses.replace(load_scenario("gitter-2015", design="per-server").params, clients=2)
    flawed = lambda p1, before, after: _listed(p1, before, after, never_ends_a_loss)  # noqa: E731
    runs = dict(runs=6, length=60, any_loss=True)
    assert any(_views_are_env_steps(params, seed=s, is_step=flawed, **runs)[1] for s in range(4))
    # ... and the real one passes the same runs, listed in full and asked step by step.
    listed = lambda p1, before, after: _listed(p1, before, after, lambda p, x: env_successors(p, x, True))  # noqa
    assert not any(_views_are_env_steps(params, seed=s, is_step=listed, **runs)[1] for s in range(4))
    assert not any(_views_are_env_steps(params, seed=s, **runs)[1] for s in range(4))


def test_the_composable_properties_are_the_local_always_ones():
    assert [p.name for p in (*PROPERTIES, by_name("no_message_loss")) if compose.composable(p)] == [
        "no_valid_reap", "parameter_agreement", "no_message_loss"]
    assert all(compose.composable(p) for p in VIEWED)


def test_a_seeded_flaw_in_the_environment_is_caught():
    """Control: an environment whose ticks only reach its own next deadline misses other clients' deadlines."""
    def whole_ticks_only(params, state):
        return ((a, st) for a, st in successors(params, state))

    params = dataclasses.replace(load_scenario("gitter-2015", design="per-server").params, clients=2)
    flawed = lambda p1, before, after: _listed(p1, before, after, whole_ticks_only)  # noqa: E731
    assert any(_views_are_env_steps(params, runs=6, length=40, seed=s, is_step=flawed)[1] for s in range(4))
    # ... and the real environment passes the same runs, listed in full and asked step by step.
    listed = lambda p1, before, after: _listed(p1, before, after, env_successors)  # noqa: E731
    assert not any(_views_are_env_steps(params, runs=6, length=40, seed=s, is_step=listed)[1] for s in range(4))
    assert not any(_views_are_env_steps(params, runs=6, length=40, seed=s)[1] for s in range(4))


def _check(name, design, **budget):
    sc = load_scenario(name, design=design)
    if budget:
        sc = dataclasses.replace(sc, bounds=Bounds(**budget))
    return sc, run_engine("compositional", sc, PROPERTIES)


def test_the_safe_2015_design_holds_for_any_number_of_clients():
    sc, result = _check("gitter-2015", "off")
    for name in ("no_valid_reap", "parameter_agreement"):
        got = result.get(name)
        assert got.verdict is Verdict.HOLDS and got.basis.endswith("holds for any number of clients"), got.basis
    # The witnesses come from the scenario's own fleet, as concrete runs.
    got = result.get("dead_session_reaped")
    assert got.verdict is Verdict.HOLDS and "in the scenario's own fleet of 1 client" in got.basis
    replay(sc.params, got.run.initial, got.run.actions, got.run.states)
    # Pinned: one client against the environment, the same system for the 3 x 3 fleet (bench/benchmark.py),
    # with losses of any length (the coarser system: nothing violated there, so nothing searched again).
    assert result.stats["complete"] and result.stats["states"] == 232 and result.stats["losses"] == "any length"
    assert "any_loss" not in result.stats


@pytest.mark.parametrize("design, states", [("per-session", 5_392), ("fleet-wide-staged", 13_096)])
def test_the_adjusting_safe_designs_hold_for_any_number_of_clients(design, states):
    # Issue 17's 3 x 3 fleet, whose own state space the exhaustive engine does not finish in minutes.
    sc = load_scenario("gitter-2015", design=design)
    sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, clients=3))
    result = run_engine("compositional", sc, PROPERTIES)
    for name in ("no_valid_reap", "parameter_agreement"):
        got = result.get(name)
        assert got.verdict is Verdict.HOLDS and got.basis.endswith("holds for any number of clients"), got.basis
    assert result.stats["complete"] and result.stats["losses"] == "any length"
    assert result.stats["states"] == states  # pinned, as in bench/benchmark.py


def test_the_2015_incident_is_reported_with_its_concrete_run():
    sc, result = _check("gitter-2015", "per-server")
    got = result.get("no_valid_reap")
    pinned = next(c for c in MANIFEST if (c["scenario"], c["design"]) == ("gitter-2015", "per-server"))
    assert got.verdict is Verdict.VIOLATED and str(got.verdict) == pinned["verdicts"]["no_valid_reap"]
    assert got.basis.startswith("found at depth 12")  # the exhaustive engine's shortest run, in the fleet itself
    replay(sc.params, got.run.initial, got.run.actions, got.run.states)


@pytest.mark.slow
def test_a_violation_only_the_abstraction_reaches_is_inconclusive_never_violated(monkeypatch):
    # Seeded: a concrete search that finds nothing. The abstraction still reaches the 2015 reap,
    # and the engine must not call that a violation without a run of a real fleet.
    from stormcheck.checkers.result import CheckResult, PropertyResult

    def finds_nothing(props, max_states=None, progress=None):
        return CheckResult("exhaustive", "", "per-server", tuple(
            PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, "seeded: not searched") for p in props), {})

    params = load_scenario("gitter-2015", design="per-server").params
    props = (by_name("parameter_agreement"),)
    result = compose.check_compositional(params, props, budget=Bounds(max_seconds=60), concrete=finds_nothing)
    got = result.get("parameter_agreement")
    assert got.verdict is Verdict.INCONCLUSIVE and "reaches a violation at depth" in got.basis and got.run is None


def test_an_unfinished_compositional_search_is_inconclusive_or_the_fleets_own_verdict():
    # Three clients: the fleet's own space is past the first look, so nothing is decided.
    sc = load_scenario("stacks/grpc")
    sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, clients=3), bounds=Bounds(max_seconds=2))
    got = run_engine("compositional", sc, PROPERTIES).get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "compositional search stopped (time budget of 2 s spent)" in got.basis
    # One client: the first look covers the whole fleet, which holds; the basis says for what.
    _, result = _check("stacks/grpc", "off", max_seconds=2)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.HOLDS and got.basis.startswith("complete search of the scenario's own fleet of 1 "
                                                                 "client")
    assert "for any number of clients not decided: compositional search stopped" in got.basis


def test_rollouts_are_refused_by_name():
    _, result = _check("rollouts/socketio-4-ping-60", "off")
    for got in result.properties:
        assert got.verdict is Verdict.INCONCLUSIVE and "not covered: a configuration rollout ([rollout])" in got.basis


def test_the_command_line_runs_it_and_refuses_a_depth_bound(tmp_path, capsys):
    from stormcheck.cli import main

    out = tmp_path / "out"
    assert main(["check", "gitter-2015", "--engine", "compositional", "--out", str(out), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert "engine compositional" in text and "(in the scenario's own fleet of 1 client)" in text
    assert (out / "gitter-2015.per-server.no_valid_reap.itf.json").exists()
    assert main(["replay", str(out / "gitter-2015.per-server.no_valid_reap.itf.json")]) == 0
    capsys.readouterr()
    assert main(["check", "gitter-2015", "--engine", "compositional", "--max-depth", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--max-depth: not used by --engine compositional" in err and "Traceback" not in err


def test_progress_covers_every_search_of_the_run_on_its_clock():
    # A run over a second reports, whichever of its searches takes the time: here a first look of the
    # scenario's fleet that reports once (as the exhaustive engine does after its own second), then a
    # compositional search that may take less than a second of its own.
    import time

    from stormcheck.checkers.bfs import check_bfs

    scenario = load_scenario("static-45")
    seen, returned = [], []

    def concrete(props, max_states=None, progress=None):
        time.sleep(0.6)
        if progress is not None:
            progress({"states": 7, "transitions": 9, "depth": 2, "seconds": 0.6, "queued": 3})
        time.sleep(0.6)
        bounds = scenario.bounds if max_states is None else dataclasses.replace(scenario.bounds, max_states=max_states)
        result = check_bfs(scenario.params, props, budget=bounds, progress=progress)
        returned.append(time.perf_counter())
        return result

    result = compose.check_compositional(scenario.params, PROPERTIES, budget=scenario.bounds,
                                         progress=lambda info: seen.append((time.perf_counter(), info)),
                                         concrete=concrete)
    assert result.get("no_valid_reap").verdict is Verdict.HOLDS
    assert seen[0][1]["phase"] == "first look at the own fleet" and seen[0][1]["states"] == 7
    # The compositional search reports as soon as a second has passed since the run's last line, not
    # after a second of its own.
    first = next(i for i, (_, info) in enumerate(seen) if info["phase"].startswith("one client, any number"))
    due = max(returned[0], seen[first - 1][0] + 1.0)
    assert seen[first][0] - due < 0.5, (seen, returned)
    assert all(later[1]["seconds"] >= earlier[1]["seconds"] for earlier, later in zip(seen, seen[1:]))
