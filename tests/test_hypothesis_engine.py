"""The Hypothesis engine (checkers/hypo.py), scenario ranges, and the pytest entry point.

Every search here is seeded (derandomized: the same seed gives the same
run) and small; the whole file runs in about a minute on two cores. The
numbers of examples below are stated budgets: a search that needs more than
its budget fails the test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import re
import subprocess
import sys
import unittest
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis.stateful import run_state_machine_as_test

from stormcheck.checkers import ENGINES, run_engine
from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.hypo import (
    ADVERSARY,
    DEFAULT_EXAMPLES,
    DEFAULT_STEPS,
    check_hypothesis,
    fleet_machine,
    machine_settings,
    reap_margin,
)
from stormcheck.checkers.result import examples_searched
from stormcheck.cli import main
from stormcheck.model import fleet
from stormcheck.model.params import DESIGNS, Bounds
from stormcheck.model.scenario import (
    RANGE_KEYS,
    ScenarioError,
    concrete_config,
    load_scenario,
    scenario_from_dict,
)
from stormcheck.model.state import Step
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import PROPERTIES, by_name
from stormcheck.testing import scenario_test_case
from stormcheck.traces.run import replay

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())["checks"]
NVR = by_name("no_valid_reap")
STEPS = 30
# A seed under which the 2015 violation turns up early: 0.4 s with the ranges
# below, 3 s without (seeds 0-11 took 0.2-8.5 s; two found none in 300).
FAST_SEED = 1

# gitter-2015 with ranges over every range key that fits one client's fleet.
RANGES = {"timeout": [30, 60], "interval": [0, 5], "rtt_max": [0, 4], "clients": [1, 2],
          "load_ms": [10000, 80000], "loss_duration": [10, 120]}


def ranged(ranges=RANGES, base="gitter-2015"):
    config = copy.deepcopy(load_scenario(base).config)
    config["ranges"] = ranges
    return scenario_from_dict(config, "ranged.toml")


def bfs_shortest(params) -> int | None:
    """Steps of the exhaustive engine's (shortest) no_valid_reap counterexample."""
    found = check_bfs(params, (NVR,)).get("no_valid_reap")
    return len(found.run) if found.run is not None else None


def assert_replays_to_violation(params, run):
    again = replay(params, run.initial, run.actions)
    pre, (action, step) = again.states[-2], again.steps[-1]
    assert NVR.interesting(params, pre, action, step), "the run's last step must reap a valid client"


def searched(result, name="no_valid_reap"):
    return result.stats["searches"][name]


# ------------------------------------------------------------------ the machine


def test_the_machine_is_derived_from_the_model():
    machine = fleet_machine(load_scenario("gitter-2015"), PROPERTIES)
    setup = machine.setup_state()
    # One rule draws among the kinds the model enables: no list of kinds is
    # written here, so a new rule kind in the model needs nothing in the engine.
    assert [r.function.__name__ for r in setup.rules] == ["act"]
    assert [r.function.__name__ for r in setup.initializers] == ["begin"]
    invariants = {i.function.__name__ for i in setup.invariants}
    assert invariants == {p.name for p in PROPERTIES if p.over == "state"}
    assert set(ADVERSARY) < set(fleet.ACTIONS) and "tick" not in ADVERSARY


def test_the_machine_uses_only_hypothesis_public_api():
    # The engine and the parts its docstring names (checkers/hypo_*.py).
    paths = sorted((Path(__file__).resolve().parent.parent / "checkers").glob("hypo*.py"))
    assert len(paths) >= 3, paths
    for path in paths:
        source = path.read_text()
        for private in ("_hypothesis_internal", "RuleStrategy", "_rules_strategy"):
            assert private not in source, (path.name, private)


def test_the_machine_reaches_every_kind_the_model_enables():
    # The machine lists no kinds of its own: random runs of it on the 2015
    # fleet apply every kind that fleet has (all but the rollout's and cut).
    from stormcheck.checkers.hypo_search import _Search

    scenario = load_scenario("gitter-2015")
    search = _Search(scenario, PROPERTIES)
    machine = fleet_machine(scenario, PROPERTIES, fail_on=[], targeting=False, _search=search)
    applied: set = set()
    original = machine.apply

    def spy(self, action):
        applied.add(action.kind)
        original(self, action)

    machine.apply = spy
    run_state_machine_as_test(machine, settings=machine_settings(60, 30, database=None, derandomize=True))
    expected = {"reply", "arrive", "reconnect", "restore", "publish", "gc", "load", "lose", "crash", "tick"}
    assert expected <= applied, sorted(expected - applied)


