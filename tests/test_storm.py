"""Storm dynamics: policies, the load model, the simulation, recovery, lassos and `stormcheck storm`."""

import dataclasses
import doctest
import json
from pathlib import Path

import numpy as np
import pytest

from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.goodput import LOADS, check_curve, goodput_curve, metastable_loads
from stormcheck.checkers.recovery import mitigations, recovery, storm_table
from stormcheck.checkers.result import EXIT_CODES
from stormcheck.cli import main
from stormcheck.model.load import LoadModel, SampleWindow, StormError
from stormcheck.model.params import DESIGNS, Bounds
from stormcheck.model.policies import POLICIES, Policy
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.model.setup import Setup
from stormcheck.model.storm import refuse_unsimulated, simulate, storm_params, unsimulated
from stormcheck.properties.core import NotEncoded, Verdict
from stormcheck.properties.protocol import storm_subsides
from stormcheck.traces.export import replay_trace, run_to_trace
from stormcheck.traces.itf import Trace

# ------------------------------------------------------------------ policies


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_is_a_distribution_within_its_bounds(name):
    policy = Policy(name, retry=5, base=1, cap=30)
    prev = 0
    for attempt in range(1, 12):
        dist = policy.delays(attempt, prev)
        assert abs(sum(p for _, p, _ in dist) - 1.0) < 1e-9
        assert all(0 <= d <= max(30, policy.retry) for d, _, _ in dist)
        prev = dist[-1][2]


def test_policy_formulas():
    assert Policy("fixed", retry=5).delays(9, 0) == ((5, 1.0, 0),)
    assert [Policy("exponential", base=1, cap=30).delays(n, 0)[0][0] for n in (1, 2, 3, 5, 6, 9)] == [1, 2, 4, 16, 30, 30]
    jitter = Policy("full-jitter", base=1, cap=30).delays(3, 0)
    assert [d for d, _, _ in jitter] == list(range(0, 9))  # uniform on [0, min(30, 2^3)]
    decor = Policy("decorrelated", base=1, cap=30).delays(1, 4)
    assert [d for d, _, _ in decor] == list(range(1, 13))  # uniform on [1, 3 x 4]
    # The delay drawn is the next "previous", up to ceil(30 / 3) = 10, past which 3 x prev >= cap.
    assert [nxt for _, _, nxt in decor] == [min(d, 10) for d in range(1, 13)]
    assert Policy("decorrelated", base=1, cap=30).delays(1, 10) == Policy("decorrelated", base=1, cap=30).delays(1, 12)


def test_a_circuit_breaker_waits_its_open_period_after_enough_failures():
    breaker = Policy("exponential", base=1, cap=30, breaker_after=3, breaker_open=60)
    assert [breaker.delays(n, 0)[0][0] for n in (1, 2, 3, 4, 5, 20)] == [1, 2, 4, 60, 60, 60]
    assert breaker.saturates_at == 6  # exponential's own: past it, attempts share a group
    jitter = Policy("full-jitter", base=1, cap=30, breaker_after=2, breaker_open=45)
    assert jitter.delays(3, 0) == ((45, 1.0, 0),) and len(jitter.delays(2, 0)) == 5
    with pytest.raises(ValueError, match="breaker_open >= 1"):
        Policy("fixed", breaker_after=2, breaker_open=0)


def test_policy_rejects_bad_constants():
    with pytest.raises(ValueError, match="must be one of"):
        Policy("linear")
    with pytest.raises(ValueError, match="cap >= base"):
        Policy("exponential", base=10, cap=5)


# ---------------------------------------------------------------- load model


def test_sample_window_keeps_the_last_100_samples_of_at_least_30_ms():
    w = SampleWindow()
    w.add(29.0, 500)
    assert w.mean() is None  # under 30 ms: not recorded at all
    w.add(100.0, 9)
    assert w.mean() is None  # fewer than 10 samples: the adjuster does not act
    w.add(100.0, 1)
    assert w.mean() == 100.0
    w.add(1000.0, 100)
    assert w.count == 100 and w.mean() == 1000.0  # the old ones pushed out
    w.add(10.0, 10_000)
    assert w.mean() == 1000.0  # an idle server keeps its last slow window


def test_batch_latency_is_the_mean_of_waiting_in_line():
    m = LoadModel(channels=2, capacity=1.0, handshake_ms=0, subscribe_ms=100)
    # Three clients: they wait 0, 1 and 2 reconnects' work (0.2 s each).
    assert m.batch_latency_ms(0.0, 3) == pytest.approx(100 + 200.0)
    assert m.batch_latency_ms(1.5, 1) == m.latency_ms(1.5, 0)


