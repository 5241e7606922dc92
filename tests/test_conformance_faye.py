"""The real Faye + Redis stack as the judge: manifest "conformance" entries, controls and refusals.

Each Faye entry of counterexamples/manifest.json is run against the real
software (Redis, Faye 1.4.3 NodeAdapters on faye-redis 0.2.0 or the destroying
variant, stock Faye clients) traces at scale 0.1 (1 model s = 100 ms; client steps
matched within the trace's RTT range + 2 model s), free runs at 0.05. ``real`` must be what the
real run shows and ``model`` what the model says now. Under CI (CI=true) a
missing component fails; elsewhere these tests skip, naming what to install.
"""

import json
import os
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.cli import main
from stormcheck.conform_cmd import STACK
from stormcheck.conformance import procs
from stormcheck.conformance.faye_fleet import missing_components
from stormcheck.conformance.faye_free import free_run
from stormcheck.conformance.faye_trace import drive, load_trace, refusal
from stormcheck.model.scenario import load_scenario
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import by_name

# Real servers on a scaled clock, or real time: run alone (bin/test's second part).
pytestmark = pytest.mark.realtime

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "counterexamples/manifest.json").read_text())
ENTRIES = [e for e in MANIFEST.get("conformance", []) if e["stack"] == STACK]
SCALE = 0.1  # traces: 1 model s = 100 ms, so a loaded machine's latency stays well inside the tolerance
FREE_SCALE = 0.05  # free runs: judged from logs afterwards, not against a timetable
FREE_SECONDS = 400
JUDGED = ("no_valid_reap", "no_message_loss")  # the properties a real run can show


def _need_stack():
    missing = missing_components()
    if missing:
        msg = "the real Faye stack is missing: install " + ", ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def _model_verdict(entry) -> str:
    if entry["trace"]:
        rc = main(["replay", str(ROOT / entry["trace"])])
        return "violated" if rc == 0 else f"no longer replays (exit {rc})"
    scenario = load_scenario(str(ROOT / entry["scenario"]) if entry["scenario"].endswith(".toml")
                             else entry["scenario"], design=entry["design"])
    props = [by_name(name) for name in JUDGED]
    result = run_engine("exhaustive", scenario, props)
    verdicts = {r.verdict for r in result.properties}
    return "violated" if Verdict.VIOLATED in verdicts else "holds" if verdicts == {Verdict.HOLDS} else "inconclusive"


def _id(e):
    return f"{e['run']}-{Path(e['trace'] or e['scenario']).name}-{e['design']}-{e['engine']}"


def test_manifest_has_the_faye_entries_the_issue_asks_for():
    kinds = {(e["run"], e["engine"], e["design"], e["real"]) for e in ENTRIES}
    assert ("trace", "destroying", "per-server", "violated") in kinds  # the 2015 trace reproduces
    assert ("trace", "destroying", "fleet-wide", "violated") in kinds  # the post-mortem's design too
    assert ("trace", "published", "per-server", "violated") in kinds  # the published engine loses messages
    assert ("free-run", "published", "per-server", "violated") in kinds
    controls = [e for e in ENTRIES if e["run"] == "free-run" and e["real"] == "holds"]
    assert len(controls) >= 2  # a static fleet; every server on the same T
    for e in ENTRIES:
        assert set(e) == {"stack", "engine", "scenario", "design", "run", "trace", "model", "real"}


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_conformance_entry(entry):
    assert _model_verdict(entry) == entry["model"]
    _need_stack()
    if entry["run"] == "trace":
        doc = load_trace(ROOT / entry["trace"])
        assert refusal(doc) is None
        result = drive(doc, entry["trace"], entry["engine"], SCALE)
        real = "violated" if result.reproduced else "holds"
        detail = result.divergence and (result.divergence.why, result.divergence.model, result.divergence.real)
        assert real == entry["real"], detail
        if entry["real"] == "holds":  # it ran, and diverged at a step, not at the start
            assert result.divergence is not None and result.divergence.index > 1
    else:
        path = entry["scenario"]
        scenario = load_scenario(str(ROOT / path) if path.endswith(".toml") else path, design=entry["design"])
        r = free_run(scenario, entry["engine"], FREE_SECONDS, seed=1, scale=FREE_SCALE)
        assert r.publishes > 50 and r.delivered > 0  # traffic really flowed
        real = "holds" if r.clean else "violated"
        assert real == entry["real"], (r.valid_reaps[:5], r.lost[:5])


