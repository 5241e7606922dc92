"""Tests for the symbolic engine (checkers/z3_bmc.py): search, certification, verdicts.

On the 2015 fleet: the counterexample Z3 finds is as short as the exhaustive
engine's shortest and replays through the Python model; under ``off`` the
property is proved, and without the proof there is no counterexample up to
12 steps, reported as a *bounded* holds. A seed reproduces a run; a solver
that gives up makes the verdict inconclusive, never holds.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.z3_bmc import bmc, check_symbolic, depth_schedule, make_solver, search
from stormcheck.checkers.z3_encoding import Encoding
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import load_scenario
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import PROPERTIES, no_valid_reap
from stormcheck.traces.run import replay

K = 12


@pytest.fixture(scope="module")
def gitter():
    return load_scenario("gitter-2015").params


@pytest.fixture(scope="module")
def per_server(gitter):
    start = time.perf_counter()
    result = check_symbolic(gitter, PROPERTIES, scenario="gitter-2015", max_steps=K, seed=0)
    return result, time.perf_counter() - start


@pytest.mark.slow
def test_2015_counterexample_is_shortest_and_certified(gitter, per_server):
    result, seconds = per_server
    assert result.engine == "symbolic" and result.design == "per-server"
    found = result.get("no_valid_reap")
    assert found.verdict is Verdict.VIOLATED
    shortest = check_bfs(gitter, (no_valid_reap,)).get("no_valid_reap").run
    assert len(found.run) == len(shortest) == 12
    # Certified: the run replays with the model's own step, state for state,
    # and its last step destroys a valid client's session.
    again = replay(gitter, found.run.initial, found.run.actions, found.run.states)
    pre, (action, last) = again.states[-2], again.steps[-1]
    assert not no_valid_reap.check(gitter, pre, action, last)
    assert "certified counterexample of 12 steps" in found.basis
    print(f"\nz3 BMC, gitter-2015 per-server: certified 12-step counterexample in {seconds:.2f} s "
          f"(per bound {result.stats['properties']['no_valid_reap']['per_depth']})")


@pytest.mark.slow
def test_every_property_gets_a_certified_verdict(gitter, per_server):
    result, _ = per_server
    agreement = result.get("parameter_agreement")
    assert agreement.verdict is Verdict.VIOLATED and "certified counterexample" in agreement.basis
    assert not PROPERTIES[1].check(gitter, agreement.run.states[-1])
    for name in ("dead_session_reaped", "rehandshake_reachable"):
        got = result.get(name)
        assert got.verdict is Verdict.HOLDS and "certified witness" in got.basis
        prop = next(p for p in PROPERTIES if p.name == name)
        assert prop.check(gitter, got.run.states[-2], *got.run.steps[-1])
    # The proof was tried first and failed with a counterexample to induction, not a claim.
    assert result.stats["properties"]["no_valid_reap"]["proof"]["status"] == "cti"


def test_off_is_proved(gitter):
    got = check_symbolic(gitter.with_design(DESIGNS["off"]), (no_valid_reap,), max_steps=K).get("no_valid_reap")
    assert got.verdict is Verdict.HOLDS and got.basis.startswith("proved by an inductive invariant")
    assert "any number of clients, unbounded time" in got.basis


@pytest.mark.slow
def test_off_has_no_counterexample_within_the_bound(gitter):
    start = time.perf_counter()
    result = check_symbolic(gitter.with_design(DESIGNS["off"]), (no_valid_reap,), max_steps=K, prove_first=False)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.HOLDS and got.run is None
    assert got.basis.startswith(f"bounded: no counterexample of <= {K} steps")
    print(f"\nz3 BMC, gitter-2015 off: no counterexample of <= {K} steps in {time.perf_counter() - start:.2f} s")


def test_same_seed_same_result(gitter):
    # A load that may rise at any time: a 7-step counterexample, cheap to find twice.
    params = dataclasses.replace(gitter, load_trigger="free")
    first = check_symbolic(params, (no_valid_reap,), max_steps=8, seed=7).get("no_valid_reap")
    second = check_symbolic(params, (no_valid_reap,), max_steps=8, seed=7).get("no_valid_reap")
    assert first.verdict is second.verdict is Verdict.VIOLATED
    assert first.run == second.run and 7 <= len(first.run) <= 8  # the shortest has 7 steps


def test_unknown_is_inconclusive_never_holds(gitter):
    # A resource limit too small for any answer: the solver says unknown.
    result = check_symbolic(gitter, (no_valid_reap,), max_steps=K, rlimit=1)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "unknown" in got.basis


def test_search_finds_some_bad_path_and_states_the_free_bound():
    import z3

    x = [z3.Int(f"x{i}") for i in range(40)]
    counter = dict(init=x[0] == 0, trans=lambda i: x[i + 1] == x[i] + 1)
    found = search(**counter, bad=lambda i: x[i + 1] == 14, max_steps=20, solver=make_solver(seed=1))
    assert found.status == "found" and found.steps == 14 and found.none_within == 12
    none = search(**counter, bad=lambda i: x[i + 1] == 30, max_steps=20, solver=make_solver(seed=1))
    assert none.status == "none" and none.none_within == 20
    assert depth_schedule(30) == [12, 16, 24, 30] and depth_schedule(8) == [8]


def test_a_one_client_run_is_lifted_to_three_mirroring_clients():
    sc = load_scenario("gitter-2015-3x3")
    result = check_symbolic(sc.params, (no_valid_reap,), max_steps=12)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.VIOLATED and "every client mirroring it" in got.basis
    run = replay(sc.params, got.run.initial, got.run.actions, got.run.states)
    assert len(run.initial.clients) == 3
    assert not no_valid_reap.check(sc.params, run.states[-2], *run.steps[-1])


def test_a_parameter_the_encoding_does_not_know_is_refused(gitter, monkeypatch):
    # A field the model gains is "not encoded" unless it keeps its default:
    # played here by forgetting one the encoding knows.
    from stormcheck.checkers import z3_coverage
    from stormcheck.model.params import Params

    monkeypatch.setitem(z3_coverage._KNOWN, Params, z3_coverage._KNOWN[Params] - {"retry"})
    z3_coverage.check_encodable(gitter)  # at its default: fine
    changed = dataclasses.replace(gitter, retry=30)
    got = check_symbolic(changed, (no_valid_reap,), max_steps=2).get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE and got.basis == "not encoded: Params.retry = 30"
    assert not got.checked  # a report shows it as "not checked by this engine"


def test_engine_knows_nothing_of_the_domain():
    # bmc takes formulas only: a counter that must not reach 3.
    import z3

    x = [z3.Int(f"x{i}") for i in range(6)]
    found = bmc(x[0] == 0, lambda i: x[i + 1] == x[i] + 1, lambda i: x[i + 1] == 3, 5, make_solver(seed=1))
    assert found.status == "found" and found.steps == 3
    none = bmc(x[0] == 0, lambda i: x[i + 1] == x[i] + 1, lambda i: x[i + 1] == 9, 5, make_solver(seed=1))
    assert none.status == "none" and none.steps == 5


def test_a_fleet_the_encoding_does_not_cover_is_inconclusive_with_a_reason(monkeypatch):
    # Every shipped preset is encoded today: an encoding that had not stated the
    # stacks' rules stands for a rule the model gains later.
    from stormcheck.checkers import z3_coverage

    monkeypatch.setattr(z3_coverage, "_ENCODED_FEATURES", frozenset())
    sc = load_scenario("stacks/mqtt")
    got = check_symbolic(sc.params, (no_valid_reap,), max_steps=2).get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "not encoded: heartbeat rules other than Faye's ([heartbeat])" in got.basis
    assert not got.checked


def test_liveness_and_unencoded_properties_are_marked_not_checked(gitter):
    # The symbolic engine checks no liveness property: inconclusive for the
    # exit code, and marked not checked, apart from a search that ran out.
    from stormcheck.checkers import run_engine
    from stormcheck.properties.protocol import LIVENESS

    sc = load_scenario("gitter-2015", design="off")
    result = run_engine("symbolic", sc, (no_valid_reap, *LIVENESS))
    assert result.get("no_valid_reap").checked and result.get("no_valid_reap").verdict is Verdict.HOLDS
    for prop in LIVENESS:
        got = result.get(prop.name)
        assert got.verdict is Verdict.INCONCLUSIVE and not got.checked


def test_encoding_init_matches_the_exhaustive_roots(gitter):
    import z3

    enc = Encoding(gitter)
    s = make_solver()
    s.add(enc.init())
    assert s.check() == z3.sat


def test_a_bound_below_one_step_is_refused(gitter):
    with pytest.raises(ValueError, match="at least 1 step"):
        check_symbolic(gitter, (no_valid_reap,), max_steps=0)


def test_an_unknown_answer_is_raised_never_read_as_unsat():
    import z3

    from stormcheck.checkers.z3_bmc import SolverUnknown, check_known, make_solver

    s = make_solver(rlimit=1)  # no resources: Z3 must give up
    x, y = z3.Ints("x y")
    s.add(x * x * x + y * y * y == 1729, x > 1, y > x)
    with pytest.raises(SolverUnknown, match="the solver gave up"):
        check_known(s)