def test_reap_margin_is_the_quantity_parameter_agreement_judges():
    # Over every state the exhaustive engine reaches: margin <= 0 exactly
    # when some valid client's next refresh lands past a cutoff.
    from stormcheck.checkers.bfs import explore

    pa = by_name("parameter_agreement")
    for design in ("per-server", "per-session"):
        params = load_scenario("gitter-2015", design=design).params
        search, _ = explore(params, (pa,), stop_when_decided=False)
        assert len(search.seen) > 100
        for state in search.seen:
            margin = reap_margin(params, state)
            assert (margin is not None and margin <= 0) == (not pa.check(params, state)), state


def test_the_engine_is_registered():
    assert "hypothesis" in ENGINES
    with pytest.raises(ValueError, match="takes no option examples"):
        run_engine("exhaustive", load_scenario("gitter-2015"), (NVR,), examples=5)


# ------------------------------------------------------------------ finding 2015


def test_gitter_2015_per_server_violation_is_found_shrunk_and_replays():
    scenario = load_scenario("gitter-2015")
    shortest = bfs_shortest(scenario.params)
    assert shortest == 12  # the exhaustive engine's, today
    result = check_hypothesis(scenario, (NVR,), seed=FAST_SEED, examples=300, steps=STEPS)
    prop = result.get("no_valid_reap")
    assert prop.verdict == Verdict.VIOLATED
    assert len(prop.run) <= 3 * shortest
    assert re.fullmatch(rf"found in example \d+ of <= {STEPS} steps, shrunk to {len(prop.run)} steps", prop.basis)
    assert_replays_to_violation(scenario.params, prop.run)
    assert prop.config is None and prop.drawn is None  # nothing was drawn
    assert "def test_" in prop.repro and "replay(" in prop.repro
    stats = searched(result)
    assert stats["first_violation_example"] <= 300 and stats["shrunk_steps"] == len(prop.run)
    assert result.stats["seed"] == FAST_SEED and result.stats["seeded"] and result.stats["database"] is None
    assert result.stats["targeting"]


def test_gitter_2015_with_ranges_names_the_drawn_parameters():
    scenario = ranged()
    result = check_hypothesis(scenario, (NVR,), seed=FAST_SEED, examples=300, steps=STEPS)
    prop = result.get("no_valid_reap")
    assert prop.verdict == Verdict.VIOLATED
    assert set(prop.drawn) == set(RANGES)
    for key, (lo, hi) in RANGES.items():
        assert lo <= prop.drawn[key] <= hi
    assert "drawn: " in prop.basis
    # The concrete config: the drawn values substituted, no ranges left.
    assert "ranges" not in prop.config
    assert prop.config == concrete_config(scenario.config, prop.drawn)
    concrete = scenario_from_dict(prop.config, "trace")
    assert concrete.params.t0 == prop.drawn["timeout"] and concrete.params.clients == prop.drawn["clients"]
    assert_replays_to_violation(concrete.params, prop.run)
    assert len(prop.run) <= 3 * bfs_shortest(load_scenario("gitter-2015").params)
    shortest_here = bfs_shortest(concrete.params)
    assert shortest_here is not None and len(prop.run) <= 3 * shortest_here


# ------------------------------------------------------------------ honest verdicts


SAFE = [c for c in MANIFEST if c["verdicts"]["no_valid_reap"] == "holds" and c["complete"]]


def test_the_safe_list_covers_the_reviewed_fixes():
    assert {("gitter-2015", "off"), ("gitter-2015", "per-session")} <= {(c["scenario"], c["design"]) for c in SAFE}


@pytest.mark.parametrize("check", SAFE, ids=lambda c: f"{c['scenario']}/{c['design']}")
def test_nothing_is_found_where_the_manifest_says_holds(check):
    scenario = load_scenario(check["scenario"], design=check["design"])
    result = check_hypothesis(scenario, (NVR,), seed=1, examples=25, steps=STEPS)
    prop = result.get("no_valid_reap")
    # Never "holds": random search proves nothing.
    assert prop.verdict == Verdict.INCONCLUSIVE and prop.run is None
    n, cut = searched(result)["examples"], searched(result)["cut_short"]
    assert n - cut == 25  # whole examples: the budget, exactly
    said = f" ({cut:,} beyond the budget of whole runs)" if cut else ""
    assert prop.basis == f"no counterexample found in {n:,} examples of <= {STEPS} steps{said}"


