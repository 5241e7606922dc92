"""`stormcheck plan --engine symbolic`: each candidate order proved over the scenario's ranges, or a
certified counterexample at parameter values the solver picked (checkers/plan_z3.py).

The fleet is rollouts/phoenix-heartbeat-90 with configuration A's timeout, interval and RTT ranged.
Phoenix's client sets its heartbeat interval and the server judges by its own timeout: clients first
(as written) sends heartbeats 90 s apart to servers that still cut off at A's timeout, a reap at every
value of the range; servers first is safe at every value. A seeded flaw, ranges in which A itself is
unsafe at some values, must come back with values where it is.
"""

from __future__ import annotations

import copy
import json

import pytest

from pathlib import Path

from stormcheck.checkers.plan_z3 import with_phases, plan_symbolic
from stormcheck.cli import main
from stormcheck.model.scenario import concrete_config, load_scenario, scenario_from_dict
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.run import replay

ROOT = Path(__file__).parent.parent
RANGES = {"timeout": [40, 80], "interval": [10, 30], "rtt_max": [1, 4]}


def ranged(ranges: dict):
    cfg = copy.deepcopy(load_scenario("rollouts/phoenix-heartbeat-90").config)
    cfg["ranges"] = ranges
    return scenario_from_dict(cfg, "ranged phoenix")


def _within(values: dict, ranges: dict) -> bool:
    return set(values) == set(ranges) and all(lo <= values[k] <= hi for k, (lo, hi) in ranges.items())


def _certified_at(sc, candidate) -> None:
    """The candidate's run replays on the fleet at its drawn values, and its last step reaps a valid client."""
    order = with_phases(sc, candidate.phases)
    params = scenario_from_dict(concrete_config(order.config, candidate.drawn), "point").params
    run = candidate.result.run
    replayed = replay(params, run.initial, run.actions, run.states)
    pre, (action, last) = replayed.states[-2], replayed.steps[-1]
    assert not no_valid_reap.check(params, pre, action, last)


@pytest.mark.slow
def test_the_safe_order_is_proved_over_the_ranges_and_the_unsafe_one_gets_solver_picked_values():
    sc = ranged(RANGES)
    result = plan_symbolic(sc)
    written, servers_first = result.candidates
    assert written.written and written.phases[0].side == "clients"
    assert written.verdict is Verdict.VIOLATED and written.result.basis.startswith("certified counterexample")
    assert _within(written.drawn, RANGES)
    _certified_at(sc, written)
    assert servers_first.verdict is Verdict.HOLDS and servers_first.phases[0].side == "servers"
    assert servers_first.result.basis.startswith("proved by an inductive invariant")
    assert "timeout in [40, 80], interval in [10, 30], rtt_max in [1, 4]" in servers_first.result.basis
    assert result.proposal is servers_first and result.verdict is Verdict.HOLDS


@pytest.mark.slow
def test_an_order_unsafe_for_part_of_the_range_comes_back_with_values_where_it_is():
    """Servers first, but A itself reaps where a heartbeat interval + RTT reaches the timeout: the solver must
    pick such values (and none of the safe ones), and the run at them is replayed."""
    ranges = {"timeout": [40, 80], "interval": [10, 60], "rtt_max": [1, 4]}
    sc = ranged(ranges)
    result = plan_symbolic(sc)
    assert result.verdict is Verdict.VIOLATED and result.proposal is None
    for candidate in result.candidates:
        assert candidate.verdict is Verdict.VIOLATED and _within(candidate.drawn, ranges)
        _certified_at(sc, candidate)
    servers_first = next(c for c in result.candidates if c.phases[0].side == "servers")
    v = servers_first.drawn
    assert v["interval"] + v["rtt_max"] >= v["timeout"], v  # only where A itself is unsafe


