"""Milliseconds where a scenario asks for them: the same finite abstraction, a finer clock.

A scenario may say ``[scenario] time_unit = "ms"``; every duration of the
fleet is then in milliseconds. Time still jumps from one deadline to the next,
so the state space does not grow with the resolution: a preset restated in
milliseconds (every duration x 1000) gives its pinned verdicts and its pinned
state count. Where one millisecond decides (a heartbeat landing 1 ms under or
over its cutoff), the verdicts differ by that millisecond, with the same
number of states.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import textwrap
from pathlib import Path

import pytest

from stormcheck.checkers import run_engine
from stormcheck.traces.run import replay
from stormcheck.cli import main
from stormcheck.model import scenario_format
from stormcheck.model.events import Reaped
from stormcheck.model.fleet import is_valid
from stormcheck.model.params import DESIGNS, Params, adjuster_advice
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.properties.protocol import PROPERTIES, by_name, no_valid_reap

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())["checks"]

# Every duration key of the scenario format, written out by hand: the
# scenario module marks its own (`_duration`), and the two lists must agree.
DURATIONS = {
    "protocol": ("timeout", "interval", "rtt", "retry", "skew"),
    "faults": ("loss_duration", "cut_duration"),
    "design": ("propagation_delay",),
    "heartbeat": ("min_spacing", "resume_window"),
    "rollout": ("timeout", "interval", "restart"),
    "rollout.phases": ("pace", "spread"),
    "proxy": ("idle_timeout",),
    "ranges": ("timeout", "interval", "rtt_max", "skew", "loss_duration", "cut_duration"),
}


def in_milliseconds(config: dict) -> dict:
    """`config` restated in milliseconds: ``time_unit = "ms"`` and every duration x 1000."""
    out = copy.deepcopy(config)
    out["scenario"]["time_unit"] = "ms"
    out.pop("storm", None)  # the storm simulation counts seconds: refused in milliseconds

    def scale(table: dict, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key in table:
                value = table[key]
                table[key] = [x * 1000 for x in value] if isinstance(value, list) else value * 1000

    for section, keys in DURATIONS.items():
        if section == "rollout.phases":
            for phase in out.get("rollout", {}).get("phases", ()):
                scale(phase, keys)
        elif section == "proxy":
            for proxy in out.get("proxy", ()):
                scale(proxy, keys)
        elif section in out:
            scale(out[section], keys)
    return out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the format


def test_the_scenario_format_marks_exactly_these_durations():
    marked = set()
    for section, spec in (*scenario_format._SPEC.items(), *scenario_format._OPTIONAL.items(),
                          ("rollout", scenario_format._ROLLOUT_KEYS),
                          ("rollout.phases", scenario_format._PHASE_SPEC), ("proxy", scenario_format._PROXY_SPEC),
                          ("judge", scenario_format._JUDGE_SPEC)):
        marked |= {(section, key) for key, (_, check) in spec.items() if getattr(check, "duration", False)}
    marked |= {("ranges", key) for key, (_, check) in scenario_format._RANGES.items()
               if getattr(check, "duration", False)}
    assert marked == {(section, key) for section, keys in DURATIONS.items() for key in keys}


def test_defaults_are_the_parameter_defaults_in_milliseconds():
    s = scenario_from_dict({"scenario": {"name": "min", "time_unit": "ms"}}, "doc")
    p, d = s.params, Params()
    assert p.unit == "ms" and d.unit == "s"
    assert (p.t0, p.i0, p.retry) == (d.t0 * 1000, d.i0 * 1000, d.retry * 1000)
    assert p.rtt == tuple(x * 1000 for x in d.rtt)
    assert (p.faults.loss_duration, p.faults.cut_duration) == (d.faults.loss_duration * 1000,
                                                               d.faults.cut_duration * 1000)
    # The normalised config says so, and reads back unchanged.
    assert s.config["scenario"]["time_unit"] == "ms" and s.config["protocol"]["timeout"] == 45000
    assert scenario_from_dict(s.config, "again") == s
    # A file that does not say keeps the config it always had.
    assert "time_unit" not in load_scenario("gitter-2015").config["scenario"]


def test_the_adjuster_keeps_whole_seconds_and_reads_latency_in_milliseconds():
    assert adjuster_advice(40_000, 45_000, 1_000, unit="ms") == (101_000, 15_000)
    assert adjuster_advice(40_000, 45, 1) == (101, 15)
    ms = scenario_from_dict(in_milliseconds(load_scenario("gitter-2015").config), "ms").params
    assert [(lv.avg_ms, lv.timeout, lv.interval) for lv in ms.levels] == [(0, 45000, 1000), (40000, 101000, 15000)]


@pytest.mark.parametrize("value", ["us", "sec", "S", 1000, True])
def test_a_bad_time_unit_names_key_value_and_what_is_allowed(value):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict({"scenario": {"name": "x", "time_unit": value}}, "doc")
    msg = str(info.value)
    assert "[scenario] time_unit = " in msg and '"s", "ms"' in msg and "every duration" in msg
    assert scenario_format._fmt(value) in msg


def test_a_bad_time_unit_exits_2_with_one_message(tmp_path, capsys):
    path = write(tmp_path, "us.toml", '[scenario]\nname = "us"\ntime_unit = "us"\n')
    rc = main(["check", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and not (tmp_path / "out").exists()
    assert err.count("\n") == 1 and '[scenario] time_unit = "us": must be one of "s", "ms"' in err


def test_mistakes_in_a_millisecond_file_are_phrased_in_milliseconds():
    for section, key, value in (("protocol", "timeout", 0), ("protocol", "rtt", [0.5]), ("faults", "cut_duration", 0)):
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict({"scenario": {"name": "x", "time_unit": "ms"}, section: {key: value}}, "doc")
        assert f"[{section}] {key}" in str(info.value) and "milliseconds" in str(info.value)
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict({"scenario": {"name": "x"}, section: {key: value}}, "doc")
        assert "seconds" in str(info.value) and "milliseconds" not in str(info.value)
    with pytest.raises(ScenarioError, match=r"\[ranges\] rtt_max = \[0, 0.5\]: the high end 0.5 must be a whole "
                                            r"number of milliseconds"):
        scenario_from_dict({"scenario": {"name": "x", "time_unit": "ms"}, "ranges": {"rtt_max": [0, 0.5]}}, "doc")


def test_a_storm_table_is_refused_in_milliseconds():
    config = in_milliseconds(load_scenario("gitter-2015").config)
    config["storm"] = copy.deepcopy(load_scenario("gitter-2015").config["storm"])
    with pytest.raises(ScenarioError, match=r'\[storm\] with \[scenario\] time_unit = "ms": the storm simulation '
                                            r"counts whole seconds"):
        scenario_from_dict(config, "doc")


# ------------------------------------------- the resolution does not grow the state space

# Every pinned check of the manifest: every preset, stack, rollout and proxy under its designs.
# A duration the format gains and `in_milliseconds` misses (or the format does not mark) shows
# here as a changed verdict or count in the presets that use it.
SCALED = [(c["scenario"], c["design"]) for c in MANIFEST if c["engine"] == "exhaustive"]


@pytest.mark.parametrize("name, design", SCALED, ids=[f"{n}/{d}" for n, d in SCALED])
def test_a_preset_in_milliseconds_gives_its_pinned_verdicts_and_state_count(name, design):
    pinned = next(c for c in MANIFEST if (c["scenario"], c["design"]) == (name, design))
    seconds = load_scenario(name, design=design)
    ms = scenario_from_dict(in_milliseconds(seconds.config), f"{name} in ms")
    assert ms.params.unit == "ms" and ms.params.t0 == 1000 * seconds.params.t0
    props = tuple(by_name(n) for n in pinned["verdicts"])
    result = run_engine("exhaustive", ms, props)
    assert {p.name: str(p.verdict) for p in result.properties} == pinned["verdicts"]
    assert result.stats["states"] == pinned["states"]
    assert result.stats["complete"] == pinned["complete"]
    violated = [p for p in result.properties if p.run is not None and p.modality == "always"]
    if violated:
        # The same counterexample, its clock a thousand times finer.
        again = run_engine("exhaustive", seconds, props)
        for prop in violated:
            twin = again.get(prop.name).run
            assert [a.kind for a in prop.run.actions] == [a.kind for a in twin.actions]
            assert prop.run.times() == [1000 * t for t in twin.times()]


# A broker that judges by the keep-alive its client declared (MQTT 3.1.1: 1.5 x K),
# stated in milliseconds: K = 10 s, so the broker's cutoff is 15000 ms of silence.
KEEPALIVE = """
    [scenario]
    name = "keepalive-{interval}"
    description = "MQTT-like keep-alive, K = 10 s (cutoff 15 s); the client pings every {interval} ms + RTT"
    design = "off"
    time_unit = "ms"
    [topology]
    servers = 2
    clients = 1
    [protocol]
    timeout = 10000
    interval = {interval}
    rtt = [0, 1000]
    retry = 1000
    [heartbeat]
    hold = "none"
    interval_from = "client"
    cutoff_from = "client"
    store = "local"
    paths = ["gc"]
    multiplier = 1.5
    [faults]
    client_crash = 1
    client_cut = 1
    cut_duration = 30000
