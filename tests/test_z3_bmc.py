"""Tests for the symbolic engine's bounded model checking (checkers/z3_bmc.py).

On the 2015 fleet: the counterexample Z3 finds is as short as the exhaustive
engine's shortest and replays through the Python model; under ``off`` there
is none up to 12 steps, reported as a *bounded* holds. A seed reproduces a
run; a solver that gives up makes the verdict inconclusive, never holds.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.z3_bmc import bmc, check_symbolic, make_solver
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
          f"(per depth {result.stats['per_depth']})")


@pytest.mark.slow
def test_other_properties_are_not_claimed(per_server):
    result, _ = per_server
    for prop in PROPERTIES:
        if prop.name != "no_valid_reap":
            got = result.get(prop.name)
            assert got.verdict is Verdict.INCONCLUSIVE and "not checked by the symbolic engine" in got.basis


@pytest.mark.slow
def test_off_has_no_counterexample_within_the_bound(gitter):
    start = time.perf_counter()
    result = check_symbolic(gitter.with_design(DESIGNS["off"]), (no_valid_reap,), max_steps=K)
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
    assert first.run == second.run and len(first.run) == 7


def test_unknown_is_inconclusive_never_holds(gitter):
    # A resource limit too small for any answer: the solver says unknown.
    result = check_symbolic(gitter, (no_valid_reap,), max_steps=K, rlimit=1)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE
    assert "unknown" in got.basis


def test_engine_knows_nothing_of_the_domain():
    # bmc takes formulas only: a counter that must not reach 3.
    import z3

    x = [z3.Int(f"x{i}") for i in range(6)]
    found = bmc(x[0] == 0, lambda i: x[i + 1] == x[i] + 1, lambda i: x[i + 1] == 3, 5, make_solver(seed=1))
    assert found.status == "found" and found.steps == 3
    none = bmc(x[0] == 0, lambda i: x[i + 1] == x[i] + 1, lambda i: x[i + 1] == 9, 5, make_solver(seed=1))
    assert none.status == "none" and none.steps == 5


def test_staged_design_is_inconclusive_with_a_reason(gitter):
    result = check_symbolic(gitter.with_design(DESIGNS["fleet-wide-staged"]), (no_valid_reap,), max_steps=2)
    got = result.get("no_valid_reap")
    assert got.verdict is Verdict.INCONCLUSIVE and "not encoded" in got.basis


def test_encoding_init_matches_the_exhaustive_roots(gitter):
    import z3

    enc = Encoding(gitter)
    s = make_solver()
    s.add(enc.init())
    assert s.check() == z3.sat


def test_a_bound_below_one_step_is_refused(gitter):
    with pytest.raises(ValueError, match="at least 1 step"):
        check_symbolic(gitter, (no_valid_reap,), max_steps=0)