@pytest.mark.slow
def test_plan_engine_symbolic_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    text = (ROOT / "model" / "scenarios" / "rollouts" / "phoenix-heartbeat-90.toml").read_text()
    path.write_text(text + "\n[ranges]\n" + "".join(f"{k} = {v}\n" for k, v in RANGES.items()))
    assert main(["plan", str(path), "--engine", "symbolic", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["verdict"] for c in doc["candidates"]] == ["violated", "holds"]
    assert _within(doc["candidates"][0]["drawn"], RANGES) and "drawn" not in doc["candidates"][1]
    assert doc["proposal"].startswith("1. servers")
    assert main(["plan", str(path), "--steps", "8"]) == 2  # an option of the symbolic engine only
    assert "--engine symbolic" in capsys.readouterr().err
    wide = {**RANGES, "interval": [10, 60]}  # configuration A itself reaps where interval + RTT >= timeout
    path.write_text(text + "\n[ranges]\n" + "".join(f"{k} = {v}\n" for k, v in wide.items()))
    assert main(["plan", str(path), "--engine", "symbolic", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.count("certified counterexample") == 2 and "at the parameter values shown beside it" in out


def test_a_symbolic_plan_of_a_file_without_ranges_does_not_speak_of_ranges(tmp_path, capsys):
    """B's timeout 60 s under Phoenix's 90 s interval: every order reaps, at the file's own values (no [ranges]:
    the solver picked none). B is unsafe by itself: the symbolic plan says so, with B's own certified
    counterexample, as the exhaustive plan does (text and --json alike)."""
    path = tmp_path / "unsafe.toml"
    text = (ROOT / "model" / "scenarios" / "rollouts" / "phoenix-heartbeat-90.toml").read_text()
    assert "[ranges]" not in text
    path.write_text(text.replace("timeout = 180", "timeout = 60"))
    assert main(["plan", str(path), "--engine", "symbolic", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "in the ranges" not in out and "scenario's ranges" not in out, out
    # One counterexample per order, and B's own (in its sentence and its timeline's heading).
    assert out.count("certified counterexample of") == 4 and "at the scenario's point values (it has no [ranges]" in out
    assert "no order is safe at the scenario's point values" in out
    assert "configuration B (timeout 60, interval 90) is unsafe by itself, with no rollout at all: " \
           "no_valid_reap is violated" in out, out
    assert "(certified counterexample of 3 steps at the scenario's point values" in out
    assert "s1 liveness timer reaps valid c0" in out  # B's counterexample, as a timeline
    assert main(["plan", str(path), "--engine", "symbolic", "--json"]) == 1
    b = json.loads(capsys.readouterr().out)["b_alone"]
    assert b["verdict"] == "violated" and b["counterexample"]["steps"] == 3 and b["says"] in out


@pytest.mark.slow
def test_the_symbolic_and_exhaustive_plans_agree_on_every_shipped_rollout():
    """Wherever the solver decides a candidate order it agrees with the complete search at the point, and it
    decides every one (25 orders over the nine rollouts); one it could not decide would have to name its
    counterexample to induction."""
    from stormcheck.checkers.plan import plan
    from stormcheck.model.scenario import shipped_names

    decided, total = 0, 0
    for name in shipped_names("rollouts"):
        sc = load_scenario(name)
        exhaustive = plan(sc.params, scenario=sc.name, budget=sc.bounds)
        symbolic = plan_symbolic(sc)
        assert [c.phases for c in symbolic.candidates] == [c.phases for c in exhaustive.candidates]
        for sym, exh in zip(symbolic.candidates, exhaustive.candidates):
            total += 1
            if sym.verdict is Verdict.INCONCLUSIVE:
                assert "counterexample to induction" in sym.result.basis, (name, sym.result.basis)
                continue
            decided += 1
            assert sym.verdict is exh.verdict, (name, sym.label(), sym.result.basis)
    assert total == 25 and decided == 25, (decided, total)


def test_a_release_first_is_proved_once_moved_servers_tie_the_other_clients_down(monkeypatch):
    """ActionCable's clients first (a release over 120 s, then the servers): safe, as the exhaustive plan
    finds at the point. The proof needs the lemma that the other clients hold the clients phase back only
    while every server is at A; without it, the invariant lets a moved fleet start a session at A again."""
    import stormcheck.checkers.z3_proof as proof
    from stormcheck.checkers.plan import orders_to_check
    from stormcheck.checkers.plan_z3 import decide_order

    sc = load_scenario("rollouts/actioncable-beat-10")
    clients_first = with_phases(sc, next(o for o in orders_to_check(sc.params) if o[0].side == "clients"))
    result, _, _ = decide_order(clients_first, max_steps=4)
    assert result.verdict is Verdict.HOLDS and result.basis.startswith("proved by an inductive invariant")
    name = "while other clients hold the clients phase back, every server is at A"
    monkeypatch.setattr(proof, "ROLLOUT_LEMMAS", {k: v for k, v in proof.ROLLOUT_LEMMAS.items() if k != name})
    result, _, _ = decide_order(clients_first, max_steps=4)
    assert result.verdict is Verdict.INCONCLUSIVE and "counterexample to induction" in result.basis
    # Told as clients and servers, as `check --engine symbolic` tells it, not as the records' repr.
    assert "State(" not in result.basis and " on s" in result.basis and "judging by T=" in result.basis


@pytest.mark.slow
def test_a_symbolic_plan_proves_configuration_b_alone_over_the_ranges_it_keeps(tmp_path, capsys):
    """Configuration A reaps at part of the wide ranges, so no order is safe; B (180 s against 90 s) is proved
    safe alone over the range of RTTs, not over A's ranged timeout and interval, which B does not run."""
    path = tmp_path / "wide.toml"
    text = (ROOT / "model" / "scenarios" / "rollouts" / "phoenix-heartbeat-90.toml").read_text()
    wide = {**RANGES, "interval": [10, 60]}
    path.write_text(text + "\n[ranges]\n" + "".join(f"{k} = {v}\n" for k, v in wide.items()))
    assert main(["plan", str(path), "--engine", "symbolic", "--json"]) == 1
    b = json.loads(capsys.readouterr().out)["b_alone"]
    assert b["verdict"] == "holds" and b["basis"].startswith("proved by an inductive invariant"), b
    assert "rtt_max in [1, 4]" in b["basis"] and "timeout in" not in b["basis"], b
    assert b["says"].startswith("configuration B (timeout 180, interval 90) alone is safe")


def test_b_alone_that_the_solver_cannot_encode_is_said_to_be_unavailable(monkeypatch):
    from stormcheck.checkers import plan_z3
    from stormcheck.plan_cmd import b_alone_diagnosis
    from stormcheck.properties.core import NotEncoded

    def refuse(*args, **kwargs):
        raise NotEncoded("symbolic engine", "[heartbeat] something")

    monkeypatch.setattr(plan_z3, "decide_order", refuse)
    said = b_alone_diagnosis(load_scenario("rollouts/phoenix-heartbeat-90"), "symbolic")
    assert said["verdict"] == "inconclusive"
    assert said["says"].startswith("whether configuration B alone is safe is not available under --engine symbolic "
                                   "(not encoded: [heartbeat] something"), said
