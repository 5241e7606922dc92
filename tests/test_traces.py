"""Tests for runs as ITF traces (traces/export.py) and as timelines (traces/timeline.py).

The runs come from the real model: a tiny breadth-first search over
`fleet.successors` finds the 2015 story (a server loss, a reconnect to s1,
s1's adjuster raising T to 101, s2's publish path reaping the still-valid
client by its own T = 45). No state is written out by hand.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest

from stormcheck.model import fleet
from stormcheck.model.events import Reaped
from stormcheck.model.params import DESIGNS, Faults, Level, Params, adjuster_advice
from stormcheck.model.scenario import load_scenario
from stormcheck.model.state import State
from stormcheck.traces.export import replay_trace, run_to_trace, trace_params, trace_to_run_inputs
from stormcheck.traces.itf import Trace, plain_integers
from stormcheck.traces.run import ReplayError, Run
from stormcheck.traces.timeline import WIDTH, render_timeline

META = {
    "scenario": "gitter-2015-mini",
    "scenario_config": {"servers": 3, "clients": 1, "faults": {"server_loss": 1}},
    "design": "per-server",
    "property": "no_valid_reap",
    "engine": "bfs",
    "seed": 0,
    "verdict": "violated",
    "version": "0.1.0",
}


def _params(design: str = "per-server") -> Params:
    high = Level(40_000, *adjuster_advice(40_000, 45, 1))
    return Params(
        servers=3,
        clients=1,
        levels=(Level(0, 45, 1), high),
        design=DESIGNS[design],
        faults=Faults(server_loss=1),
    )


def _bfs(params: Params, initial: State, goal) -> Run:
    """The shortest run from `initial` whose last step satisfies `goal(pre, action, step)`."""
    parent: dict[State, tuple | None] = {initial: None}
    queue = deque([initial])
    while queue:
        state = queue.popleft()
        for action, st in fleet.successors(params, state):
            if goal(state, action, st):
                steps = [(action, st)]
                while parent[state] is not None:
                    state, a, s = parent[state]
                    steps.append((a, s))
                return Run(initial, tuple(reversed(steps)))
            if st.state not in parent:
                parent[st.state] = (state, action, st)
                queue.append(st.state)
    raise AssertionError("no run reaches the goal")


def _valid_reap_by_s2(pre, action, st) -> bool:
    return action.kind == "publish" and action.server == 2 and any(
        isinstance(e, Reaped) and fleet.is_valid(pre, e.client) for e in st.events
    )


@pytest.fixture(scope="module")
def params() -> Params:
    return _params()


@pytest.fixture(scope="module")
def run(params) -> Run:
    initial = fleet.initial_states(params)[0]
    assert initial.clients[0].server == 0
    return _bfs(params, initial, _valid_reap_by_s2)


@pytest.fixture()
def written(tmp_path, run, params):
    path = tmp_path / "cex.itf.json"
    run_to_trace(run, params, META).write(path)
    return path


def _tampered(path, edit) -> Trace:
    """The trace at `path` with `edit` applied to its JSON states (a copy; `path` is kept)."""
    obj = plain_integers(json.loads(path.read_text()))  # plain numbers, as traces before ADR-015's revision
    edit(obj["states"])
    out = path.with_name("tampered.itf.json")
    out.write_text(json.dumps(obj))
    return Trace.read(out)


# ---------------------------------------------------------------- the run itself


def test_run_is_the_2015_story(run):
    kinds = [str(a) for a in run.actions]
    assert kinds[0] == "lose(server=0)"
    assert "reconnect(client=0, server=1)" in kinds
    assert "load(server=1, value=1)" in kinds
    assert kinds[-1] == "publish(server=2)"


def test_times_are_the_sum_of_ticks(run, params):
    times = run.times()
    assert times[0] == 0 and len(times) == len(run) + 1
    for i in range(len(times)):
        assert times[i] == sum(a.value for a in run.actions[:i] if a.kind == "tick")
    trace = run_to_trace(run, params, META)
    assert [s["now"] for s in trace.states] == times
    assert times[-1] > 0


# ---------------------------------------------------------------- ITF export


def test_round_trip_write_read_replay(run, params, written):
    trace = Trace.read(written)
    assert replay_trace(trace, params) == run
    initial, actions, states = trace_to_run_inputs(trace)
    assert initial == run.initial and actions == run.actions and states == run.states
    # The in-memory trace decodes exactly like the one read back.
    assert trace_to_run_inputs(run_to_trace(run, params, META)) == (initial, actions, states)


def test_trace_layout(run, params, written):
    raw = json.loads(written.read_text())
    assert raw["states"][0]["SERVERS"] == {"#bigint": "3"}  # ADR-015 (2023-09-14): every integer a #bigint
    assert list(raw["states"][-1]["now"]) == ["#bigint"]
    obj = plain_integers(raw)
    meta = obj["#meta"]
    assert meta["format"] == "ITF" and meta["description"]
    assert {k: meta[k] for k in META} == META
    assert obj["vars"][:3] == ["now", "action", "events"]
    assert obj["vars"][3:] == list(State._fields)
    first, last = obj["states"][0], obj["states"][-1]
    assert set(obj["params"]) <= set(first) and not set(obj["params"]) & set(last)
    assert first["SERVERS"] == 3 and first["T0"] == 45 and first["DESIGN"] == "per-server"
    assert first["action"] == {"kind": "init", "client": -1, "server": -1, "value": -1}
    assert first["events"] == []
    assert isinstance(first["clients"][0]["session"], dict)  # a session is a record
    reaped = last["events"][0]
    assert reaped["event"] == "Reaped" and reaped["path"] == "publish" and reaped["cutoff"] == "72"
    assert last["clients"][0]["session"] == []  # no session: the empty sequence
    assert "loop" not in obj


def test_loop_and_params_survive(tmp_path):
    from stormcheck.checkers.bfs import check_bfs
    from stormcheck.properties.protocol import storm_subsides

    params = load_scenario("gitter-2015").params
    lasso = check_bfs(params, (storm_subsides,)).properties[0].run  # a real lasso: it closes
    path = tmp_path / "lasso.itf.json"
    run_to_trace(lasso, params, {}).write(path)
    trace = Trace.read(path)
    assert trace.loop == lasso.loop and trace.params == tuple(trace_params(params))
    assert replay_trace(trace, params) == lasso


def test_a_loop_that_does_not_close_is_refused(run, params):
    trace = run_to_trace(Run(run.initial, run.steps, loop=2), params, {})
    with pytest.raises(ReplayError, match="loops back to state 2"):
        replay_trace(trace, params)


def test_writing_is_deterministic(tmp_path, run, params):
    a, b = tmp_path / "a.itf.json", tmp_path / "b.itf.json"
    run_to_trace(run, params, META).write(a)
    run_to_trace(run, params, dict(reversed(list(META.items())))).write(b)
    assert json.loads(a.read_text()) == json.loads(b.read_text())
    run_to_trace(run, params, META).write(b)
    assert a.read_bytes() == b.read_bytes()


def test_meta_must_be_json(run, params):
    with pytest.raises(TypeError, match="JSON"):
        run_to_trace(run, params, {"seed": object()})


# ---------------------------------------------------------------- replay failures


def test_tampered_state_names_first_diverging_step(run, params, written):
    k = 3

    def edit(states):
        states[k]["clients"][0]["timer"] += 1
        states[k + 2]["losses_left"] += 1  # a later divergence must not win

    with pytest.raises(ReplayError) as err:
        replay_trace(_tampered(written, edit), params)
    assert err.value.index == k and str(err.value).startswith(f"step {k}:")


def test_tampered_clock_and_events(run, params, written):
    def edit(states):
        states[4]["now"] += 5
        states[6]["losses_left"] += 1

    with pytest.raises(ReplayError, match=r"step 4: expected now = \d+ .* stores now = \d+"):
        replay_trace(_tampered(written, edit), params)

    last = len(run)

    def edit_events(states):
        states[last]["events"][0]["age"] += 1

    with pytest.raises(ReplayError) as err:
        replay_trace(_tampered(written, edit_events), params)
    assert err.value.index == last and "Reaped(" in str(err.value) and "stores" in str(err.value)


def test_disabled_action_names_its_step(run, params, written):
    # A publish by s1 right after the loss reaps nobody, so it is not enabled.
    def edit(states):
        states[2]["action"] = {"kind": "publish", "client": -1, "server": 1, "value": -1}

    with pytest.raises(ReplayError) as err:
        replay_trace(_tampered(written, edit), params)
    assert err.value.index == 2 and "not enabled" in str(err.value)


def test_other_params_are_refused_at_step_0(run, params, written):
    with pytest.raises(ReplayError) as err:
        replay_trace(Trace.read(written), _params("off"))
    assert err.value.index == 0 and "DESIGN" in str(err.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s[3]["clients"][0].__setitem__("timer", "soon"), r"state 3: field 'clients' at clients\[0\]\.timer"),
        (lambda s: s[2]["clients"][0].__setitem__("session", [1]), r"state 2: field 'clients' at clients\[0\]\.session"),
        (lambda s: s[1]["servers"][0].pop("hot"), r"state 1: field 'servers' at servers\[0\]"),
        (lambda s: s[0]["action"].__setitem__("kind", "tick"), r"state 0: field 'action'.*'init'"),
        (lambda s: s[1]["events"].append({"event": "Nope"}), r"state 1: field 'events'\[\d+\].*unknown event"),
    ],
)
def test_decode_errors_name_state_and_field(written, edit, message):
    with pytest.raises(ValueError, match=message):
        trace_to_run_inputs(_tampered(written, edit))


def test_missing_var_is_explained(run, params):
    trace = run_to_trace(run, params, META)
    states = tuple({k: v for k, v in s.items() if k != "now"} for s in trace.states)
    stripped = Trace(trace.meta, trace.vars[1:], states, trace.params)
    with pytest.raises(ValueError, match="lacks the var 'now'"):
        trace_to_run_inputs(stripped)


# ---------------------------------------------------------------- timeline


def test_timeline_explains_the_violation(run, params):
    text = render_timeline(run, params, title="gitter 2015, per-server")
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[0] == "== gitter 2015, per-server =="
    violation = [i for i, line in enumerate(lines) if "VIOLATION" in line]
    assert len(violation) == 1
    v = violation[0]
    assert lines[v].startswith(f"t={run.times()[-1]:4d}s  VIOLATION (step {len(run)}): ")
    assert "s2 publish path reaps valid c0: age 101s >= 1.6 x 45 = 72" in lines[v]
    explanation = " ".join(" ".join(lines[v : v + 6]).split())  # undo the wrapping
    assert "c0 was valid: s1 holds its connect until t=" in explanation
    assert "s2 judges by its own T=45 while s1 advised T=101 I=15" in explanation
    assert "next refresh comes at age <= 118s" in explanation  # 101 + I 15 + RTT 2
    assert "c0 re-handshakes on s1 (new id, re-subscribes); advised T=45 I=1" in text
    assert "s1 load 40000 ms: adjuster sets T=101 I=15 (advice and reaper)" in text
    assert "T/I: s0 45/1  s1 101/15  s2 45/1" in text
    assert "FAULT s0 loses connectivity for 60s" in text
    assert "tick" not in text
    # Every event line starts with the clock, and the clock never goes back.
    clocks = [int(line[2:6]) for line in lines if line.startswith("t=")]
    assert clocks == sorted(clocks) and clocks[-1] == run.times()[-1]
    # It ends with the server table at the final state.
    table = lines[lines.index(f"final state at t={run.times()[-1]}s:") :]
    assert [line.split()[0] for line in table[2:5]] == ["s0", "s1", "s2"]
    assert table[2].split()[1:4] == ["T=45", "I=1", "45"]
    assert table[3].split()[1:4] == ["T=101", "I=15", "101"]
    assert text.endswith("\n")


def test_timeline_focus_and_loop(run, params):
    class Focus:
        name, modality, verdict, basis = "no_valid_reap", "always", "violated", "complete search"

    text = render_timeline(Run(run.initial, run.steps, loop=1), params, focus=Focus())
    assert "property no_valid_reap (always): violated - complete search" in text
    assert "-- the cycle starts here (state 1) --" in text
    assert "returns to state 1" in text


def test_timeline_is_deterministic(run, params, written):
    replayed = replay_trace(Trace.read(written), params)
    assert render_timeline(run, params, "x") == render_timeline(replayed, params, "x")
    assert render_timeline(run, params, "x").encode() == render_timeline(run, params, "x").encode()


def test_reap_of_dead_client_is_not_a_violation():
    # A crashed client's session is reaped: correct, and shown without the marker.
    params = Params(servers=2, clients=1, design=DESIGNS["off"], faults=Faults(client_crash=1))
    initial = fleet.initial_states(params)[0]

    def dead_reap(pre, action, st):
        return any(isinstance(e, Reaped) and not fleet.is_valid(pre, e.client) for e in st.events)

    dead = _bfs(params, initial, dead_reap)
    text = render_timeline(dead, params)
    assert "VIOLATION" not in text
    assert "FAULT c0 crashes" in text and "reaps c0 (crashed)" in text
    assert replay_trace(run_to_trace(dead, params, {}), params) == dead


def test_timeline_prints_the_true_age_past_the_cap():
    # The model folds ages past `age_cap` (91 s here) into the cap. A crashed
    # client's session left for 180 s is 180 s old in the timeline, not 91.
    params = Params(servers=2, clients=1, design=DESIGNS["off"], faults=Faults(client_crash=1))
    assert params.age_cap == 91
    state, steps = fleet.initial_states(params)[0], []

    def take(kind, server=-1):
        nonlocal state
        action, st = next((a, st) for a, st in fleet.successors(params, state)
                          if a.kind == kind and (server < 0 or a.server == server))
        steps.append((action, st))
        state = st.state

    take("crash")
    for _ in range(4):
        take("tick")
    take("gc", server=0)
    run = Run(fleet.initial_states(params)[0], tuple(steps))
    assert run.times()[-1] == 180
    assert run.states[-2].clients[0].session.age == params.age_cap  # saturated in the model
    text = render_timeline(run, params)
    assert "s0 GC reaps c0 (crashed): age 180s >= 2 x 45 = 90 (past it since t=90)" in text, text
    assert "age 91s" not in text
    assert replay_trace(run_to_trace(run, params, {}), params) == run


def test_sequence_diagram_shows_the_true_age_too():
    from stormcheck.msc import sequence_diagram

    params = Params(servers=2, clients=1, design=DESIGNS["off"], faults=Faults(client_crash=1))
    state, steps = fleet.initial_states(params)[0], []
    for kind in ("crash", "tick", "tick", "tick", "tick", "gc"):
        action, st = next((a, st) for a, st in fleet.successors(params, state) if a.kind == kind)
        steps.append((action, st))
        state = st.state
    svg = sequence_diagram(Run(fleet.initial_states(params)[0], tuple(steps)), params)
    assert "age 180s &gt;= 90" in svg and "age 91s" not in svg


# ---------------------------------------------------------------- traces written before `State.rollout`
# Until `State.rollout` had its own field, `tuner_timer` held both the fleet
# tuner's propagation countdown and a rollout's marker. Such traces still load.

DATA = Path(__file__).resolve().parent / "data"
# Written by `stormcheck check rollouts/faye-timeout-101 --property no_valid_reap`
# before the split: its tuner_timer goes 0, RUNNING (-2), then a 120 s countdown.
BEFORE_SPLIT = DATA / "faye-timeout-101.off.no_valid_reap.before-rollout-var.itf.json"


def _without_rollout_var(trace: Trace, tmp_path) -> Trace:
    """`trace` as written before `State.rollout`: the rollout's marker in ``tuner_timer``."""
    obj = json.loads(json.dumps(trace.to_json()))
    obj["vars"].remove("rollout")
    for state in obj["states"]:
        marker = state.pop("rollout")
        if marker != {"#bigint": "0"}:
            state["tuner_timer"] = marker
    out = tmp_path / "before.itf.json"
    out.write_text(json.dumps(obj))
    return Trace.read(out)