def _refused_variants(tmp_path):
    base = json.loads((ROOT / "counterexamples/gitter-2015.per-server.no_valid_reap.itf.json").read_text())
    out = {}
    for design in ("per-session-branch",):
        rc = main(["check", "gitter-2015", "--design", design, "--property", "no_valid_reap", "--quiet",
                   "--out", str(tmp_path)])
        assert rc == 1
        out[design] = tmp_path / f"gitter-2015.{design}.no_valid_reap.itf.json"

    def variant(name, change):
        doc = json.loads(json.dumps(base))
        change(doc)
        path = tmp_path / f"{name}.itf.json"
        path.write_text(json.dumps(doc))
        out[name] = path

    variant("staged", lambda d: d["#meta"].update(design="fleet-wide-staged"))
    variant("per-session", lambda d: d["#meta"].update(design="per-session"))
    variant("skew", lambda d: d["#meta"]["scenario_config"]["protocol"].update(skew=[0, 3]))
    variant("stack", lambda d: d["#meta"]["scenario_config"].update(heartbeat={"stack": "socketio-4"}))
    variant("advice-only", lambda d: d["states"][4]["events"][0].update(what="advice"))
    return out


def test_every_refused_trace_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(procs.Processes, "start", lambda self, *a, **k: started.append(a) or pytest.fail("started"))
    for name, path in _refused_variants(tmp_path).items():
        capsys.readouterr()
        assert main(["conform", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert "cannot express" in err and "\n" == err[-1] and "Traceback" not in err, (name, err)
    assert started == []


def test_bad_arguments_are_exit_2(tmp_path, capsys):
    trace = str(ROOT / "counterexamples/gitter-2015.per-server.no_valid_reap.itf.json")
    assert main(["conform", trace, "--scale", "0"]) == 2
    assert "--scale" in capsys.readouterr().err
    (tmp_path / "x.itf.json").write_text("{")
    assert main(["conform", str(tmp_path / "x.itf.json")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["conform", "no-such-preset", "--free-run", "--seconds", "30"]) == 2


def test_missing_stack_is_exit_3_with_what_to_install(monkeypatch, capsys):
    import stormcheck.conformance.faye_fleet as fleet
    monkeypatch.setattr(fleet.shutil, "which", lambda name: None)
    trace = str(ROOT / "counterexamples/gitter-2015.per-server.no_valid_reap.itf.json")
    assert main(["conform", trace]) == 3
    assert "redis-server (apt-get install redis-server)" in capsys.readouterr().err


def _first(events, who, ev, after=float("-inf"), **fields):
    return next((e for e in events if e.who == who and e.ev == ev and e.at > after
                 and all(e.data.get(k) == v for k, v in fields.items())), None)


def _wait(fleet, seconds):
    import time
    time.sleep(seconds * fleet.scale)


def test_what_the_real_stack_does_differently_shows_in_its_logs():
    """docs/protocol.md's list of real behaviours, each seen on a live fleet (scale 0.1, T=10, I=2, retry 5)."""
    _need_stack()
    from stormcheck.conformance.faye_fleet import Fleet

    with Fleet(servers=2, engine="published", scale=0.1, timeout=10, interval=2, retry=5, gc_period=15) as f:
        f.start_client("c0", "s0")
        _wait(f, 3)
        f.origin = __import__("time").time()
        # 1. A socket drop: the stock client retries its pending connect on the SAME id after `retry`.
        f.switchboard.route("c0", "s1")
        f.switchboard.lose_server("s0")
        _wait(f, 8)
        ev = f.events()
        down = _first(ev, "c0", "down", after=0)
        assert down is not None
        again = _first(ev, "s1", "connect", after=down.at, client=down.data["id"])
        assert again is not None, "the session survives a drop: the same id connects on s1"
        assert 4 <= again.at - down.at <= 8, again.at - down.at  # retry 5 model s
        assert _first(ev, "c0", "send", after=down.at, channel="/meta/handshake") is None
        # 2. A 401 (s1 lowers its T below the session's age): the client waits the interval, then handshakes.
        f.control("s1", "advice", timeout=0.05, interval=0.4)  # T = 0.5, I = 4 model s
        _wait(f, 16)
        ev = f.events()
        refused = _first(ev, "c0", "401", after=again.at)
        assert refused is not None
        hs = _first(ev, "c0", "send", after=refused.at, channel="/meta/handshake")
        # The 401 carries no interval: the client waits the last one it was advised, then handshakes.
        advised = [e.data["advice"]["interval"] / 1000 / f.scale for e in ev if e.who == "c0" and e.ev == "reply"
                   and e.at < refused.at and (e.data.get("advice") or {}).get("interval") is not None][-1]
        assert advised >= 2 and hs is not None
        assert 0.8 * advised <= hs.at - refused.at <= advised + 2, (advised, hs.at - refused.at)
        # 3. Every server sweeps on its own GC timer (15 model s here); the lock only stops overlaps.
        gcs = {e.who for e in ev if e.ev == "gc"}
        assert gcs == {"s0", "s1"}
