"""Synthesis (checkers/z3_synth.py): thresholds and regions, cross-checked by the other engines.

The thresholds are not compared with numbers written here: each is checked
(1) against the adjuster's own formula (`params.adjuster_advice`): at the
threshold a refresh that comes T + I + RTT after the last one is past the
path's cutoff at the base level, one millisecond below it is not; (2) with
the exhaustive engine at both points (complete searches: violated at the
threshold, holds below); (3) with the Hypothesis engine at both points
(violated at the threshold; nothing found below).
"""

from __future__ import annotations

import copy
import math

import pytest
import z3

from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.hypo import check_hypothesis
from stormcheck.checkers.z3_bmc import make_solver
from stormcheck.checkers.z3_proof import prove
from stormcheck.checkers.z3_synth import SynthesisError, adjuster_thresholds, path_property, safe_region
from stormcheck.model.events import Reaped
from stormcheck.model.params import adjuster_advice
from stormcheck.model.scenario import concrete_config, load_scenario, scenario_from_dict
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import no_valid_reap
from stormcheck.traces.run import replay


@pytest.fixture(scope="module")
def gitter():
    return load_scenario("gitter-2015")


@pytest.fixture(scope="module")
def thresholds(gitter):
    return {t.path: t for t in adjuster_thresholds(gitter)}


def at(scenario, load_ms: int):
    return scenario_from_dict(concrete_config(scenario.config, {"load_ms": load_ms}), "test")


def _paths(path: str) -> tuple[str, ...]:
    return (path,)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["publish", "existence", "gc"])
def test_threshold_agrees_with_the_adjuster_formula(gitter, thresholds, path):
    t = thresholds[path]
    p = gitter.params
    mult = p.multiplier(path)
    cutoff = math.ceil(mult * p.t0)
    latest = lambda ms: sum(adjuster_advice(ms, p.t0, p.i0)) + p.rtt_max  # noqa: E731 - T + I + RTT
    assert t.load_ms is not None and t.certified is not None
    assert latest(t.load_ms) >= cutoff > latest(t.load_ms - 1)
    assert (t.timeout, t.interval) == adjuster_advice(t.load_ms, p.t0, p.i0)
    # The certified run replays at the threshold and its last step is that path's reap.
    point = at(gitter, t.load_ms)
    run = replay(point.params, t.certified.initial, t.certified.actions, t.certified.states)
    assert not path_property(_paths(path)).check(point.params, run.states[-2], *run.steps[-1])


@pytest.mark.slow
@pytest.mark.parametrize("path", ["publish", "gc"])
def test_threshold_agrees_with_the_exhaustive_engine(gitter, thresholds, path):
    x = thresholds[path].load_ms
    prop = path_property(_paths(path))
    outside = check_bfs(at(gitter, x).params, (prop,)).get(prop.name)
    inside = check_bfs(at(gitter, x - 1).params, (prop,))
    assert outside.verdict is Verdict.VIOLATED
    assert inside.get(prop.name).verdict is Verdict.HOLDS and inside.stats["complete"]


@pytest.mark.slow
def test_publish_threshold_agrees_with_the_hypothesis_engine(gitter, thresholds):
    x = thresholds["publish"].load_ms
    prop = path_property(("publish",))
    # seed 6: the run at the threshold turns up in 282 examples (seeds 0-7: 5 of 8 find it within 300)
    outside = check_hypothesis(at(gitter, x), (prop,), seed=6, examples=300, steps=30).get(prop.name)
    inside = check_hypothesis(at(gitter, x - 1), (prop,), seed=6, examples=300, steps=30).get(prop.name)
    assert outside.verdict is Verdict.VIOLATED
    assert inside.verdict is Verdict.INCONCLUSIVE  # random search finds nothing; it proves nothing either


def test_thresholds_need_an_adjusting_server_judged_design(gitter):
    with pytest.raises(SynthesisError, match="adjusting design"):
        adjuster_thresholds(gitter.with_design("per-session"))


def _ranged(design: str, ranges: dict):
    config = copy.deepcopy(load_scenario("gitter-2015").config)
    config["scenario"]["design"] = design
    config["ranges"] = ranges
    return scenario_from_dict(config, "test")


RANGES = {"timeout": [10, 120], "interval": [0, 30], "rtt_max": [0, 10]}