def test_examples_past_the_budget_are_counted_and_said_so(capsys, tmp_path):
    # Hypothesis does not count an example it stops part way (its choices outgrew
    # its size limit) in max_examples: --examples 300 ran 323. The budget is kept,
    # the extra ones are named.
    rc = main(["check", "static-45", "--engine", "hypothesis", "--seed", "1", "--examples", "300",
               "--property", "no_valid_reap", "--quiet", "--json", "--out", str(tmp_path)])
    assert rc == 3
    doc = json.loads(capsys.readouterr().out)
    st = doc["stats"]
    assert st["cut_short"] > 0 and st["examples"] - st["cut_short"] == 300 and st["shrinking"] == 0
    said = f"{st['examples']:,} examples of <= 30 steps ({st['cut_short']:,} beyond the budget of whole runs)"
    assert doc["properties"]["no_valid_reap"]["basis"] == f"no counterexample found in {said}"
    # One search: its basis and the run's summary line say its examples in the same words.
    assert examples_searched(st) == said


def test_runs_spent_shrinking_are_counted_apart(capsys, tmp_path):
    result = check_hypothesis(load_scenario("gitter-2015"), (NVR,), seed=FAST_SEED, examples=300, steps=STEPS)
    st, s = result.stats, searched(result)
    assert result.get("no_valid_reap").verdict == Verdict.VIOLATED
    assert st["shrinking"] == s["examples"] - s["first_violation_example"] > 0
    assert s["cut_short"] == 0  # counted only for a search that ran its budget out
    assert main(["check", "gitter-2015", "--engine", "hypothesis", "--seed", str(FAST_SEED), "--examples", "300",
                 "--property", "no_valid_reap", "--quiet", "--out", str(tmp_path)]) == 1
    assert f"({st['shrinking']:,} shrinking a counterexample)" in capsys.readouterr().out


def test_sometimes_properties_hold_with_a_witness_or_stay_inconclusive():
    props = (by_name("dead_session_reaped"), by_name("rehandshake_reachable"))
    result = check_hypothesis(load_scenario("gitter-2015", design="off"), props, seed=1, examples=20, steps=STEPS)
    for prop in result.properties:
        assert prop.verdict == Verdict.HOLDS and prop.run is not None
        pre, (action, step) = prop.run.states[-2], prop.run.steps[-1]
        assert by_name(prop.name).interesting(load_scenario("gitter-2015").params, pre, action, step)
    # A fleet where nothing can crash has no witness of a dead session: not violated, inconclusive.
    config = copy.deepcopy(load_scenario("gitter-2015", design="off").config)
    config["faults"]["client_crash"] = 0
    result = check_hypothesis(scenario_from_dict(config, "x"), props[:1], seed=1, examples=10, steps=10)
    assert result.get("dead_session_reaped").verdict == Verdict.INCONCLUSIVE
    assert result.get("dead_session_reaped").basis == f"no witness found in {examples_searched(result.stats)}"


def test_a_witness_basis_counts_the_examples_up_to_the_finding_not_the_whole_run():
    # The whole run goes on after the witness (the no_valid_reap search, its shrinking): the basis names the
    # example the witness shown was found in, the same for the same seed.
    props = (NVR, by_name("rehandshake_reachable"))
    sc = load_scenario("gitter-2015")
    result = check_hypothesis(sc, props, seed=1, examples=20, steps=STEPS)
    basis = result.get("rehandshake_reachable").basis
    found = re.fullmatch(rf"witness of \d+ steps? found in example (\d+) of <= {STEPS} steps", basis)
    assert found, basis
    assert 1 <= int(found[1]) < result.stats["examples"], (basis, result.stats["examples"])
    assert check_hypothesis(sc, props, seed=1, examples=20, steps=STEPS).get("rehandshake_reachable").basis == basis


# ------------------------------------------------------------------ differential


def _random_scenarios(n: int, seed: int = 42):
    rng = random.Random(seed)
    for i in range(n):
        yield scenario_from_dict({
            "scenario": {"name": f"random-{i}", "design": rng.choice(list(DESIGNS))},
            "topology": {"servers": rng.choice([2, 3]), "clients": 1},
            "protocol": {"timeout": rng.randint(20, 60), "interval": rng.randint(0, 5),
                         "rtt": rng.choice([[0], [2], [0, 2]])},
            "load": {"levels_ms": [0, rng.choice([10000, 20000, 40000, 80000])]},
            "faults": {"server_loss": 1, "client_crash": rng.choice([0, 1])},
        }, "differential")