def test_a_rollout_trace_written_before_the_split_reads_and_replays(tmp_path):
    old = Trace.read(BEFORE_SPLIT)
    assert "rollout" not in old.vars
    assert "GC_PERIOD" in old.params  # a parameter since removed: not a reason to refuse the trace
    assert [s["tuner_timer"] for s in old.states][:3] == [0, -2, 120]
    scenario = load_scenario("rollouts/faye-timeout-101")
    run = replay_trace(old, scenario.params)
    assert [st.rollout for st in run.states][:3] == [0, -2, 120]
    assert all(st.tuner_timer == 0 for st in run.states)
    # The same run as the tool writes it today, and as the old writer would have.
    fresh = run_to_trace(run, scenario.params, old.meta)
    assert "rollout" in fresh.vars and "tuner_timer" in fresh.vars
    assert trace_to_run_inputs(_without_rollout_var(fresh, tmp_path)) == trace_to_run_inputs(old)


def test_a_tuner_trace_written_before_the_split_keeps_its_countdown(tmp_path):
    params = _params("fleet-wide")
    params = replace(params, design=replace(params.design, name="fleet-wide-delayed", propagation_delay=30))
    run = _bfs(params, fleet.initial_states(params)[0], lambda pre, a, st: a.kind == "deadline")
    assert any(st.tuner_timer > 0 for st in run.states)
    old = _without_rollout_var(run_to_trace(run, params, META), tmp_path)
    assert "rollout" not in old.vars
    assert replay_trace(old, params) == run