def test_region_of_a_static_fleet_is_proved_and_tight():
    """The region over timeout x interval x RTT: proved inside, a certified reap just outside,
    and the exhaustive engine agrees at both neighbouring points."""
    sc = _ranged("off", RANGES)
    region = safe_region(sc)
    assert region.constraint is not None and region.conclusive and not region.whole_range_safe
    assert region.outside is not None and region.inside is not None and region.outside_run is not None
    assert sum(region.outside[k] != region.inside[k] for k in RANGES) == 1  # neighbours
    out = scenario_from_dict(concrete_config(sc.config, region.outside), "test")
    inside = scenario_from_dict(concrete_config(sc.config, region.inside), "test")
    assert check_bfs(out.params, (no_valid_reap,)).get("no_valid_reap").verdict is Verdict.VIOLATED
    inside_result = check_bfs(inside.params, (no_valid_reap,))
    assert inside_result.get("no_valid_reap").verdict is Verdict.HOLDS and inside_result.stats["complete"]


def test_region_of_the_2015_design_needs_the_largest_hold_below_the_smallest_cutoff():
    # Seeded bug: per-server is not safe by level; only the global bound is proved.
    region = safe_region(_ranged("per-server", {"timeout": [30, 120], "interval": [0, 10]}), max_steps=4)
    assert region.constraint is not None and region.constraint.startswith("max T + max I")
    assert any(r.startswith("for every level") for r in region.rejected)


def test_a_safe_range_is_safe_whole():
    region = safe_region(_ranged("per-session", {"timeout": [40, 600], "interval": [0, 10], "rtt_max": [0, 5]}))
    assert region.whole_range_safe and region.conclusive and region.outside is None


def test_fleet_sizes_are_not_region_parameters():
    sc = _ranged("off", {"clients": [1, 3]})
    with pytest.raises(SynthesisError, match="any number of clients"):
        safe_region(sc)


def _ranged_stack(name: str, ranges: dict):
    config = copy.deepcopy(load_scenario(f"stacks/{name}").config)
    config["ranges"] = ranges
    return scenario_from_dict(config, "test")


GRPC_RANGES = {"timeout": [3600, 7220], "interval": [1, 600], "rtt_max": [0, 5]}


def _last_reaps(scenario, region) -> list[str]:
    """The reaper paths of the certified run's last step, replayed at the point outside."""
    point = scenario_from_dict(region.outside_config, "test")
    run = replay(point.params, region.outside_run.initial, region.outside_run.actions, region.outside_run.states)
    return [e.path for e in run.steps[-1][1].events if isinstance(e, Reaped)]


def test_grpc_region_has_the_minimum_spacing_as_its_lower_bound():
    """gRPC closes a connection after too many pings closer than min_spacing (300 s here): the region
    is bounded below by the spacing (a ping lands I + RTT after the previous one), the run just outside
    ends in that close, and the point just inside is proved."""
    sc = _ranged_stack("grpc", GRPC_RANGES)
    region = safe_region(sc)
    assert region.constraint == "I0 + rtt_min >= 300 and I0 + rtt_max < ceil(1 x T0)"
    assert region.conclusive and not region.whole_range_safe
    # rtt is [0, 2]: the smallest RTT choice is 0, so the edge is at I0 = 299, its neighbour at 300.
    assert region.outside["interval"] == 299 and region.inside == {**region.outside, "interval": 300}
    assert _last_reaps(sc, region) == ["spacing"]
    inside = scenario_from_dict(concrete_config(sc.config, region.inside), "test")
    assert prove(inside.params, "no_valid_reap", lambda ctx: make_solver(ctx=ctx)).status == "proved"


FAYE_RANGES = {"timeout": [10, 120], "interval": [0, 30], "rtt_max": [0, 10]}


def test_faye_stack_region_counts_the_retry_on_the_old_id():
    """The published Faye stack: a client whose socket dropped retries its connect on the same id
    after the retry delay, and the existence check judges the session then. The region adds the retry
    to the refresh age; the run just outside is that check, and the exhaustive engine agrees at both
    neighbouring points."""
    sc = _ranged_stack("faye", FAYE_RANGES)
    region = safe_region(sc)
    assert region.constraint == "T0 + I0 + rtt_max + retry 5 + rtt_max < ceil(1.6 x T0)"
    assert "T0 + I0 + rtt_max < ceil(1.6 x T0)" in region.rejected  # without the retry: not sufficient
    assert region.conclusive and sum(region.outside[k] != region.inside[k] for k in FAYE_RANGES) == 1
    assert _last_reaps(sc, region) == ["existence"]
    out = scenario_from_dict(concrete_config(sc.config, region.outside), "test")
    inside = scenario_from_dict(concrete_config(sc.config, region.inside), "test")
    assert check_bfs(out.params, (no_valid_reap,)).get("no_valid_reap").verdict is Verdict.VIOLATED
    inside_result = check_bfs(inside.params, (no_valid_reap,))
    assert inside_result.get("no_valid_reap").verdict is Verdict.HOLDS and inside_result.stats["complete"]