# ------------------------------------------------------------ the simulation

SHORT = dict(horizon=2400, fault_at=300)


def _run(design, mode="fluid", seed=0, **changes):
    scenario = load_scenario("gitter-2015", design=design)
    storm = storm_params(scenario, **{**SHORT, **changes})
    series = simulate(scenario.params, storm, mode, seed)
    return scenario, storm, series, recovery(series, scenario.params, storm)


def test_the_2015_storm_sustains_itself_and_the_static_fleet_recovers():
    _, _, series, rec = _run("per-server")
    assert rec.verdict == Verdict.VIOLATED and rec.recovered_at is None
    end = series.fault[1]
    # Long after the fault is gone, valid sessions are still being reaped and
    # the servers' timeouts still differ from one another at times.
    assert series.reaped_valid[end + 900:].sum() > 1000
    assert (series.timeout[end:].max(axis=1) > series.timeout[end:].min(axis=1)).any()
    _, _, off, rec_off = _run("off")
    assert rec_off.verdict == Verdict.HOLDS and rec_off.seconds <= 60
    assert off.reaped_valid.sum() == 0 and off.reaped_dead.sum() > 0  # the dropped sessions do get reaped


def test_admission_control_ends_the_2015_storm():
    scenario = load_scenario("gitter-2015")
    storm = storm_params(scenario, **SHORT)
    admit = next(m for m in mitigations(storm) if m.name == "admission")
    series = simulate(scenario.params, admit.apply(storm))
    rec = recovery(series, scenario.params, admit.apply(storm))
    assert rec.verdict == Verdict.HOLDS and rec.reaped_valid == 0


def test_the_table_ranks_recovered_runs_first():
    scenario = load_scenario("gitter-2015")
    storm = storm_params(scenario, clients=5000, load=LoadModel(capacity=0.8), **SHORT)
    rows = storm_table({"per-server": scenario.params}, storm)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    verdicts = [r["recovery"].verdict for r in rows]
    held = [v == Verdict.HOLDS for v in verdicts]
    assert held == sorted(held, reverse=True)  # every recovered run ranks above every other
    assert rows[0]["mitigation"] == "admission"


def test_no_client_is_lost_or_duplicated():
    for design in ("per-server", "per-session-branch"):
        for mode in ("fluid", "sampled"):
            _, storm, series, _ = _run(design, mode, clients=2000, load=LoadModel(capacity=0.32))
            assert series.meta["clients_at_end"] == pytest.approx(storm.clients)


def test_fluid_and_sampled_agree_on_a_small_fleet():
    # The same fleet scaled down (capacity in proportion): the per-client
    # model, over seeds, against the counting abstraction. Measured: off,
    # reconnects within 2 %; per-server, sessions reaped valid within 15 %
    # of the seeds' mean, same verdicts. The test allows 5 % and 30 %.
    small = dict(clients=2000, load=LoadModel(capacity=8.0 * 2000 / 50_000))
    for design, key, tolerance in (("off", "reconnects", 0.05), ("per-server", "reaped_valid", 0.30)):
        _, _, _, fluid = _run(design, "fluid", **small)
        sampled = [_run(design, "sampled", seed, **small)[3] for seed in range(3)]
        assert {r.verdict for r in sampled} == {fluid.verdict}
        mean = np.mean([getattr(r, key) for r in sampled])
        assert abs(getattr(fluid, key) - mean) <= tolerance * mean, (design, getattr(fluid, key), mean)


def test_a_seed_reproduces_a_sampled_run():
    a = _run("per-server", "sampled", 7, clients=500, load=LoadModel(capacity=0.08))[2]
    b = _run("per-server", "sampled", 7, clients=500, load=LoadModel(capacity=0.08))[2]
    c = _run("per-server", "sampled", 8, clients=500, load=LoadModel(capacity=0.08))[2]
    assert np.array_equal(a.reconnects, b.reconnects) and np.array_equal(a.timeout, b.timeout)
    assert not np.array_equal(a.reconnects, c.reconnects)


def test_a_run_too_short_to_judge_is_inconclusive():
    # Still storming when the run ends, before W plus the settling time: no verdict.
    assert _run("per-server", horizon=1200)[3].verdict == Verdict.INCONCLUSIVE
    # Calm, but not for long enough to say it stays calm.
    assert _run("off", horizon=800)[3].verdict == Verdict.INCONCLUSIVE
    # Calm for the settling time after a quick recovery: that is enough.
    assert _run("off", horizon=1200)[3].verdict == Verdict.HOLDS


MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json").read_text())


def _simulated_checks():
    """Every manifest check (preset, stack, variant, proxy; each design) whose fleet the simulation covers."""
    for check in MANIFEST["checks"]:
        sc = load_scenario(check["scenario"], design=check["design"])
        if not unsimulated(sc.params):
            yield pytest.param(check, id=f"{check['scenario']}/{check['design']}")


@pytest.mark.parametrize("check", list(_simulated_checks()))
def test_no_simulated_valid_reap_where_the_exhaustive_engine_proves_none(check):
    # The simulation takes every protocol decision from the model's rules: where
    # the exhaustive engine proves no valid session is ever reaped, a storm of
    # many clients, a server lost for its fault's duration, reaps none either;
    # where the model finds one, the simulation's numbers are its own.
    sc = load_scenario(check["scenario"], design=check["design"])
    storm = storm_params(sc, clients=300, horizon=1500, fault_at=300)
    series = simulate(sc.params, storm, "sampled", 0)
    assert series.meta["clients_at_end"] == pytest.approx(storm.clients)
    if check["verdicts"]["no_valid_reap"] == "holds":
        assert series.reaped_valid.sum() == 0, f"{int(series.reaped_valid.sum())} valid sessions reaped"


def test_every_stack_and_design_of_the_manifest_is_simulated_or_refused_by_name():
    covered = {c.values[0]["scenario"] for c in _simulated_checks()}
    assert {"gitter-2015", "stacks/signalr", "stacks/mqtt", "stacks/socketio-4", "proxies/nginx-websockets"} <= covered
    for check in MANIFEST["checks"]:
        params = load_scenario(check["scenario"], design=check["design"]).params
        if check["scenario"] not in covered:
            with pytest.raises(NotEncoded, match=r"not encoded: .*(rollout|min_spacing|resume_window|published Faye|time_unit)"):
                refuse_unsimulated(params)


@pytest.mark.parametrize("name,feature", [
    ("rollouts/socketio-4-ping-60", r"\[rollout\]"),
    ("variants/grpc-keepalive-10", r"\[heartbeat\] min_spacing"),
    ("variants/socketio-4-recovery", r"\[heartbeat\] resume_window"),
    ("gitter-2015-published", r"after_drop = 'same-id' \(the published Faye stack\)"),
])
def test_rules_the_simulator_does_not_apply_are_refused_by_name(name, feature):
    scenario = load_scenario(name)
    with pytest.raises(NotEncoded, match=r"not encoded: .*" + feature):
        simulate(scenario.params, storm_params(scenario, **SHORT))


def test_the_staged_design_is_simulated_and_reaps_no_valid_session():
    _, _, series, rec = _run("fleet-wide-staged", clients=2000)
    assert series.reaped_valid.sum() == 0 and rec.reaped_valid == 0
    assert series.meta["clients_at_end"] == pytest.approx(2000)


def test_storm_all_designs_simulates_every_design(tmp_path, capsys):
    rc = main(["storm", "gitter-2015", "--design", "all", "--clients", "500", "--horizon", "1200", "--no-lasso",
               "--no-plot", "--json", "--quiet", "--out", str(tmp_path / "o")])
    doc = json.loads(capsys.readouterr().out)
    assert doc["not_simulated"] == {}
    assert {r["design"] for r in doc["runs"]} == set(DESIGNS)
    assert rc in (0, 1)