def test_differential_with_the_exhaustive_engine():
    # Within the step budget S: BFS bounded at depth S explores every run the
    # Hypothesis engine can make. Where BFS finds a violation, Hypothesis must
    # find one within 1,000 examples; where BFS finds none, Hypothesis cannot.
    verdicts = []
    for i, scenario in enumerate(_random_scenarios(7)):
        exhaustive = check_bfs(scenario.params, (NVR,), budget=Bounds(max_depth=20)).get("no_valid_reap")
        violated = exhaustive.verdict == Verdict.VIOLATED
        result = check_hypothesis(scenario, (NVR,), seed=i, examples=1000 if violated else 20, steps=20)
        found = result.get("no_valid_reap")
        assert (found.verdict == Verdict.VIOLATED) == violated, (scenario.config, exhaustive.basis, found.basis)
        if violated:
            assert_replays_to_violation(scenario.params, found.run)
            assert len(found.run) <= 20
        verdicts.append(violated)
    assert any(verdicts) and not all(verdicts)  # both kinds of scenario were drawn


# ------------------------------------------------------------------ seeded bugs


def test_a_reaper_without_multiplier_is_caught_within_20_examples():
    # publish_mult = gc_mult = 1 (no file may say so: the format wants > 1).
    sc = load_scenario("gitter-2015", design="off")
    broken = dataclasses.replace(sc, params=dataclasses.replace(sc.params, publish_mult=Fraction(1),
                                                                gc_mult=Fraction(1)))
    assert bfs_shortest(sc.params) is None and bfs_shortest(broken.params) is not None
    result = check_hypothesis(broken, (NVR,), seed=0, examples=20, steps=STEPS)
    assert result.get("no_valid_reap").verdict == Verdict.VIOLATED
    assert searched(result)["first_violation_example"] <= 20


def test_a_client_that_skips_a_refresh_is_caught_within_20_examples(monkeypatch):
    # The client waits one more T0 after each answer than it was told to.
    honest = fleet._APPLY["reply"]

    def late_reply(params, state, action):
        st = honest(params, state, action)
        cl = st.state.clients[action.client]
        late = cl._replace(timer=cl.timer + params.t0)
        return Step(st.state._replace(clients=st.state.clients[:action.client] + (late,)
                                      + st.state.clients[action.client + 1:]), st.events)

    monkeypatch.setitem(fleet._APPLY, "reply", late_reply)
    sc = load_scenario("gitter-2015", design="off")
    result = check_hypothesis(sc, (NVR,), seed=0, examples=20, steps=STEPS)
    prop = result.get("no_valid_reap")
    assert prop.verdict == Verdict.VIOLATED and searched(result)["first_violation_example"] <= 20
    assert any(a.kind == "reply" for a in prop.run.actions)


# ------------------------------------------------------------------ reproducibility


def test_the_same_seed_gives_the_same_result():
    scenario = load_scenario("gitter-2015")
    one, two = (check_hypothesis(scenario, (NVR,), seed=FAST_SEED, examples=300, steps=STEPS) for _ in range(2))
    a, b = one.get("no_valid_reap"), two.get("no_valid_reap")
    assert (a.verdict, a.basis, a.run, a.repro) == (b.verdict, b.basis, b.run, b.repro)
    for key in ("examples", "first_violation_example", "shrunk_steps"):
        assert searched(one)[key] == searched(two)[key]


def test_an_unseeded_run_keeps_its_failure_in_the_example_database(tmp_path):
    # No seed: Hypothesis's database (here in tmp_path) keeps the shrunk
    # failure, and the next run replays it first.
    db = tmp_path / ".hypothesis" / "examples"
    scenario = load_scenario("gitter-2015")
    first = check_hypothesis(scenario, (NVR,), examples=3000, steps=STEPS, database=db)
    assert first.get("no_valid_reap").verdict == Verdict.VIOLATED
    assert not first.stats["seeded"] and first.stats["database"] == str(db)
    assert not first.stats["targeting"]  # with a database Hypothesis would shrink a whole Pareto front
    assert any(db.iterdir())
    second = check_hypothesis(scenario, (NVR,), examples=3000, steps=STEPS, database=db)
    assert searched(second)["first_violation_example"] == 1
    assert second.get("no_valid_reap").run == first.get("no_valid_reap").run


