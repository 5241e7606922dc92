"""The stored 2015 incident trace: produced by the tool, and it still replays."""

import json
from pathlib import Path

from stormcheck.cli import main
from stormcheck.model.scenario import load_scenario
from stormcheck.model.events import QueueDropped, Reaped
from stormcheck.model.fleet import is_valid
from stormcheck.traces.export import replay_trace
from stormcheck.traces.itf import Trace

HERE = Path(__file__).resolve().parent.parent / "counterexamples"
STEM = "gitter-2015.per-server.no_valid_reap"
TRACE = HERE / f"{STEM}.itf.json"
TIMELINE = HERE / f"{STEM}.timeline.txt"


def test_incident_trace_replays_and_ends_in_a_valid_reap():
    trace = Trace.read(TRACE)
    assert trace.meta["property"] == "no_valid_reap" and trace.meta["verdict"] == "violated"
    scenario = load_scenario("gitter-2015")
    run = replay_trace(trace, scenario.params)
    pre, (action, step) = run.states[-2], run.steps[-1]
    reaped = [e for e in step.events if isinstance(e, Reaped) and is_valid(pre, e.client)]
    assert reaped, "the last step must destroy a valid client's session"
    # The 2015 shape: a server lost connectivity, another raised its T, a third reaped by its own T.
    kinds = [a.kind for a in run.actions]
    assert "lose" in kinds and "load" in kinds
    reaper = reaped[0].server
    raised = next(a.server for a in run.actions if a.kind == "load")
    assert reaper != raised and reaped[0].timeout < scenario.params.levels[-1].timeout


def test_replay_command_accepts_the_stored_trace(capsys):
    assert main(["replay", str(TRACE)]) == 0
    assert "replays" in capsys.readouterr().out


def test_stored_files_are_what_the_tool_writes_today(tmp_path):
    assert main(["check", "gitter-2015", "--property", "no_valid_reap", "--out", str(tmp_path), "--quiet"]) == 1
    fresh = json.loads((tmp_path / TRACE.name).read_text())
    stored = json.loads(TRACE.read_text())
    for doc in (fresh, stored):
        doc["#meta"].pop("version", None)
    assert fresh == stored, "regenerate: bin/stormcheck check gitter-2015 --property no_valid_reap --out counterexamples"
    assert (tmp_path / TIMELINE.name).read_text() == TIMELINE.read_text()


# The published stack (faye-redis 0.2.0, stock client): the trace the
# conformance harness drives through real Faye + Redis.
PUBLISHED_STEM = "gitter-2015-published.per-server.no_message_loss"
PUBLISHED = HERE / f"{PUBLISHED_STEM}.itf.json"


def test_published_trace_replays_and_ends_in_a_lost_message():
    trace = Trace.read(PUBLISHED)
    assert trace.meta["property"] == "no_message_loss" and trace.meta["verdict"] == "violated"
    scenario = load_scenario("gitter-2015-published")
    assert scenario.params.publish_expired == "drop-queue"
    run = replay_trace(trace, scenario.params)
    pre, (action, step) = run.states[-2], run.steps[-1]
    # The publish path drops a valid client's queue and leaves its session where it was.
    assert action.kind == "publish" and step.state == pre
    lost = [e for e in step.events if isinstance(e, QueueDropped) and is_valid(pre, e.client)]
    assert lost and lost[0].server != pre.clients[lost[0].client].server
    assert not any(isinstance(e, Reaped) for e in step.events)


def test_published_trace_is_what_the_tool_writes_today(tmp_path):
    args = ["check", "gitter-2015-published", "--property", "no_message_loss", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 1
    fresh = json.loads((tmp_path / PUBLISHED.name).read_text())
    stored = json.loads(PUBLISHED.read_text())
    for doc in (fresh, stored):
        doc["#meta"].pop("version", None)
    assert fresh == stored, "regenerate: bin/stormcheck " + " ".join(args[:4]) + " --out counterexamples"
    timeline = HERE / f"{PUBLISHED_STEM}.timeline.txt"
    assert (tmp_path / timeline.name).read_text() == timeline.read_text()
    assert main(["replay", str(PUBLISHED)]) == 0


def _plain_numbers(value, path="$"):
    if isinstance(value, bool) or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [path]
    if isinstance(value, list):
        return [p for i, x in enumerate(value) for p in _plain_numbers(x, f"{path}[{i}]")]
    return [p for k, x in value.items() for p in _plain_numbers(x, f"{path}.{k}")]


def test_stored_traces_write_every_integer_as_a_bigint():
    """ADR-015 as revised on 2023-09-14: integers are {"#bigint": "..."}, never JSON numbers."""
    for path in sorted(HERE.glob("*.itf.json")):
        doc = json.loads(path.read_text())
        found = [p for i, s in enumerate(doc["states"])
                 for p in _plain_numbers({k: v for k, v in s.items() if k != "#meta"}, f"states[{i}]")]
        assert found == [], f"{path.name}: JSON numbers at {found[:3]}"
        assert doc["states"][0]["SERVERS"] == {"#bigint": "3"}
