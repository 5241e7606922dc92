"""Certified storms: every valid reap of a small sampled storm replays through the model (checkers/certify.py)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from stormcheck.checkers.certify import certify
from stormcheck.checkers.recovery import storm_run
from stormcheck.cli import main
from stormcheck.model import storm as storm_module
from stormcheck.model import fleet, storm_tuner
from stormcheck.model.events import Reaped
from stormcheck.model.params import Params
from stormcheck.model.scenario import load_scenario, scenario_from_dict
from stormcheck.model.storm import simulate, storm_params, unsimulated
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.export import replay_trace
from stormcheck.traces.itf import Trace

MANIFEST = json.loads((Path(__file__).resolve().parent.parent / "counterexamples" / "manifest.json").read_text())


def _small(scenario, clients: int, horizon: int = 1500):
    """The scenario's [storm] fleet scaled down to `clients`, its servers' capacity in proportion."""
    full = storm_params(scenario)
    load = dataclasses.replace(full.load, capacity=full.load.capacity * clients / full.clients)
    return storm_params(scenario, clients=clients, horizon=horizon, fault_at=300, load=load)


def _certified(name, design, clients, seed=0, horizon=1500):
    sc = load_scenario(name, design=design)
    storm = _small(sc, clients, horizon)
    series = simulate(sc.params, storm, "sampled", seed, record=True)
    return sc, series, certify(sc, series)


def _simulated_checks():
    """Every (preset or stack, design) of the manifest whose fleet the simulation covers, once."""
    seen = set()
    for check in MANIFEST["checks"]:
        key = (check["scenario"], check["design"])
        if key in seen or unsimulated(load_scenario(check["scenario"], design=check["design"]).params):
            continue
        seen.add(key)
        yield pytest.param(check, id=f"{check['scenario']}/{check['design']}")


@pytest.mark.parametrize("check", list(_simulated_checks()))
def test_every_simulated_valid_reap_replays_in_the_model(check):
    # 60 clients for 1500 s, the server lost at t=300 for its fault's duration,
    # page reloads as the scenario has them, seed 0. Every valid reap the
    # run reports is a run of the model ending in no_valid_reap; where the
    # exhaustive engine proves none can happen, the run reports none.
    sc, series, cert = _certified(check["scenario"], check["design"], 60)
    assert cert.valid_reaps == round(series.reaped_valid.sum())
    assert cert.certified == cert.valid_reaps, cert.summary()
    if check["verdicts"]["no_valid_reap"] == "holds":
        assert cert.valid_reaps == 0


def test_the_2015_storm_yields_certified_reaps():
    sc, series, cert = _certified("gitter-2015", "per-server", 300)
    assert cert.valid_reaps > 100 and cert.certified == cert.valid_reaps, cert.summary()
    reaps = [r for c in cert.certificates for r in c.reaps]
    assert min(r["t"] for r in reaps) >= 300  # nothing valid is reaped before the fault
    assert {r["server"] for r in reaps} == {0, 1, 2} and {r["path"] for r in reaps} >= {"publish"}
    # The feedback loop: clients reaped again after they reconnected.
    assert max(len(c.reaps) for c in cert.certificates) >= 2
    params = load_scenario("gitter-2015").params
    for c in cert.certificates:
        pre, (action, step) = c.run.states[-2], c.run.steps[-1]
        assert not no_valid_reap.check(params, pre, action, step)  # the model's own violation
        # Each reap was judged at an age past the model's cutoff for the judging server's level.
        assert all(r["step"] is not None and r["age"] >= 72 for r in c.reaps)


def test_recording_leaves_the_sampled_run_as_it_is():
    sc = load_scenario("gitter-2015")
    storm = _small(sc, 200)
    a = simulate(sc.params, storm, "sampled", 3, record=True)
    b = simulate(sc.params, storm, "sampled", 3)
    for name in ("reconnects", "rejected", "reaped_valid", "reaped_dead", "latency_ms", "timeout", "interval"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert b.history is None and a.history is not None


# ---------------------------------------------------------------- seeded bugs


def test_a_reap_one_second_early_is_not_certified(monkeypatch):
    # The simulator's reapers cut one second short of the cutoff the model states.
    monkeypatch.setattr(storm_tuner._Table, "reap_age",
                        lambda self, path, level, in_use=None: Params.reap_age(self, path, level, in_use) - 1)
    _, _, cert = _certified("gitter-2015", "per-server", 100)
    assert cert.valid_reaps > 0 and cert.certified == 0 and cert.refuted > 0, cert.summary()
    assert "which the model's guard does not allow then" in cert.summary()


def test_a_heartbeat_held_longer_than_the_model_holds_it_is_not_certified(monkeypatch):
    # The simulator holds every refreshed connect one second longer than its server's T.
    step = storm_module._Sim.step

    def held_longer(self, client, action):
        after, events = step(self, client, action)
        if action.kind == "arrive" and after.phase == "held":
            after = after._replace(timer=after.timer + 1)
        return after, events

    monkeypatch.setattr(storm_module._Sim, "step", held_longer)
    _, _, cert = _certified("gitter-2015", "per-server", 100)
    assert cert.valid_reaps > 0 and cert.certified == 0, cert.summary()
    assert "after its arrive, the simulation's client is" in cert.summary()


# ------------------------------------------------------------ page reloads


def test_a_session_a_reload_began_at_another_level_is_named_not_counted_certified():
    # A reload is the user, not the protocol: the model's clients begin at
    # the base level, so a session a reload began on a raised server has no
    # model run. It is counted apart, by name, never as certified.
    sc = load_scenario("gitter-2015", design="per-server")
    row = storm_run("per-server", sc.params, _small(sc, 100), "full-jitter", mode="sampled", certify_as=sc)
    cert = row["certification"]
    assert cert.inexpressible > 0 and cert.refuted == 0
    assert cert.certified + cert.inexpressible == cert.valid_reaps == round(row["series"].reaped_valid.sum())
    assert "not expressible in the model, first:" in cert.summary()
    assert all("after a page reload, a setup given up" in c.problem for c in cert.certificates if c.problem)


# ------------------------------------------------------------------ the CLI


def test_a_reload_onto_a_server_at_the_base_level_starts_a_model_run_of_its_own():
    # After a reload the model run begins at the client's first step that
    # leaves one of the model's initial clients, the servers' earlier moves
    # taken at the outset; one replayed from its ITF trace, as read from disk.
    sc = load_scenario("gitter-2015", design="per-session-branch")
    series = simulate(sc.params, _small(sc, 60), "sampled", 0, record=True)
    cert = certify(sc, series, traces=True)
    assert cert.certified == cert.valid_reaps > 0, cert.summary()
    midway = [c for c in cert.certificates if c.trace.meta["sim_time_at_start"] > 0]
    assert midway
    for c in midway:
        params = scenario_from_dict(c.trace.meta["scenario_config"], "certificate").params
        assert c.run.initial in fleet.initial_states(params)
        assert any(isinstance(e, Reaped) and e.client == 0 for e in c.run.steps[-1][1].events)
    stored = Trace.from_json(json.loads(json.dumps(midway[0].trace.to_json())))
    params = scenario_from_dict(stored.meta["scenario_config"], "certificate").params
    assert replay_trace(stored, params).states == midway[0].run.states


def test_storm_certify_writes_traces_that_replay(tmp_path, capsys):
    toml = (Path(__file__).resolve().parent.parent / "model" / "scenarios" / "gitter-2015.toml").read_text()
    toml = toml.replace("capacity = 8.0", f"capacity = {8.0 * 60 / 50_000}")
    (tmp_path / "small.toml").write_text(toml)
    rc = main(["storm", str(tmp_path / "small.toml"), "--design", "per-server", "--mode", "sampled", "--clients", "60",
               "--horizon", "1500", "--no-lasso", "--no-plot", "--json", "--quiet", "--out", str(tmp_path / "o"),
               "--jobs", "2"])  # workers certify, the parent writes the traces
    doc = json.loads(capsys.readouterr().out)
    configured = next(r for r in doc["runs"] if r["mitigation"] == "as configured")
    # 1,140 s after the fault is too short to see a recovery, not its absence: the storm is still
    # going past the fault's end + W, so violated, exit 1 (every run's reaps certified or named, below).
    assert configured["verdict"] == "violated" and rc == 1
    assert "did not recover within W" in configured["basis"]
    assert configured["reaped_valid"] > 0
    for run in doc["runs"]:
        c = run["certification"]
        assert c["valid_reaps"] == run["reaped_valid"] and c["not_certified"] == 0
        assert c["certified"] + c["not_expressible"] == c["valid_reaps"]
    traces = configured["certification"]["traces"]
    assert traces and all(Path(t).parent == tmp_path / "o" / "certified" for t in traces)
    assert main(["replay", traces[0]]) == 0
    assert "its last step violates no_valid_reap" in capsys.readouterr().out


@pytest.mark.parametrize("flags, named", [
    (["--certify"], "--certify: only used by --mode sampled"),
    (["--no-certify"], "--no-certify: only used by --mode sampled"),
    (["--seed", "5"], "--seed 5: only used by --mode sampled"),
])
def test_a_flag_the_fluid_mode_would_ignore_is_refused(tmp_path, capsys, flags, named):
    # Refused up front, naming the flag and when it applies; nothing written.
    assert main(["storm", *flags, "--clients", "100", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert named in err and "the mode is fluid" in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("design", ["off", "per-server"])
def test_a_storm_with_abandoned_setups_is_certified_or_named_and_recording_leaves_it_as_it_is(design):
    # storms/setup-deadline-20 scaled down: clients give up setups at their 20 s deadline and
    # reconnect. Giving up is the client's own timer, not a protocol step: a history after it
    # begins anew, like one after a page reload. No reap may be refuted by the model.
    sc = load_scenario("storms/setup-deadline-20", design=design)
    storm = _small(sc, 120, horizon=1200)
    plain = simulate(sc.params, storm, "sampled", 0)
    series = simulate(sc.params, storm, "sampled", 0, record=True)
    for name in ("abandoned", "reconnects", "rejected", "reaped_valid"):
        assert np.array_equal(getattr(plain, name), getattr(series, name)), name
    assert series.abandoned.sum() > 0  # the deadline bites in this run
    cert = certify(sc, series)
    assert cert.refuted == 0 and cert.certified + cert.inexpressible == cert.valid_reaps, cert.summary()


def test_a_certification_with_nothing_to_certify_names_no_folder(tmp_path, capsys):
    # No valid reap under design off: no trace, and no folder named that does not exist.
    argv = ["storm", "gitter-2015", "--design", "off", "--mode", "sampled", "--clients", "30", "--horizon", "2000",
            "--no-lasso", "--no-plot", "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "no trace written: no valid reap was certified." in out and "certified/" not in out
    assert not (tmp_path / "o" / "certified").exists()