# ------------------------------------------------------------------ the CLI and the repro


def test_cli_check_writes_a_replayable_trace_and_a_runnable_repro(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toml = tmp_path / "ranged.toml"
    preset = (ROOT / "model" / "scenarios" / "gitter-2015.toml").read_text()
    toml.write_text(preset.replace('name = "gitter-2015"', 'name = "ranged"')
                    + "\n[ranges]\ntimeout = [30, 60]\ninterval = [0, 5]\n")
    rc = main(["check", str(toml), "--engine", "hypothesis", "--seed", str(FAST_SEED), "--examples", "300",
               "--steps", str(STEPS), "--property", "no_valid_reap", "--out", "o"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "engine hypothesis" in out and "Counterexample to no_valid_reap" in out
    assert "Reproduction as a test" in out and "def test_ranged_per_server_no_valid_reap_is_violated" in out
    stem = tmp_path / "o" / "ranged.per-server.no_valid_reap"
    trace, repro = stem.with_name(stem.name + ".itf.json"), stem.with_name(stem.name + ".repro.py")
    meta = json.loads(trace.read_text())["#meta"]
    assert meta["engine"] == "hypothesis" and meta["seed"] == FAST_SEED
    assert set(meta["drawn"]) == {"timeout", "interval"}
    assert "ranges" not in meta["scenario_config"]
    assert meta["scenario_config"]["protocol"]["timeout"] == meta["drawn"]["timeout"]
    assert main(["replay", str(trace)]) == 0
    assert "violates no_valid_reap" in capsys.readouterr().out
    assert not (tmp_path / ".hypothesis" / "examples").exists()  # seeded: no database

    # The reproduction runs, and passes as it claims while the bug is there...
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--import-mode=importlib", str(repro)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    # ...and fails once the design no longer has it.
    fixed = repro.with_name("fixed_repro.py")
    fixed.write_text(repro.read_text().replace("'design': 'per-server'", "'design': 'per-session'"))
    proc = subprocess.run([sys.executable, str(fixed)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0 and ("ReplayError" in proc.stderr or "AssertionError" in proc.stderr), proc.stderr


def test_cli_exit_3_when_nothing_is_found(capsys, tmp_path):
    rc = main(["check", "gitter-2015", "--design", "per-session", "--engine", "hypothesis", "--seed", "1",
               "--examples", "10", "--steps", "10", "--out", str(tmp_path), "--quiet", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 3 and doc["verdict"] == "inconclusive" and doc["engine"] == "hypothesis"
    assert doc["properties"]["no_valid_reap"]["basis"].startswith("no counterexample found in ")
    assert doc["stats"]["max_steps"] == 10 and doc["seed"] == 1


def test_cli_help_states_the_engine_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {DEFAULT_EXAMPLES})" in text and f"(default {DEFAULT_STEPS})" in text
    assert "hypothesis" in text


@pytest.mark.parametrize("argv, message", [
    (["--engine", "hypothesis", "--examples", "0"], "--examples 0: must be a whole number >= 1"),
    (["--engine", "hypothesis", "--steps", "-3"], "--steps -3: must be a whole number >= 1"),
    (["--examples", "10"], "--examples: only used by --engine hypothesis (the engine is exhaustive)"),
    (["--engine", "hypothesis", "--max-states", "10"],
     "--max-states: not used by --engine hypothesis, which is bounded by --examples and --steps"),
])
def test_cli_engine_options_are_checked(capsys, tmp_path, argv, message):
    rc = main(["check", "gitter-2015", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == f"stormcheck: {message}", err


# ------------------------------------------------------------------ the pytest entry point


def _run_case(case) -> unittest.TestResult:
    outcome = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(outcome)
    assert outcome.testsRun == 1
    return outcome


def test_scenario_test_case_fails_for_the_2015_design(capsys):
    case = scenario_test_case("gitter-2015", design="per-server", properties=["no_valid_reap"],
                              max_examples=300, seed=FAST_SEED)
    assert issubclass(case, unittest.TestCase) and case.__name__.startswith("Test")
    assert case.__module__ == __name__
    outcome = _run_case(case)
    (failure,) = outcome.failures
    message = failure[1]
    assert "no_valid_reap violated by step" in message and "VIOLATION" in message


def test_scenario_test_case_passes_for_a_safe_design():
    case = scenario_test_case("gitter-2015", design="per-session", max_examples=15, steps=20, seed=1)
    outcome = _run_case(case)
    assert outcome.wasSuccessful(), outcome.failures + outcome.errors


# ------------------------------------------------------------------ [ranges] in scenarios


def test_ranges_round_trip_and_leave_the_point_values_alone():
    base, scenario = load_scenario("gitter-2015"), ranged()
    assert scenario.params == base.params  # the exhaustive engine checks the point values
    assert scenario.ranges == {k: tuple(v) for k, v in RANGES.items()}
    assert list(scenario.config["ranges"]) == [k for k in RANGE_KEYS if k in RANGES]
    assert scenario_from_dict(json.loads(json.dumps(scenario.config)), "trace") == scenario
    assert scenario.with_design("off").ranges == scenario.ranges
    assert "ranges" not in base.config


def test_concrete_config_substitutes_each_key():
    config = ranged({"servers": [2, 4], "skew": [-2, 2], "cut_duration": [30, 90], "rtt_max": [0, 4]}).config
    drawn = {"servers": 4, "skew": [0, 1, -2, 2], "cut_duration": 31, "rtt_max": 1}
    concrete = scenario_from_dict(concrete_config(config, drawn), "x")
    p = concrete.params
    assert (p.servers, p.skew, p.faults.cut_duration, p.rtt) == (4, (0, 1, -2, 2), 31, (0, 1))
    assert "ranges" not in concrete.config and "ranges" in config


@pytest.mark.parametrize("ranges, expected", [
    ({"timeout": [0, 60]}, ["[ranges] timeout = [0, 60]", "low end 0", "whole number of seconds >= 1"]),
    ({"timeout": [60, 30]}, ["[ranges] timeout = [60, 30]", "low <= high"]),
    ({"timeout": 45}, ["[ranges] timeout = 45", "pair [low, high]", "[protocol] timeout"]),
    ({"interval": [0, 1.5]}, ["[ranges] interval = [0, 1.5]", "high end 1.5", "float"]),
    ({"timout": [1, 2]}, ["[ranges] timout", "unknown key", "Did you mean timeout?"]),
    ({"clients": [1, 9]}, ["[ranges] clients = [1, 9]", "high end 9", "from 1 to 8"]),
    ({"servers": [1, 3]}, ["[ranges] servers = [1, 3]", "[faults] server_loss = 1", "start the range at 2"]),
    ({"load_ms": [0, 50000]}, ["[ranges] load_ms = [0, 50000]", "[load] levels_ms = [0, 40000]", "above"]),
    ({"load_ms": [1000, 2000]}, ["[ranges] at the low end of every range", "levels_ms = [0, 1000]", "same as 0 ms"]),
])
def test_bad_ranges_name_file_key_value_and_what_is_allowed(tmp_path, ranges, expected):
    config = copy.deepcopy(load_scenario("gitter-2015").config)
    config["ranges"] = ranges
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(config, "my-fleet.toml")
    msg = str(info.value)
    assert msg.startswith("my-fleet.toml: ")
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_ranges_both_ends_must_make_a_valid_fleet():
    config = copy.deepcopy(load_scenario("gitter-2015").config)
    config["load"]["levels_ms"] = [0, 10000, 40000]
    config["ranges"] = {"load_ms": [10100, 50000]}  # 10100 ms advises what 10000 ms does
    with pytest.raises(ScenarioError, match=r"\[ranges\] at the low end of every range: \[load\] levels_ms"):
        scenario_from_dict(config, "f.toml")
    config["ranges"] = {"servers": [2, 3]}
    config["protocol"]["skew"] = [0, 1, 2]
    with pytest.raises(ScenarioError, match=r"\[protocol\] skew = \[0, 1, 2\]: skew needs one offset per server"):
        scenario_from_dict(config, "f.toml")


def test_ranges_in_a_toml_file(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text('[scenario]\nname = "f"\n[ranges]\ntimeout = [30, 60]\nskew = [-1, 1]\n')
    sc = load_scenario(str(path))
    assert sc.ranges == {"timeout": (30, 60), "skew": (-1, 1)}
    path.write_text('[scenario]\nname = "f"\n[range]\ntimeout = [30, 60]\n')
    with pytest.raises(ScenarioError, match=r"\[range\]: unknown section; allowed sections: .*ranges"):
        load_scenario(str(path))
    assert DEFAULT_STEPS >= 20  # the 2015 run is 12 steps: the default must leave room