def test_a_stack_storm_agrees_with_check(tmp_path, capsys):
    # stacks/signalr: `check` proves no_valid_reap (538 states); the storm reaps no valid session.
    rc = main(["storm", "stacks/signalr", "--clients", "2000", "--horizon", "1500", "--no-plot", "--json", "--quiet",
               "--out", str(tmp_path / "o")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["runs"] and all(r["reaped_valid"] == 0 for r in doc["runs"]), doc["runs"]


def test_storm_of_an_unsimulated_stack_exits_inconclusive_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["storm", "variants/grpc-keepalive-10", "--quiet", "--out", str(out)]) == 3
    assert "not encoded: a minimum heartbeat spacing with strikes ([heartbeat] min_spacing)" in capsys.readouterr().err
    assert not out.exists()


def test_storm_section_is_validated():
    base = {"scenario": {"name": "s"}}
    with pytest.raises(ScenarioError, match=r"\[storm\] policy = \"linear\": must be one of"):
        scenario_from_dict({**base, "storm": {"policy": "linear"}}, "f.toml")
    with pytest.raises(ScenarioError, match=r"\[storm\] fault_at = 900 with \[storm\] horizon = 600"):
        scenario_from_dict({**base, "storm": {"fault_at": 900, "horizon": 600}}, "f.toml")
    with pytest.raises(ScenarioError, match=r"\[storm\] clientz: unknown key"):
        scenario_from_dict({**base, "storm": {"clientz": 5}}, "f.toml")
    s = scenario_from_dict({**base, "storm": {"clients": 1234, "policy": "full-jitter", "cap": 60}}, "f.toml")
    p = storm_params(s)
    assert (p.clients, p.policy.name, p.policy.cap) == (1234, "full-jitter", 60)


# ------------------------------------------------- setup deadlines (model/setup.py)

DEADLINE = "storms/setup-deadline-20"


def _deadline_run(mitigation="as configured", **changes):
    scenario = load_scenario(DEADLINE)
    storm = storm_params(scenario, **{**SHORT, **changes})
    run = next(m for m in mitigations(storm) if m.name == mitigation).apply(storm)
    series = simulate(scenario.params, run)
    return run, series, recovery(series, scenario.params, run)


def test_the_setup_module_examples_run():
    from stormcheck.model import setup as setup_module

    result = doctest.testmod(setup_module)
    assert result.attempted >= 4 and result.failed == 0


def test_a_setup_finishes_in_time_by_its_place_in_the_queue():
    m = LoadModel(channels=2, capacity=1.0, handshake_ms=0, subscribe_ms=100)  # 0.2 s of work per setup
    # Behind 1 s of queue with a 2 s deadline: the i-th finishes at 1 + 0.2 i + 0.1 s, in time up to i = 4.
    assert Setup(deadline=2).finished(10, wait_s=1.0, load=m) == 5
    assert Setup(deadline=2).finished(3, wait_s=1.0, load=m) == 3
    assert Setup(deadline=2).finished(10, wait_s=1.95, load=m) == 0
    assert Setup().finished(10, wait_s=1e6, load=m) == 10  # no deadline: the client waits
    # A queue of at most 10 setups (2 s of work), 1 s of it taken: room for 5 more.
    assert Setup(queue_limit=10).room(wait_s=1.0, load=m) == 5
    assert Setup(queue_limit=10).room(wait_s=3.0, load=m) == 0
    with pytest.raises(ValueError, match="abandoned_work 'drop': must be one of finish, cancel"):
        Setup(deadline=2, abandoned_work="drop")


def test_a_deadline_no_setup_reaches_changes_nothing():
    # The 2015 storm, with every client willing to wait longer than any queue it meets.
    scenario = load_scenario("gitter-2015")
    plain = simulate(scenario.params, storm_params(scenario, **SHORT))
    patient = simulate(scenario.params, storm_params(scenario, setup=Setup(deadline=100_000), **SHORT))
    for name in ("reconnects", "rejected", "reaped_valid", "reaped_dead", "backlog_s", "timeout"):
        assert np.array_equal(getattr(plain, name), getattr(patient, name)), name
    assert patient.abandoned.sum() == 0 and plain.reaped_valid.sum() > 0


def test_a_setup_deadline_shorter_than_the_burst_never_subsides():
    # The preset as configured: a static fleet, so no valid session is reaped;
    # the abandoned work alone keeps the queue growing long after the fault.
    run, series, rec = _deadline_run()
    end = series.fault[1]
    assert rec.verdict == Verdict.VIOLATED and rec.recovered_at is None
    assert rec.reaped_valid == 0 and series.timeout.max() == 45
    assert series.abandoned[-600:].sum() > 0 and series.reconnects[-600:].sum() == series.abandoned[-600:].sum()
    assert series.backlog_s[-1].max() > series.backlog_s[end + 600].max() > run.setup.deadline


def test_load_shedding_ends_the_setup_deadline_storm():
    run, series, rec = _deadline_run("load shedding")
    assert run.setup.queue_limit == 1523  # the setups a server clears in its clients' 20 s
    assert rec.verdict == Verdict.HOLDS and rec.seconds <= 120
    assert rec.abandoned == 0 and rec.rejected > 0  # refused at once instead of abandoned late
    assert series.backlog_s.max() <= run.setup.deadline


def test_cancelling_abandoned_work_ends_the_setup_deadline_storm():
    run, series, rec = _deadline_run("cancellation")
    assert run.setup.abandoned_work == "cancel"
    assert rec.verdict == Verdict.HOLDS and rec.abandoned > 0 and rec.rejected == 0


def test_a_client_circuit_breaker_ends_the_setup_deadline_storm():
    run, series, rec = _deadline_run("circuit breaker")
    assert (run.policy.name, run.policy.breaker_after, run.policy.breaker_open) == ("fixed", 3, 60)
    assert rec.verdict == Verdict.HOLDS and rec.abandoned > 0


def test_the_same_fleet_with_a_longer_deadline_recovers_by_itself():
    _, series, rec = _deadline_run(setup=Setup(deadline=60))
    assert rec.verdict == Verdict.HOLDS and rec.seconds <= 300
    assert 0 < rec.abandoned  # some setups still time out during the burst, and the queue drains anyway


def test_the_ranking_puts_shedding_and_cancellation_ahead_of_the_configured_deadline_storm():
    scenario = load_scenario(DEADLINE)
    rows = storm_table({"off": scenario.params}, storm_params(scenario, **SHORT))
    by = {r["mitigation"]: r for r in rows}
    assert {"load shedding", "cancellation"} <= set(by)
    assert by["as configured"]["recovery"].verdict == Verdict.VIOLATED
    assert by["load shedding"]["rank"] < by["as configured"]["rank"]
    assert by["cancellation"]["rank"] < by["as configured"]["rank"]
    # Without a deadline nothing is abandoned, so there is nothing to cancel: no such row.
    gitter = load_scenario("gitter-2015")
    assert "cancellation" not in {m.name for m in mitigations(storm_params(gitter))}


def test_sampled_runs_with_a_deadline_lose_no_client():
    scenario = load_scenario(DEADLINE)
    for mitigation in ("as configured", "load shedding"):
        storm = storm_params(scenario, clients=2000, load=LoadModel(capacity=8.0 * 2000 / 50_000), horizon=1200)
        run = next(m for m in mitigations(storm) if m.name == mitigation).apply(storm)
        series = simulate(scenario.params, run, "sampled", 3)
        assert series.meta["clients_at_end"] == pytest.approx(2000)
        assert (series.abandoned.sum() > 0) == (mitigation == "as configured")


@pytest.mark.parametrize("storm,message", [
    ({"setup_deadline": -1}, r"\[storm\] setup_deadline = -1: must be a whole number of seconds >= 0 \(0: no deadline\)"),
    ({"setup_deadline": "20s"}, r"\[storm\] setup_deadline = \"20s\": must be a whole number of seconds >= 0"),
    ({"setup_deadline": 20, "abandoned_work": "drop"},
     r"\[storm\] abandoned_work = \"drop\": must be one of \"finish\", \"cancel\""),
    ({"queue_limit": 1.5}, r"\[storm\] queue_limit = 1.5: must be a whole number >= 0"),
    ({"abandoned_work": "cancel"},
     r"\[storm\] abandoned_work = \"cancel\" with \[storm\] setup_deadline = 0: without a setup deadline"),
    ({"breaker_after": -1}, r"\[storm\] breaker_after = -1: must be a whole number >= 0 \(failed attempts in a row"),
    ({"breaker_open": 30}, r"\[storm\] breaker_open = 30 with \[storm\] breaker_after = 0: an open period needs a "
                           r"circuit breaker"),
    ({"setup_deadline": 1, "subscribe_ms": 1500},
     r"\[storm\] setup_deadline = 1 with \[storm\] subscribe_ms = 1500: a setup takes at least one subscribe"),
])
def test_bad_setup_keys_name_the_key_the_value_and_what_is_allowed(storm, message):
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict({"scenario": {"name": "s"}, "storm": storm}, "f.toml")


def test_storm_with_a_bad_setup_key_exits_2(tmp_path, capsys):
    path = tmp_path / "fleet.toml"
    path.write_text('[scenario]\nname = "fleet"\n[storm]\nsetup_deadline = 20\nabandoned_work = "drop"\n')
    assert main(["storm", str(path), "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert '[storm] abandoned_work = "drop": must be one of "finish", "cancel"' in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_setup_keys_absent_leave_the_normalised_config_as_it_was():
    config = load_scenario("gitter-2015").config["storm"]
    assert not {"setup_deadline", "abandoned_work", "queue_limit", "breaker_after", "breaker_open"} & set(config)
    assert storm_params(load_scenario("gitter-2015")).setup == Setup()
    assert storm_params(load_scenario(DEADLINE)).setup == Setup(deadline=20)


# ---------------------------------------------------- the goodput curve (checkers/goodput.py)


def _curve(loads, **changes):
    scenario = load_scenario(DEADLINE)
    storm = storm_params(scenario, **{"horizon": 1500, **changes})
    return goodput_curve(scenario.params, storm, loads=loads)


def test_a_short_setup_deadline_is_metastable_at_half_capacity():
    # At half the fleet's capacity a calm fleet stays calm, doing all it is asked;
    # the same fleet after the reconnect burst stays stormy, completing nothing.
    points = _curve((0.5, 1.25))
    by = {(p.load, p.start): p for p in points}
    calm, stormy = by[0.5, "calm"], by[0.5, "stormy"]
    assert calm.ends == "calm" and calm.goodput == pytest.approx(calm.offered, rel=0.01)
    assert stormy.ends == "stormy" and stormy.goodput < 0.01 * stormy.offered < stormy.attempted
    assert metastable_loads(points) == [0.5]
    # Past capacity a calm start collapses too: the queue outgrows the deadline.
    assert by[1.25, "calm"].ends == "stormy" and by[1.25, "calm"].goodput < by[1.25, "calm"].offered


def test_a_longer_deadline_shrinks_the_metastable_region():
    # With 60 s the burst drains at a quarter of capacity, and still not at half.
    points = _curve((0.25, 0.5), setup=Setup(deadline=60))
    by = {(p.load, p.start): p.ends for p in points}
    assert by[0.25, "stormy"] == "calm" and by[0.5, "stormy"] == "stormy"
    assert metastable_loads(points) == [0.5]


def test_the_curve_is_refused_before_any_work_where_it_cannot_be_drawn(tmp_path, capsys):
    assert main(["storm", DEADLINE, "--goodput", "--horizon", "900", "--quiet", "--no-lasso",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the goodput curve measures the last 600 s, after the fault ends at 360 s" in err and ">= 960" in err
    assert not (tmp_path / "o").exists()
    scenario = load_scenario("static-45")
    with pytest.raises(StormError, match=r"\[faults\] server_loss = 0"):
        check_curve(dataclasses.replace(scenario.params, faults=dataclasses.replace(scenario.params.faults,
                                                                                     server_loss=0)),
                    storm_params(scenario))


def test_storm_goodput_writes_the_curve(tmp_path, capsys):
    rc = main(["storm", DEADLINE, "--goodput", "--horizon", "1000", "--no-lasso", "--json",
               "--quiet", "--out", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    curve = doc["goodput"]
    # 1000 s is too short for the table's verdicts (W + the settling time), not for the curve's last 600 s.
    assert {r["verdict"] for r in doc["runs"] if r["mitigation"] == "as configured"} == {"inconclusive"}
    assert rc == 3 and curve["design"] == "off"  # the verdicts' exit code: inconclusive, as `check` has it
    assert len(curve["points"]) == 2 * len(LOADS)
    assert curve["capacity_per_s"] == pytest.approx(3 * 8.0 / 0.105, rel=1e-3)
    assert 0.5 in curve["metastable_loads"]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"setup-deadline-20.off.goodput.csv", "setup-deadline-20.off.goodput.png"} <= names
    table = (tmp_path / "setup-deadline-20.storm-table.csv").read_text().splitlines()
    assert table[0].endswith(",max_timeout,abandoned,rejected")
    shed = next(line.split(",") for line in table if ",load shedding," in line)
    assert shed[-2] == "0" and int(shed[-1]) > 0  # nothing abandoned: refused at once instead
    rows = (tmp_path / "setup-deadline-20.off.goodput.csv").read_text().splitlines()
    assert rows[0] == "load,offered_per_s,start,goodput_per_s,attempted_per_s,ends" and len(rows) == 1 + 2 * len(LOADS)


def test_the_report_draws_the_curve_where_clients_have_a_setup_deadline(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "model" / "scenarios" / f"{DEADLINE}.toml").read_text()
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(text.replace("horizon = 7200", "horizon = 1000"))
    out = tmp_path / "r"
    assert main(["report", str(fleet), "--engine", "exhaustive", "--skip", "synthesis", "--out", str(out),
                 "--quiet"]) == 0
    md = (out / "report.md").read_text()
    assert "Goodput (setups completed, not abandoned, per second)" in md
    assert "metastable at 0.1, 0.25, 0.5, 0.75, 0.9, 1 x capacity (22.9 to 228.6 setups/s)" in md
    assert (out / "img" / "setup-deadline-20.off.goodput.png").stat().st_size > 10_000


# --------------------------------------------------------------- the lasso


def test_the_exhaustive_engine_finds_the_storm_cycle_of_2015():
    scenario = load_scenario("gitter-2015")
    result = check_bfs(scenario.params, (storm_subsides,), scenario=scenario.name, budget=scenario.bounds)
    prop = result.properties[0]
    assert prop.verdict == Verdict.VIOLATED
    run = prop.run
    assert run.loop is not None and run.states[-1] == run.states[run.loop]
    cycle = run.steps[run.loop:]
    kinds = {type(e).__name__ for _, st in cycle for e in st.events}
    assert "Handshake" in kinds and "Fault" not in kinds
    assert all(srv.down == 0 for srv in run.states[run.loop].servers)
    # As data: the ITF trace keeps the loop, and replays.
    trace = Trace.from_json(json.loads(json.dumps(run_to_trace(run, scenario.params, {}).to_json())))
    assert trace.loop == run.loop
    assert replay_trace(trace, scenario.params).loop == run.loop


@pytest.mark.parametrize("design", ["off", "per-session", "fleet-wide-staged"])
def test_designs_that_never_reap_valid_sessions_have_no_storm_cycle(design):
    scenario = load_scenario("gitter-2015", design=design)
    result = check_bfs(scenario.params, (storm_subsides,), budget=scenario.bounds)
    assert result.properties[0].verdict == Verdict.HOLDS


def test_a_lasso_that_does_not_close_does_not_replay():
    scenario = load_scenario("gitter-2015")
    run = check_bfs(scenario.params, (storm_subsides,), budget=scenario.bounds).properties[0].run
    broken = dataclasses.replace(run, loop=run.loop + 1)
    trace = run_to_trace(broken, scenario.params, {})
    with pytest.raises(ValueError, match="loops back to state"):
        replay_trace(trace, scenario.params)


def test_no_lasso_in_a_partial_graph_is_inconclusive():
    scenario = load_scenario("gitter-2015", design="off")
    result = check_bfs(scenario.params, (storm_subsides,), budget=Bounds(max_states=20))
    assert result.properties[0].verdict == Verdict.INCONCLUSIVE


# ----------------------------------------------------------------- the CLI


def test_storm_command_writes_table_series_plots_and_the_lasso(tmp_path, capsys):
    code = main(["storm", "--horizon", "2400", "--out", str(tmp_path), "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # the 2015 design's storm does not subside
    assert out["lasso"]["per-server"]["verdict"] == "violated"
    assert out["lasso"]["off"]["verdict"] == "holds"
    runs = {(r["design"], r["mitigation"]): r for r in out["runs"]}
    assert runs["per-server", "as configured"]["verdict"] == "violated"
    assert runs["off", "as configured"]["verdict"] == "holds"
    names = {p.name for p in tmp_path.iterdir()}
    assert "gitter-2015.storm-table.csv" in names
    assert "gitter-2015.per-server.storm.png" in names
    assert "gitter-2015.per-server.as-configured.series.csv" in names
    assert "gitter-2015.per-server.storm_subsides.itf.json" in names
    png = (tmp_path / "gitter-2015.per-server.storm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    csv_text = (tmp_path / "gitter-2015.per-server.as-configured.series.csv").read_text()
    assert csv_text.splitlines()[0].startswith("second,reconnects,rejected,reaped_valid,reaped_dead,latency_ms_s0")
    assert len(csv_text.splitlines()) == 2401
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind


def test_storm_command_bad_input_exits_2_without_traceback(tmp_path, capsys):
    assert main(["storm", "--design", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--design 'nope': not a named design" in err and "Traceback" not in err
    assert main(["storm", "--horizon", "100", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # the scenario rule itself, naming both keys and the flag
    assert "--horizon 100" in err and "[storm] fault_at = 300" in err and "[storm] horizon = 100" in err
    assert not list(tmp_path.iterdir())


def test_check_and_replay_a_storm_lasso(tmp_path, capsys):
    assert main(["check", "--property", "storm_subsides", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "storm_subsides          eventually-always  VIOLATED" in out
    assert "Counterexample to storm_subsides" in out and "the cycle starts here" in out
    trace = tmp_path / "gitter-2015.per-server.storm_subsides.itf.json"
    assert main(["replay", str(trace)]) == 0
    assert "its cycle (from state" in capsys.readouterr().out
    # Other engines cannot decide liveness, and say so instead of guessing.
    assert main(["check", "--engine", "hypothesis", "--property", "storm_subsides", "--examples", "5",
                 "--out", str(tmp_path / "h"), "--quiet"]) == 3
    assert "use --engine exhaustive" in capsys.readouterr().out


# --------------------------------------------------------------- the manifest

_MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json").read_text())
LIVENESS = _MANIFEST["liveness"]


def test_liveness_expectations_as_reviewed():
    by = {(c["scenario"], c["design"]): c["verdict"] for c in LIVENESS}
    for design in ("per-server", "fleet-wide", "per-session-branch"):
        assert by["gitter-2015", design] == "violated"
    for design in ("off", "fleet-wide-staged", "per-session"):
        assert by["gitter-2015", design] == "holds"
    assert {by["static-45", d] for d in DESIGNS} == {"holds"}


@pytest.mark.parametrize("entry", LIVENESS, ids=lambda c: f"{c['scenario']}/{c['design']}")
def test_lasso_search_agrees_with_manifest(entry):
    scenario = load_scenario(entry["scenario"], design=entry["design"])
    result = check_bfs(scenario.params, (storm_subsides,), budget=scenario.bounds)
    prop = result.properties[0]
    assert (str(prop.verdict), result.stats["states"], result.stats["complete"]) == (
        entry["verdict"], entry["states"], entry["complete"])
    assert (len(prop.run) - prop.run.loop if prop.run is not None else None) == entry["cycle_steps"]


@pytest.mark.parametrize("argv, verdict", [
    (["stacks/signalr", "--clients", "2000", "--horizon", "1500", "--no-lasso"], "holds"),
    (["gitter-2015", "--clients", "500", "--horizon", "1200"], "violated"),  # the 2015 design's lasso
    (["static-45", "--horizon", "400", "--no-lasso"], "inconclusive"),  # 40 s after the fault: too short to tell
])
def test_storm_json_says_the_verdict_its_exit_code_says(tmp_path, capsys, argv, verdict):
    rc = main(["storm", *argv, "--no-plot", "--json", "--quiet", "--out", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == verdict and rc == EXIT_CODES[Verdict(verdict)]


def test_a_heartbeat_cycle_longer_than_the_run_is_refused_before_any_simulation(tmp_path, capsys, monkeypatch):
    # A fluid run spreads its clients over one cycle, second by second: [protocol] timeout = 10^20 once
    # filled the memory (6.6 GB in 30 s) before a line was printed; 100,000 s took minutes per run.
    import stormcheck.checkers.recovery as recovery_module
    monkeypatch.setattr(recovery_module, "simulate", lambda *a, **k: pytest.fail("a simulation started"))
    path = tmp_path / "long.toml"
    for timeout, words in ((100_000, "raise [storm] horizon (storm's --horizon) to 100,003 s or more"),
                           (10**20, "the longest run is 2,592,000 s (30 days)")):
        path.write_text(f'[scenario]\nname = "long"\n[protocol]\ntimeout = {timeout}\n[faults]\nserver_loss = 1\n'
                        f'[storm]\nclients = 100\n')
        for argv in (["storm", str(path), "--out", str(tmp_path / "s")],
                     ["report", str(path), "--engine", "exhaustive", "--skip", "synthesis", "--out",
                      str(tmp_path / "r"), "--quiet"]):
            assert main(argv) == 2, argv
            out, err = capsys.readouterr()
            assert f"long.toml: [protocol] timeout = {timeout}, interval = 1: a heartbeat cycle of" in err, err
            assert words in err and "Traceback" not in err, err
            assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    # Control: the same fleet at its own timeout, the cycle (48 s) inside a short run, is simulated.
    monkeypatch.undo()
    path.write_text('[scenario]\nname = "long"\n[faults]\nserver_loss = 1\n[storm]\nclients = 100\nhorizon = 400\n')
    rc = main(["storm", str(path), "--no-lasso", "--no-plot", "--design", "off", "--quiet", "--out",
               str(tmp_path / "s")])
    out = capsys.readouterr().out
    assert rc == 3 and "off                    1  " in out, out  # simulated; too short to tell recovery: honest 3


def test_the_lasso_header_counts_its_clients_in_words(tmp_path, capsys):
    # It said "1 client(s)".
    path = tmp_path / "small.toml"
    for clients, words in ((1, "Exhaustive lasso search, 1 client, 3 servers"),
                           (2, "Exhaustive lasso search, 2 clients, 3 servers")):  # control: the plural
        path.write_text(f'[scenario]\nname = "small"\ndesign = "off"\n[topology]\nclients = {clients}\n'
                        f'[faults]\nserver_loss = 1\n[storm]\nclients = 100\nhorizon = 400\n')
        main(["storm", str(path), "--no-plot", "--quiet", "--out", str(tmp_path / "s")])
        out = capsys.readouterr().out
        assert words in out and "client(s)" not in out, out