"""


def keepalive(tmp_path: Path, interval: int) -> Path:
    return write(tmp_path, f"keepalive-{interval}.toml", KEEPALIVE.format(interval=interval))


def seconds_twin(tmp_path: Path, interval: int, rtt_max: int) -> Path:
    """The keep-alive fleet in whole seconds, the client pinging every `interval` s + RTT (0 or `rtt_max`)."""
    text = (KEEPALIVE.format(interval=interval).replace('time_unit = "ms"', 'time_unit = "s"')
            .replace("timeout = 10000", "timeout = 10").replace("rtt = [0, 1000]", f"rtt = [0, {rtt_max}]")
            .replace("retry = 1000", "retry = 1").replace("cut_duration = 30000", "cut_duration = 30"))
    return write(tmp_path, f"s-{interval}-{rtt_max}.toml", text)


# (ping interval in ms, the age its heartbeat lands at with 1000 ms of RTT, no_valid_reap,
#  and a fleet in whole seconds whose deadlines fall in the same order: interval, RTT).
ONE_MS = [
    (13999, 14999, "holds", (13, 1)),  # 1 ms under the cutoff
    (14000, 15000, "violated", (14, 1)),  # right at it: a judge reaps at age >= cutoff
    (14001, 15001, "violated", (14, 2)),  # 1 ms over
]


@pytest.mark.parametrize("interval, lands, verdict, twin", ONE_MS, ids=["1ms-under", "at", "1ms-over"])
def test_one_millisecond_decides_and_costs_no_state(tmp_path, interval, lands, verdict, twin):
    result = run_engine("exhaustive", load_scenario(str(keepalive(tmp_path, interval))), PROPERTIES)
    prop = result.get("no_valid_reap")
    assert str(prop.verdict) == verdict
    if verdict == "holds":
        assert str(result.verdict) == "holds" and result.stats["complete"]
    else:
        pre, (_, last) = prop.run.states[-2], prop.run.steps[-1]
        reaped = [e for e in last.events if isinstance(e, Reaped) and is_valid(pre, e.client)]
        assert [(e.path, e.age, e.cutoff) for e in reaped] == [("gc", lands, "15000")]
    # The search is as big as its twin's in whole seconds: the resolution adds no state.
    seconds = run_engine("exhaustive", load_scenario(str(seconds_twin(tmp_path, *twin))), PROPERTIES)
    assert [str(p.verdict) for p in seconds.properties] == [str(p.verdict) for p in result.properties]
    assert result.stats["states"] == seconds.stats["states"]


def test_the_hypothesis_engine_finds_the_millisecond_too(tmp_path):
    sc = load_scenario(str(keepalive(tmp_path, 14001)))
    got = run_engine("hypothesis", sc, (no_valid_reap,), seed=1, examples=40, steps=12).get("no_valid_reap")
    assert str(got.verdict) == "violated"
    assert any(isinstance(e, Reaped) and e.age == 15001 for e in got.run.steps[-1][1].events)


# ---------------------------------------------------------------- outputs


WHOLE_SECONDS = re.compile(r"\b\d+s\b")  # "82s": a time in seconds (server names are "s0", not "0s")


def test_an_ms_counterexample_is_told_in_milliseconds(tmp_path, capsys):
    path = keepalive(tmp_path, 14001)
    out = tmp_path / "out"
    assert main(["check", str(path), "--property", "no_valid_reap", "--out", str(out), "--quiet"]) == 1
    capsys.readouterr()
    stem = out / "keepalive-14001.off.no_valid_reap"
    timeline = Path(f"{stem}.timeline.txt").read_text()
    assert "every time above and below is in ms" in timeline
    assert "RTT 0/1000ms; retry 1000ms" in timeline
    assert "age 15001ms >= 1.5 x 10000 = 15000" in " ".join(timeline.split())  # as wrapped
    clocks = re.findall(r"^t=\s*(\d+)ms  ", timeline, re.MULTILINE)
    assert clocks and clocks[0] == "0" and "final state at t=" + clocks[-1] + "ms:" in timeline
    assert not WHOLE_SECONDS.findall(timeline)
    # The trace: its clock and durations in ms, and it says so.
    doc = json.loads(Path(f"{stem}.itf.json").read_text())
    assert doc["#meta"]["time_unit"] == "ms" and doc["#meta"]["scenario_config"]["scenario"]["time_unit"] == "ms"
    assert doc["states"][0]["UNIT"] == "ms" and doc["states"][0]["T0"] == {"#bigint": "10000"}
    now = [int(s["now"]["#bigint"]) for s in doc["states"]]
    assert now[-1] == int(clocks[-1]) and now == sorted(now)
    assert main(["replay", f"{stem}.itf.json"]) == 0
    assert "replays" in capsys.readouterr().out


def test_a_trace_in_one_unit_does_not_replay_in_the_other(tmp_path, capsys):
    from stormcheck.traces.export import replay_trace, run_to_trace
    from stormcheck.traces.run import ReplayError

    ms = load_scenario(str(keepalive(tmp_path, 14001)))
    run = run_engine("exhaustive", ms, (no_valid_reap,)).get("no_valid_reap").run
    trace = run_to_trace(run, ms.params, {})
    seconds = dataclasses.replace(ms.params, unit="s")
    with pytest.raises(ReplayError, match="recorded with UNIT = 'ms', but is replayed with its default, 's'"):
        replay_trace(trace, seconds)
    # A trace in seconds says so too, and carries no UNIT parameter (as before the unit existed).
    s = load_scenario("gitter-2015")
    trace = run_to_trace(run_engine("exhaustive", s, (no_valid_reap,)).get("no_valid_reap").run, s.params, {})
    assert trace.meta["time_unit"] == "s" and "UNIT" not in trace.params


def test_a_diagram_and_the_report_arithmetic_say_ms(tmp_path):
    from stormcheck.msc import sequence_diagram
    from stormcheck.report_sections import _arithmetic

    sc = load_scenario(str(keepalive(tmp_path, 14001)))
    prop = run_engine("exhaustive", sc, (no_valid_reap,)).get("no_valid_reap")
    svg = sequence_diagram(prop.run, sc.params)
    assert f"t={prop.run.times()[-1]}ms" in svg and "age 15001ms &gt;= 15000" in svg
    text = " ".join(_arithmetic("no_valid_reap", prop.run, sc.params))
    assert "the age it saw was 15001 ms >= 15000 ms" in text and " s " not in text


def test_a_rollout_in_ms_labels_its_paces_and_plans_in_ms():
    from stormcheck.checkers.plan import plan
    from stormcheck.report_sections import _timeline_html
    from stormcheck.traces.timeline import render_timeline

    sc = scenario_from_dict(in_milliseconds(load_scenario("rollouts/python-websockets-ping-60").config), "ms")
    # The rollout holds (its judges add the interval in use); the witness of a re-handshake is a run of it.
    prop = run_engine("exhaustive", sc, (by_name("rehandshake_reachable"),)).get("rehandshake_reachable")
    timeline = render_timeline(prop.run, sc.params)
    assert "servers to B (advice only), 1 at a time every 60000ms" in timeline
    assert "unreachable for 5000ms" in timeline
    assert not WHOLE_SECONDS.findall(timeline)
    # No reap to mark here: the report marks the last instant's lines, found by their ms clock.
    last = prop.run.times()[-1]
    marked = re.findall(r'<strong class="fatal">([^<]*)</strong>', _timeline_html(timeline, last, "ms"))
    assert marked and marked[0].startswith(f"t={last:7d}ms")
    labels = [c.label() for c in plan(sc.params, scenario=sc.name).candidates]
    assert labels and all("60000ms" in label for label in labels)


def test_a_sweep_in_ms_labels_its_duration_columns(tmp_path, capsys):
    path = keepalive(tmp_path, 14001)
    out = tmp_path / "sweep"
    rc = main(["sweep", str(path), "--grid", "interval=13999:14001:2", "--quiet", "--out", str(out)])
    assert rc == 1
    rows = (out / "keepalive-14001.sweep.csv").read_text().splitlines()
    assert rows[0].startswith("interval (ms),verdict,")
    assert [r.split(",")[:2] for r in rows[1:]] == [["13999", "holds"], ["14001", "violated"]]
    md = (out / "keepalive-14001.sweep.md").read_text()
    # The proved boundary is in milliseconds too: the client's ping lands by interval + RTT (1000 ms)
    # and the broker cuts at 1.5 x 10000 ms, so 13999 is inside and 14001 outside.
    assert "(times in ms)" in md and "proved free of valid-session reaps (symbolic engine) where" in md
    assert "I0 + rtt_max < ceil(1.5 x T0)" in md


def test_the_report_of_an_ms_scenario_says_ms(tmp_path, capsys):
    path = keepalive(tmp_path, 14001)
    rc = main(["report", str(path), "--engine", "exhaustive", "--out", str(tmp_path / "r"), "--skip", "storms",
               "--skip", "synthesis", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    md = (tmp_path / "r" / "report.md").read_text()
    assert "the age it saw was 15001 ms >= 15000 ms" in md
    assert "its next refresh would land at session age <= 15001 ms, 1 ms past the cutoff 15000 ms" in md
    assert "| 10000 / 14001 ms | 0/1000 ms |" in md
    assert not WHOLE_SECONDS.findall(md)


# ------------------------------------------- what counts seconds refuses by name


def gitter_in_ms(tmp_path: Path) -> Path:
    """The 2015 incident restated in milliseconds, as a file."""
    config = in_milliseconds(load_scenario("gitter-2015").config)
    lines = []
    for section, table in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return write(tmp_path, "gitter-ms.toml", "\n".join(lines) + "\n")


REFUSAL = 'time_unit = "ms"'


# The symbolic engine states every duration as an integer in the fleet's unit; only its ranged
# adjuster converts (a latency to whole seconds, counted in the unit). Each preset below, restated
# in milliseconds, must get the verdicts and the basis (proved / certified) it gets in seconds,
# and a certified run in milliseconds.
SYMBOLIC_MS = ["gitter-2015/per-server", "gitter-2015/off", "stacks/mqtt/off", "stacks/grpc/off",
               "stacks/socketio-4/off", "proxies/nginx-websockets/off"]


@pytest.mark.parametrize("case", SYMBOLIC_MS)
def test_the_symbolic_engine_in_milliseconds_agrees_with_seconds(case):
    name, design = case.rsplit("/", 1)
    seconds = load_scenario(name, design=design)
    ms = scenario_from_dict(in_milliseconds(seconds.config), f"{name} in ms")
    props = tuple(p for p in PROPERTIES if p.name in ("no_valid_reap", "parameter_agreement"))
    a, b = run_engine("symbolic", seconds, props, seed=0), run_engine("symbolic", ms, props, seed=0)
    for prop in props:
        s, m = a.get(prop.name), b.get(prop.name)
        assert str(m.verdict) == str(s.verdict) != "inconclusive", (prop.name, s.basis, m.basis)
        assert m.basis.split(" ")[:2] == s.basis.split(" ")[:2]  # "proved by" / "certified counterexample"
        if s.run is not None:  # the solver picks its own run (not always the shortest): it must replay
            replay(ms.params, m.run.initial, m.run.actions, m.run.states)
            if max(s.run.times()) > 0:  # a reap takes whole seconds: its clock reads thousands
                assert max(m.run.times()) >= 1000


def test_synth_thresholds_in_milliseconds_are_the_seconds_ones_times_1000(tmp_path):
    """The ranged adjuster moves T and I by whole seconds in either unit: the same latencies reap."""
    from stormcheck.checkers.z3_synth import adjuster_thresholds

    seconds = load_scenario("gitter-2015")
    ms = load_scenario(str(gitter_in_ms(tmp_path)))
    got_s = adjuster_thresholds(seconds, paths=("publish",), max_steps=16)
    got_ms = adjuster_thresholds(ms, paths=("publish",), max_steps=16)
    assert [t.load_ms for t in got_ms] == [t.load_ms for t in got_s] and got_s[0].load_ms is not None
    assert [(t.timeout, t.interval) for t in got_ms] == [(1000 * t.timeout, 1000 * t.interval) for t in got_s]
    assert got_ms[0].certified is not None and got_s[0].certified is not None


def test_a_seeded_unit_slip_in_the_ranged_adjuster_is_caught(tmp_path, monkeypatch):
    """Control: an adjuster that forgets the unit (moves T by 1 ms, not 1 s) changes the answer."""
    from stormcheck.checkers import z3_params
    from stormcheck.checkers.z3_synth import adjuster_thresholds

    monkeypatch.setattr(z3_params, "TIME_UNITS", {"s": 1, "ms": 1})
    ms = load_scenario(str(gitter_in_ms(tmp_path)))
    seconds = adjuster_thresholds(load_scenario("gitter-2015"), paths=("publish",), max_steps=16)
    slipped = adjuster_thresholds(ms, paths=("publish",), max_steps=16)
    assert [t.load_ms for t in slipped] != [t.load_ms for t in seconds]


def test_storm_refuses_milliseconds_before_it_starts(tmp_path, capsys):
    path = gitter_in_ms(tmp_path)
    out = tmp_path / "storm"
    assert main(["storm", str(path), "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert REFUSAL in err and "storm simulation" in err and not out.exists()


def test_conformance_refuses_milliseconds_before_anything_starts(tmp_path, capsys):
    # A trace, a free run and a stack scenario: each refused as bad input (2), naming the key.
    out = tmp_path / "out"
    assert main(["check", str(keepalive(tmp_path, 14001)), "--property", "no_valid_reap", "--out", str(out),
                 "--quiet"]) == 1
    capsys.readouterr()
    for argv in ([str(out / "keepalive-14001.off.no_valid_reap.itf.json")],
                 [str(gitter_in_ms(tmp_path)), "--free-run"],
                 [str(keepalive(tmp_path, 14001))]):
        assert main(["conform", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert f"[scenario] {REFUSAL}: not run" in err and "seconds" in err, err