STACK_RANGES = {"timeout": [5, 300], "interval": [1, 120], "rtt_max": [0, 10]}


def _ranged_preset(name: str, ranges: dict, judge: dict | None = None):
    """Preset `name` over `ranges`; `judge`: keys replaced in its first [[judge]] table."""
    config = copy.deepcopy(load_scenario(name).config)
    config["ranges"] = ranges
    if judge:
        config["judge"][0].update(judge)
    return scenario_from_dict(config, "test")


def _proved_inside(sc, region) -> bool:
    inside = scenario_from_dict(concrete_config(sc.config, region.inside), "test")
    return prove(inside.params, "no_valid_reap", lambda ctx: make_solver(ctx=ctx)).status == "proved"


def test_proxy_region_is_bounded_by_its_idle_timeout():
    """nginx closes a connection silent for 60 s (proxy_read_timeout), and the server's pings reset
    its timer: over intervals up to 120 s the region is bounded by the proxy, the run just outside
    ends in nginx's cut, and the point just inside is proved."""
    sc = _ranged_preset("proxies/nginx-websockets", STACK_RANGES)
    region = safe_region(sc)
    assert region.constraint == "I0 + rtt_max < 60 (nginx's idle timeout) and I0 + rtt_max < ceil(1 x T0 + 1 x I0)"
    assert "I0 + rtt_max < ceil(1 x T0 + 1 x I0)" in region.rejected  # the servers' form alone: not sufficient
    assert region.conclusive and region.outside["interval"] + region.outside["rtt_max"] == 60
    assert sum(region.outside[k] != region.inside[k] for k in STACK_RANGES) == 1
    assert _last_reaps(sc, region) == ["proxy"]
    assert "a valid session is cut by the proxy nginx (certified run of" in region.text()
    assert _proved_inside(sc, region)


def test_a_point_past_the_proxy_timeout_is_its_own_point_outside():
    # nginx-websockets-ping-90: pings every 90 s through a 60 s idle timeout.
    sc = load_scenario("proxies/nginx-websockets-ping-90")
    region = safe_region(sc)
    assert region.constraint == "I0 + rtt_max < 60 (nginx's idle timeout) and I0 + rtt_max < ceil(1 x T0 + 1 x I0)"
    assert not region.some_inside and region.outside_run is not None
    assert _last_reaps(sc, region) == ["proxy"]
    assert "which the scenario's values do not satisfy" in region.text()


def test_a_client_judge_no_earlier_than_the_servers_adds_no_bound():
    # Engine.IO 4's client gives up after pingInterval + pingTimeout, as the server does: the
    # servers' form covers it, and the proof (whose bad steps include the client's expire) agrees.
    region = safe_region(_ranged_preset("stacks/socketio-4", STACK_RANGES))
    assert region.constraint == "I0 + rtt_max < ceil(1 x T0 + 1 x I0)" and region.conclusive


def test_an_earlier_client_judge_bounds_the_region():
    # A client that waits pingTimeout only (interval_multiplier 0) cuts before the server would:
    # the region gets its bound, and the run just outside ends in the client's own judge.
    sc = _ranged_preset("stacks/socketio-4", STACK_RANGES, {"interval_multiplier": 0})
    region = safe_region(sc)
    assert region.constraint == ("I0 + rtt_max < ceil(1 x T0) (client's judge) and "
                                 "I0 + rtt_max < ceil(1 x T0 + 1 x I0)")
    assert region.conclusive and sum(region.outside[k] != region.inside[k] for k in STACK_RANGES) == 1
    assert _last_reaps(sc, region) == ["client"]
    assert _proved_inside(sc, region)


@pytest.mark.parametrize("name, ranges, judge", [
    ("stacks/grpc", GRPC_RANGES, None), ("stacks/faye", FAYE_RANGES, None),
    ("proxies/nginx-websockets", STACK_RANGES, None), ("stacks/socketio-4", STACK_RANGES, {"interval_multiplier": 0}),
])
def test_a_bound_one_past_the_proved_one_is_rejected(monkeypatch, name, ranges, judge):
    # Seeded bugs: every candidate again with each of its bounds one unit looser
    # (a spacing one below the minimum, a refresh one past the cutoff).
    import stormcheck.checkers.z3_synth as synth

    real = synth._candidates

    def with_loose(enc):
        out = real(enc)
        return out + [("loose: " + text, z3.And([a < b + 1 for a, b in pairs]), pairs) for text, _, pairs in out]

    monkeypatch.setattr(synth, "_candidates", with_loose)
    region = safe_region(_ranged_preset(name, ranges, judge), max_steps=1)
    assert region.constraint is not None and not region.constraint.startswith("loose")
    assert "loose: " + region.constraint in region.rejected
