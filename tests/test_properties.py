"""Tests for the properties (properties/core.py, properties/protocol.py).

Each property is evaluated on steps and states produced by driving the
model's own `step` (the 2015 story, a crash, a cut), never on hand-written
states, so a test breaks if the model and the property drift apart.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from stormcheck.checkers.bfs import check_bfs
from stormcheck.model import fleet, rules_reapers
from stormcheck.model.events import Handshake, Reaped, Refused
from stormcheck.model.fleet import initial_states, step
from stormcheck.model.params import DESIGNS, Faults, Level, Params, adjuster_advice
from stormcheck.model.state import CRASHED, CUT, HELD, Action, State, Step
from stormcheck.properties.core import ALWAYS, SOMETIMES, STATE, STEP, Property, Verdict
from stormcheck.properties.protocol import (
    PROPERTIES,
    by_name,
    dead_session_reaped,
    next_refresh_age,
    no_valid_reap,
    parameter_agreement,
    rehandshake_reachable,
)

HIGH = Level(40_000, *adjuster_advice(40_000, 45, 1))  # (101, 15)
FAULTS = Faults(server_loss=1, client_crash=1)


def gitter(design: str = "per-server", **overrides) -> Params:
    kw = dict(servers=3, clients=1, levels=(Level(0, 45, 1), HIGH), design=DESIGNS[design], faults=FAULTS)
    kw.update(overrides)
    return Params(**kw)


def on_server(params: Params, server: int) -> State:
    return next(s for s in initial_states(params) if s.clients[0].server == server)


def drive(params: Params, state: State, *acts: Action) -> list[tuple[State, Action, Step]]:
    """Apply `acts` with the checked `step`; return every (pre-state, action, step)."""
    out = []
    for a in acts:
        st = step(params, state, a)
        out.append((state, a, st))
        state = st.state
    return out


# The 2015 story on a 3-server fleet, one client, starting on server 0:
# server 0 loses connectivity, the client reconnects to server 1 (which
# absorbs the reconnect, so its load may rise), server 1's adjuster raises T
# to 101. The connect held then was held for 45 and is answered with (101,
# 15); the next one arrives at server 1 and is held for 101 -- past the 72 s
# (1.6 x 45) cutoff of servers 0 and 2.
TO_RISE = (
    Action("lose", server=0),
    Action("tick", value=7),  # retry 5 + RTT 2
    Action("reconnect", client=0, server=1),
    Action("load", server=1, value=1),
)
TO_LONG_HOLD = (
    Action("tick", value=45),
    Action("reply", client=0, value=0),  # waits I = 15
    Action("tick", value=8),  # server 0's 60 s loss ends
    Action("restore", server=0),
    Action("tick", value=7),
    Action("arrive", client=0),  # held for T = 101 now
)
PAST_CUTOFF = (
    Action("tick", value=101),  # the hold runs out at age 101 >= 72
    Action("publish", server=2),
)


# ---------------------------------------------------------------- no_valid_reap


def test_no_valid_reap_is_violated_by_reaping_a_held_client():
    params = gitter("per-server")
    run = drive(params, on_server(params, 0), *TO_RISE, *TO_LONG_HOLD, *PAST_CUTOFF)
    # The hold really was 101 when the client arrived.
    arrived = run[len(TO_RISE) + len(TO_LONG_HOLD) - 1][2].state.clients[0]
    assert (arrived.phase, arrived.server, arrived.timer) == (HELD, 1, 101)
    for pre, action, st in run[:-1]:
        assert no_valid_reap.check(params, pre, action, st), action
    pre, action, st = run[-1]
    assert pre.clients[0].phase == HELD and pre.clients[0].timer == 0  # still held: valid
    assert st.events[0] == Reaped(0, 2, "publish", 101, 45, "72", "server")
    assert not no_valid_reap.check(params, pre, action, st)
    assert no_valid_reap.interesting(params, pre, action, st)
    assert not dead_session_reaped.check(params, pre, action, st)
    assert len(run) == 12  # the length BFS reports for per-server (tests/test_bfs.py)


def test_the_same_story_is_safe_under_per_session():
    # per-session answers with the advice fixed when the connect arrived
    # (45, 1), so the client comes back after 1 s and is then held for 101,
    # with T = 101 recorded in its session.
    params = gitter("per-session")
    run = drive(
        params, on_server(params, 0), *TO_RISE,
        Action("tick", value=45), Action("reply", client=0, value=0), Action("tick", value=1),
        Action("arrive", client=0), Action("tick", value=7), Action("restore", server=0),
        Action("tick", value=94),
    )
    last = run[-1][2].state
    assert last.clients[0][:3] == (HELD, 1, 0) and last.clients[0].session.age == 101
    assert last.clients[0].session.ref_level == 1
    # No reaper judges it by 45: nothing to publish-reap or collect.
    assert not [a for a in fleet.actions(params, last) if a.kind in ("publish", "gc")]
    assert all(parameter_agreement.check(params, st.state) for _, _, st in run)
    assert all(no_valid_reap.check(params, *x) for x in run)


def test_no_valid_reap_is_satisfied_by_reaping_a_crashed_client():
    params = gitter("off")
    run = drive(params, on_server(params, 0), Action("crash", client=0), Action("tick", value=101),
                Action("publish", server=1))
    pre, action, st = run[-1]
    assert pre.clients[0].phase == CRASHED
    assert Reaped(0, 1, "publish", 101, 45, "72", "server") in st.events
    assert no_valid_reap.check(params, pre, action, st)
    assert dead_session_reaped.check(params, pre, action, st)
    assert not st.state.clients[0].session
    assert st.state.clients[0].phase == CRASHED  # gone for good; only its session went


def test_reaping_a_cut_off_client_on_its_return_is_correct():
    params = gitter("off", faults=Faults(client_cut=1))
    run = drive(params, on_server(params, 0), Action("cut", client=0), Action("tick", value=120),
                Action("reconnect", client=0, server=1))
    pre, action, st = run[-1]
    assert pre.clients[0].phase == CUT
    reaped = [e for e in st.events if isinstance(e, Reaped)]
    assert reaped == [Reaped(0, 1, "existence", 120, 45, "72", "server")]
    assert Refused(0, 1) in st.events and isinstance(st.events[-1], Handshake)
    assert no_valid_reap.check(params, pre, action, st)  # a cut client is not valid
    assert rehandshake_reachable.check(params, pre, action, st)
    assert not dead_session_reaped.check(params, pre, action, st)  # cut, not crashed


# ---------------------------------------------------------------- parameter_agreement


@pytest.mark.parametrize("clients", [1, 2])
def test_parameter_agreement_holds_at_every_initial_state_of_off(clients):
    params = gitter("off", clients=clients)
    for s in initial_states(params):
        assert parameter_agreement.check(params, s)
        for c in range(clients):
            assert next_refresh_age(params, s, c) == 45 + 1 + 2  # < 72


def test_parameter_agreement_fails_once_a_hold_runs_on_the_raised_timeout():
    """What the model allows, precisely.

    Right after server 1 raises T to 101 the client is still held for the 45
    s set when its connect arrived; its reply carries (101, 15), so its next
    refresh lands by age 45 + 15 + 2 = 62 < 72: agreement still holds. It
    fails when the next connect arrives at server 1 and is held for 101: the
    refresh after that lands at 101 + 15 + 2 = 118 >= 72, the cutoff of
    servers 0 and 2, long before anything is reaped.
    """
    params = gitter("per-server")
    run = drive(params, on_server(params, 0), *TO_RISE, *TO_LONG_HOLD)
    after_rise = run[len(TO_RISE) - 1][2].state
    assert after_rise.servers[1].adv == 1 and after_rise.clients[0][:3] == (HELD, 1, 45)
    assert next_refresh_age(params, after_rise, 0) == 45 + 15 + 2
    assert parameter_agreement.check(params, after_rise)
    # every state up to the long hold agrees ...
    assert all(parameter_agreement.check(params, st.state) for _, _, st in run[:-1])
    # ... the long hold does not
    long_hold = run[-1][2].state
    assert next_refresh_age(params, long_hold, 0) == 101 + 15 + 2
    assert not parameter_agreement.check(params, long_hold)


def test_parameter_agreement_fails_right_after_a_rise_to_a_longer_interval():
    # At 160 s the adjuster advises (293, 63): even a hold set from T0 = 45
    # is answered with I = 63, so the next refresh lands by 45 + 63 + 2 = 110.
    params = gitter("per-server", levels=(Level(0, 45, 1), Level(160_000, *adjuster_advice(160_000, 45, 1))))
    run = drive(params, on_server(params, 0), *TO_RISE)
    risen = run[-1][2].state
    assert next_refresh_age(params, risen, 0) == 110
    assert not parameter_agreement.check(params, risen)
    assert parameter_agreement.check(params, run[-1][0])  # one step earlier it held


def test_parameter_agreement_ignores_servers_that_are_down():
    # Servers 0 and 2 both lose connectivity for 600 s; the client is held
    # for 101 on server 1, the only server up, whose own cutoff is 161.6.
    params = gitter("per-server", faults=Faults(server_loss=2, loss_duration=600))
    run = drive(
        params, on_server(params, 0), *TO_RISE, Action("lose", server=2),
        Action("tick", value=45), Action("reply", client=0, value=0), Action("tick", value=15),
        Action("arrive", client=0),
    )
    long_hold = run[-1][2].state
    assert long_hold.clients[0][:3] == (HELD, 1, 101)
    assert [srv.down > 0 for srv in long_hold.servers] == [True, False, True]
    assert parameter_agreement.check(params, long_hold)
    # The same state with server 2 back up disagrees (its cutoff is 72) ...
    servers = list(long_hold.servers)
    servers[2] = servers[2]._replace(down=0)
    assert not parameter_agreement.check(params, long_hold._replace(servers=tuple(servers)))
    # ... and a server whose loss just ended (-1, restore due) is not up yet.
    servers[2] = servers[2]._replace(down=-1)
    assert parameter_agreement.check(params, long_hold._replace(servers=tuple(servers)))


# ---------------------------------------------------------------- sometimes: vacuity


def test_a_model_whose_reapers_never_reap_fails_the_sometimes_property(monkeypatch):
    """A reaper that never destroys anything makes every safety property hold.

    The checker must not mistake that for safety: `dead_session_reaped` is
    violated by a complete search with no witness, and the overall verdict is
    violated even though `no_valid_reap` holds.
    """
    monkeypatch.setattr(rules_reapers, "_expired", lambda *args: None)  # where the sweeps read it
    params = gitter("off")
    result = check_bfs(params, PROPERTIES)
    nvr, dead = result.get("no_valid_reap"), result.get("dead_session_reaped")
    assert nvr.verdict is Verdict.HOLDS and nvr.basis.startswith("complete search")
    assert dead.verdict is Verdict.VIOLATED
    assert dead.basis.startswith("complete search") and dead.run is None
    assert result.get("rehandshake_reachable").verdict is Verdict.HOLDS  # reconnects still happen
    assert result.verdict is Verdict.VIOLATED
    assert result.stats["complete"]


def test_an_enormous_multiplier_still_reaps_a_dead_session_eventually():
    """With finite cutoffs a crashed client's session is reaped: time is unbounded.

    publish_mult = gc_mult = 100 puts the cutoff at 4,500 s; a crashed client
    (nothing else scheduled) ages 45 s per tick, so the witness is crash, 100
    ticks, publish. A model in which *nothing* is reaped needs a reaper that
    never reaps (the test above), not a large multiplier.
    """
    params = gitter("off", levels=(Level(0, 45, 1),), publish_mult=Fraction(100), gc_mult=Fraction(100))
    result = check_bfs(params, PROPERTIES)
    dead = result.get("dead_session_reaped")
    assert dead.verdict is Verdict.HOLDS
    assert len(dead.run) == 102
    assert dead.run.times()[-1] == 100 * 45
    assert result.get("no_valid_reap").verdict is Verdict.HOLDS


# ---------------------------------------------------------------- construction


def test_property_rejects_a_bad_modality_with_a_clear_message():
    with pytest.raises(ValueError) as err:
        Property("eventually_reaped", "eventually", STATE, lambda p, s: True, "x")
    assert str(err.value) == (
        "property 'eventually_reaped': modality must be 'always', 'sometimes' or 'eventually-always', "
        "not 'eventually'"
    )


def test_a_liveness_property_needs_steps_and_an_exclude_predicate():
    with pytest.raises(ValueError, match="'eventually-always' property is over steps and has an 'exclude'"):
        Property("calm", "eventually-always", STEP, lambda *a: True, "x")
    with pytest.raises(ValueError, match="'eventually-always' property is over steps"):
        Property("calm", "eventually-always", STATE, lambda *a: True, "x", exclude=lambda *a: False)
    with pytest.raises(ValueError, match="other modalities have none"):
        Property("safe", "always", STEP, lambda *a: True, "x", exclude=lambda *a: False)


def test_property_rejects_a_bad_over():
    with pytest.raises(ValueError, match=r"'over' must be 'state' or 'step', not 'trace'"):
        Property("p", ALWAYS, "trace", lambda p, s: True, "x")


def test_by_name_finds_properties_and_lists_the_known_ones_on_error():
    for prop in PROPERTIES:
        assert by_name(prop.name) is prop
    with pytest.raises(KeyError) as err:
        by_name("no_valid_reaps")
    msg = err.value.args[0]
    assert "no property named 'no_valid_reaps'" in msg
    for prop in PROPERTIES:
        assert prop.name in msg


def test_modalities_decide_what_is_interesting():
    yes = Property("yes", ALWAYS, STATE, lambda p, s: True, "")
    no = Property("no", SOMETIMES, STEP, lambda p, s, a, x: False, "")
    assert not yes.interesting(None, None)  # an always property that holds: nothing to report
    assert not no.interesting(None, None, None, None)  # a sometimes property unmet: no witness
    assert yes.verdict_when_found() is Verdict.VIOLATED and yes.verdict_when_exhausted() is Verdict.HOLDS
    assert no.verdict_when_found() is Verdict.HOLDS and no.verdict_when_exhausted() is Verdict.VIOLATED
    assert {p.modality for p in PROPERTIES} == {ALWAYS, SOMETIMES}
    assert str(Verdict.INCONCLUSIVE) == "inconclusive"


@pytest.mark.parametrize("rollout", ["socketio-4-ping-60", "socketio-2-ping-60", "python-websockets-ping-60"])
def test_parameter_agreement_reads_the_cutoff_the_reaper_applies(rollout):
    # These stacks' servers judge by T plus the interval their own ping schedule uses now
    # ([heartbeat] interval_term = "in-use"). Rolled to a longer interval, the reaper waits longer,
    # nothing is reaped, and the margin must say so (it once read the judged level's own I and called
    # these rollouts violated). Control: the same fleet whose judge adds the judged level's I reaps a
    # valid client, and the margin sees that coming.
    from stormcheck.model.scenario import load_scenario, scenario_from_dict

    def verdicts(interval_term: str) -> dict:
        base = load_scenario(f"rollouts/{rollout}")
        config = {**base.config, "heartbeat": {**base.config["heartbeat"], "interval_term": interval_term}}
        params = scenario_from_dict(config, base.source).params
        result = check_bfs(params, (no_valid_reap, parameter_agreement))
        return {p.name: p.verdict for p in result.properties}

    assert verdicts("in-use") == {"no_valid_reap": Verdict.HOLDS, "parameter_agreement": Verdict.HOLDS}
    assert verdicts("judged") == {"no_valid_reap": Verdict.VIOLATED, "parameter_agreement": Verdict.VIOLATED}


def test_the_margin_and_the_reaper_state_one_cutoff():
    # `client_margin`'s server judges and `fleet.would_reap` both read `fleet.cutoff_age`: a session
    # at exactly that age is reaped, one unit younger it is not.
    from stormcheck.model.scenario import load_scenario

    params = load_scenario("rollouts/socketio-4-ping-60").params
    state = next(iter(initial_states(params)))
    c = next(i for i, cl in enumerate(state.clients) if cl.session)
    session, s = state.clients[c].session, state.clients[c].server
    for path in params.heartbeat.paths:
        if path not in ("publish", "gc"):
            continue
        age = fleet.cutoff_age(params, state.servers[s], session, path) - fleet.perceived_age(params, session, s)
        assert fleet.would_reap(params, state, s, session._replace(age=session.age + age), path, c)
        assert not fleet.would_reap(params, state, s, session._replace(age=session.age + age - 1), path, c)
