"""Tests for the fleet model (model/params.py, model/state.py, model/fleet.py).

Every state here is reached by driving the model's own `step` from one of its
initial states; none is written out by hand except where a test needs a
state the model has not reached yet (the permutations of `canonical`).
Fleets are tiny (1 client, sometimes 2; 3 servers) so the file runs in a few
seconds.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from stormcheck.model.events import Dropped, Handshake, Refreshed, Replied
from stormcheck.model.fleet import (
    STALE,
    ProtocolError,
    actions,
    canonical,
    initial_states,
    step,
    successors,
    would_reap,
)
from stormcheck.model.params import (
    DESIGNS,
    LOAD_TRIGGERS,
    Design,
    Faults,
    Level,
    Params,
    adjuster_advice,
)
from stormcheck.model.state import CRASHED, CUT, HELD, RETRY, WAITING, Action, State, Step

HIGH = Level(40_000, *adjuster_advice(40_000, 45, 1))  # (101, 15): the 2015 level
FAULTS = Faults(server_loss=1, client_crash=1)

# The shipped designs, plus a fleet-wide change that takes 30 s to reach every
# server: the only way `tuner_timer`, `adopt` and `deadline` are exercised.
WALK_DESIGNS = dict(DESIGNS)
WALK_DESIGNS["fleet-wide-delayed"] = Design("fleet-wide-delayed", tuner="fleet", propagation_delay=30)


def gitter(design: str | Design = "per-server", **overrides) -> Params:
    """The gitter-like fleet: 3 servers, 1 client, base level and the 40 s level."""
    kw = dict(
        servers=3,
        clients=1,
        levels=(Level(0, 45, 1), HIGH),
        design=DESIGNS[design] if isinstance(design, str) else design,
        faults=FAULTS,
    )
    kw.update(overrides)
    return Params(**kw)


def drive(params: Params, state: State, *acts: Action) -> list[Step]:
    """Apply `acts` one after the other with the checked `step`; return every Step."""
    steps = []
    for a in acts:
        st_ = step(params, state, a)
        steps.append(st_)
        state = st_.state
    return steps


def on_server(params: Params, server: int) -> State:
    """The initial state whose (single) client is held on `server`."""
    return next(s for s in initial_states(params) if s.clients[0].server == server)


# ---------------------------------------------------------------- adjuster


@pytest.mark.parametrize(
    "avg_ms, expected",
    [(10_000, (53, 3)), (40_000, (101, 15)), (80_000, (165, 31)), (160_000, (293, 63))],
)
def test_adjuster_matches_gitters_fixture(avg_ms, expected):
    assert adjuster_advice(avg_ms, 45, 1) == expected


def test_adjuster_below_threshold_gives_base_advice():
    assert adjuster_advice(0, 45, 1) == (45, 1)
    assert adjuster_advice(5_000, 45, 1) == (45, 1)
    assert adjuster_advice(3_000, 30, 2, threshold_ms=2_000) == (30 + 2, 2 + 0)


@pytest.mark.parametrize(
    "over_ms, expected",
    [
        # I = I0 + round(over / 2500): over = 1250 is exactly 0.5, which
        # JavaScript's Math.round takes up to 1 and Python's round() to 0.
        (1_250, (45 + 2, 1 + 1)),
        # 2.5: JavaScript 3, Python's banker's rounding 2.
        (6_250, (45 + 10, 1 + 3)),
        # 1.5: both give 2; a half-up that is not half-even must agree here too.
        (3_750, (45 + 6, 1 + 2)),
        # just under a half rounds down
        (1_249, (45 + 2, 1 + 0)),
    ],
)
def test_adjuster_rounds_halves_up_like_javascript(over_ms, expected):
    assert adjuster_advice(5_000 + over_ms, 45, 1) == expected


def test_adjuster_is_not_pythons_round():
    # The case that tells the two rounding rules apart, spelled out.
    assert round(Fraction(1, 2)) == 0
    assert adjuster_advice(5_000 + 1_250, 45, 1)[1] == 2


# ---------------------------------------------------------------- purity


def test_step_is_pure_and_deterministic():
    params = gitter("per-server")
    state = on_server(params, 0)
    for a in (Action("lose", server=0), Action("tick", value=7), Action("reconnect", client=0, server=1),
              Action("load", server=1, value=1), Action("tick", value=45), Action("reply", client=0, value=2)):
        before = tuple(state)  # a shallow snapshot: NamedTuples all the way down
        first, second = step(params, state, a), step(params, state, a)
        assert first == second
        assert state == before
        assert hash(state) == hash(before)
        assert isinstance(hash(first.state), int)
        assert first.state is not state
        state = first.state


def test_every_state_and_action_is_hashable():
    params = gitter("fleet-wide-staged", clients=2)
    seen = set(initial_states(params))
    for s in list(seen):
        for a, st_ in successors(params, s):
            seen.add(st_.state)
            assert hash(a) == hash(Action(*a))
    assert len(seen) > 3


# ---------------------------------------------------------------- disabled actions


def test_disabled_client_action_names_action_phase_and_enabled_actions():
    params = gitter("off")
    state = on_server(params, 0)
    with pytest.raises(ProtocolError) as err:
        step(params, state, Action("reply", client=0, value=0))
    msg = str(err.value)
    assert "reply(client=0, value=0)" in msg
    assert "client 0 is held (timer 45)" in msg
    assert "enabled here:" in msg
    for enabled in actions(params, state):
        assert str(enabled) in msg
    assert "tick(value=45)" in msg


def test_disabled_server_action_names_server_state():
    params = gitter("per-server")
    state = on_server(params, 0)
    with pytest.raises(ProtocolError) as err:
        step(params, state, Action("restore", server=1))
    assert "restore(server=1)" in str(err.value)
    assert "server 1 is up at level 0" in str(err.value)
    # A load rise needs a reconnect absorbed first (load_trigger "reconnects").
    with pytest.raises(ProtocolError, match=r"load\(server=2, value=1\) is not enabled"):
        step(params, state, Action("load", server=2, value=1))
    # A lost server is named as down.
    lost = drive(params, state, Action("lose", server=2))[-1].state
    with pytest.raises(ProtocolError, match="server 2 is down"):
        step(params, lost, Action("publish", server=2))


def test_protocol_error_is_a_value_error_and_changes_nothing():
    params = gitter("off")
    state = on_server(params, 1)
    snapshot = tuple(state)
    with pytest.raises(ValueError):
        step(params, state, Action("arrive", client=0))
    assert state == snapshot


# ---------------------------------------------------------------- structure (random walks)


def _due(state: State) -> bool:
    return (
        any(cl.timer == 0 and cl.phase in (HELD, WAITING, RETRY, CUT) for cl in state.clients)
        or any(srv.down == -1 for srv in state.servers)
        or state.tuner_timer == -1
        or state.rollout == -1
    )


def _due_clients(state: State) -> list[int]:
    return [c for c, cl in enumerate(state.clients) if cl.timer == 0 and cl.phase in (HELD, WAITING, RETRY, CUT)]


def _smallest_countdown(params: Params, state: State) -> int:
    timers = [cl.timer for cl in state.clients if cl.phase != CRASHED and cl.timer > 0]
    timers += [srv.down for srv in state.servers if srv.down > 0]
    timers += [t for t in (state.tuner_timer, state.rollout) if t > 0]
    return min(timers) if timers else max(lv.timeout for lv in params.levels)


def _successor_classes(params: Params, state: State) -> set[State]:
    return {canonical(params, st_.state) for _, st_ in successors(params, state)}


def check_structure(params: Params, state: State) -> list[Action]:
    """Assert the invariants of the model's own structure; return the enabled actions.

    These are facts about the model's bookkeeping, not protocol properties:
    they must hold in every reachable state under every design.
    """
    design = params.design
    nlevels = len(params.levels)
    f = params.faults
    assert 0 <= state.losses_left <= f.server_loss
    assert 0 <= state.crashes_left <= f.client_crash
    assert 0 <= state.cuts_left <= f.client_cut
    assert any(srv.down == 0 for srv in state.servers), "a fleet never loses every server"
    for srv in state.servers:
        assert srv.down >= -1  # -1: the loss is over, `restore` is due
        assert {srv.target, srv.adv, srv.reap} <= set(range(nlevels))
        if design.tuner in ("static", "per-server"):
            assert srv.adv == srv.reap == srv.target  # nothing propagates
        if not params.load_moves:
            assert (srv.target, srv.hot) == (0, False)
    assert state.tuner_timer >= -1  # -1: a fleet change's deadline is due
    if design.tuner != "fleet" or design.propagation_delay == 0:
        assert state.tuner_timer == 0
    if params.rollout is None:
        assert state.rollout == 0  # NOT_BEGUN: only a rollout moves it
    stamps = {params.offset(s) for s in range(params.servers)}
    for cl in state.clients:
        assert cl.phase in (HELD, WAITING, RETRY, CUT, CRASHED)
        assert cl.timer >= 0
        if cl.session:
            assert 0 <= cl.session.age <= params.age_cap
            assert cl.session.stamp in stamps  # 0 without skew
            assert 0 <= cl.session.hs_level < nlevels
            # STALE (-1): under a staged tuner, answered with advice it was not refreshed under.
            stale_ok = design.tuner == "fleet-staged" and cl.phase != HELD  # a refresh clears it
            assert 0 <= cl.session.ref_level < nlevels or (stale_ok and cl.session.ref_level == STALE)
            if not (design.judge == "session" and design.record == "handshake"):
                assert cl.session.hs_level == 0  # a field the design never reads stays 0
        if cl.phase in (HELD, WAITING):
            assert cl.session, cl
            assert cl.server >= 0
            assert state.servers[cl.server].down == 0, "a socket only lives on an up server"
        else:
            assert cl.server == -1, cl
        if cl.phase == RETRY:
            assert not cl.session  # a dropped client abandons its session
        if cl.phase == CRASHED:
            assert cl.timer == 0

    acts = actions(params, state)
    assert acts, "some action is always enabled"
    assert len(set(acts)) == len(acts)
    ticks = [a for a in acts if a.kind == "tick"]
    if _due(state):
        assert not ticks, "time must not pass while an event is due"
    else:
        assert len(ticks) == 1, "time can always pass when nothing is due"
        assert ticks[0].value == _smallest_countdown(params, state) > 0
    due = _due_clients(state)
    if due:
        assert any(a.client == due[0] and a.kind in ("reply", "arrive", "reconnect") for a in acts)
    # The reaper actions are offered exactly where `would_reap` says some
    # session would go (fleet.py computes them by a faster route).
    for path in ("publish", "gc"):
        offered = {a.server for a in acts if a.kind == path}
        expected = {
            s for s, srv in enumerate(state.servers)
            if srv.down == 0 and any(cl.session and would_reap(params, state, s, cl.session, path) for cl in state.clients)
        }
        assert offered == expected, path

    canon = canonical(params, state)
    assert canonical(params, canon) == canon
    # It only renames: the same clients (up to server numbers), the same servers.
    assert sorted(cl._replace(server=cl.server >= 0) for cl in canon.clients) == sorted(
        cl._replace(server=cl.server >= 0) for cl in state.clients
    )
    assert sorted(canon.servers) == sorted(state.servers)
    # Several clients due at once fire in client order (fleet.py's second
    # simplification) and canonical() may reorder them, so the successor sets
    # are only comparable when at most one client is due.
    if len(due) <= 1 and canon != state:
        assert _successor_classes(params, state) == _successor_classes(params, canon)
    return acts


@pytest.mark.parametrize("name", sorted(WALK_DESIGNS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_walks_keep_the_models_structure(name, data):
    clients = data.draw(st.sampled_from((1, 2)), label="clients")
    trigger = data.draw(st.sampled_from(LOAD_TRIGGERS), label="load_trigger")
    # Mostly symmetric servers; sometimes skewed clocks (servers kept in order).
    skew = data.draw(st.sampled_from(((), (), (0, 3, 0))), label="skew")
    params = gitter(
        WALK_DESIGNS[name],
        clients=clients,
        load_trigger=trigger,
        skew=skew,
        faults=Faults(server_loss=1, client_crash=1, client_cut=1),
    )
    state = data.draw(st.sampled_from(initial_states(params)), label="initial")
    # One draw for the whole walk (a draw per step costs more than the step):
    # pick k chooses enabled action k mod n, so every enabled action is reachable.
    picks = data.draw(st.lists(st.integers(0, 255), min_size=40, max_size=40), label="picks")
    for pick in picks:
        acts = check_structure(params, state)
        action = acts[pick % len(acts)]
        note(f"{action}")
        state = step(params, state, action).state
    check_structure(params, state)


# ---------------------------------------------------------------- canonical


def _walk(params: Params, data, steps: int) -> State:
    state = data.draw(st.sampled_from(initial_states(params)), label="initial")
    for _ in range(steps):
        state = step(params, state, data.draw(st.sampled_from(actions(params, state)), label="action")).state
    return state


def _permute(state: State, client_order, server_order) -> State:
    """The same fleet with clients listed in `client_order` and servers renamed.

    ``server_order[new] = old``: the server called `old` becomes `new`, and
    every client's server number follows it.
    """
    new_name = {old: new for new, old in enumerate(server_order)}
    clients = tuple(
        cl._replace(server=new_name[cl.server]) if cl.server >= 0 else cl
        for cl in (state.clients[i] for i in client_order)
    )
    servers = tuple(state.servers[old] for old in server_order)
    return state._replace(clients=clients, servers=servers)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_canonical_identifies_client_and_server_permutations(data):
    params = gitter(data.draw(st.sampled_from(sorted(DESIGNS))), clients=2, load_trigger="free")
    assert params.servers_symmetric
    state = _walk(params, data, data.draw(st.integers(0, 25)))
    client_order = data.draw(st.permutations(range(2)))
    server_order = data.draw(st.permutations(range(3)))
    other = _permute(state, client_order, server_order)
    assert canonical(params, other) == canonical(params, state)
    # A renamed fleet behaves the same: its successors are the renamed ones
    # (when at most one client is due; see check_structure).
    if len(_due_clients(state)) <= 1:
        assert _successor_classes(params, other) == _successor_classes(params, state)


def test_canonical_sorts_clients_and_servers_by_a_worked_example():
    params = gitter("per-server", clients=2)
    a = State(
        clients=(
            initial_states(params)[0].clients[0]._replace(server=2, timer=10),
            initial_states(params)[0].clients[0]._replace(phase=RETRY, server=-1, timer=3, session=()),
        ),
        servers=tuple(initial_states(params)[0].servers[i]._replace(down=d) for i, d in enumerate((0, 0, 30))),
        tuner_timer=0,
        rollout=0,
        losses_left=0,
        crashes_left=1,
        cuts_left=0,
    )
    # Same fleet: the clients listed the other way round, servers 0 and 2 swapped.
    b = _permute(a, (1, 0), (2, 1, 0))
    assert a != b
    assert canonical(params, a) == canonical(params, b)


def test_canonical_keeps_server_order_when_servers_are_not_symmetric():
    skewed = gitter("per-server", clients=2, skew=(0, 3, 0))
    assert not skewed.servers_symmetric
    plain = gitter("per-server", clients=2)
    base = next(s for s in initial_states(skewed) if [c.server for c in s.clients] == [0, 1])
    lost = drive(skewed, base, Action("lose", server=2))[-1].state
    for s in (base, lost):
        canon = canonical(skewed, s)
        assert canon.servers == s.servers
        assert canon == s._replace(clients=tuple(sorted(s.clients)))
    # Renaming servers 0 and 2 is a different fleet under skew (server 1's
    # clock differs, and which server is down matters) ...
    renamed = _permute(lost, (0, 1), (2, 1, 0))
    assert canonical(skewed, renamed) != canonical(skewed, lost)
    # ... and the same fleet without it.
    assert canonical(plain, renamed) == canonical(plain, lost)
    # Other ways of singling a server out turn server symmetry off too.
    assert not gitter(load_servers=(1,)).servers_symmetric
    assert not gitter(faults=Faults(server_loss=1, loss_servers=(0,))).servers_symmetric
    assert gitter(skew=(4, 4, 4)).servers_symmetric


def test_initial_states_are_canonical_placements():
    params = gitter("off", clients=2)
    placements = [tuple(c.server for c in s.clients) for s in initial_states(params)]
    assert placements == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    # Under server symmetry they collapse to: both on one server, or apart.
    assert len({canonical(params, s) for s in initial_states(params)}) == 2


# ---------------------------------------------------------------- the time abstraction


@pytest.mark.parametrize("rtt", [0, 2])
def test_connect_cycle_of_one_client_under_off(rtt):
    params = gitter("off", faults=Faults())
    state = on_server(params, 0)
    cl = state.clients[0]
    assert (cl.phase, cl.server, cl.timer, cl.session.age) == (HELD, 0, 45, 0)
    assert actions(params, state) == [Action("tick", value=45)]

    held_out = step(params, state, Action("tick", value=45)).state
    assert held_out.clients[0][:3] == (HELD, 0, 0)
    assert held_out.clients[0].session.age == 45
    assert actions(params, held_out) == [Action("reply", client=0, value=r) for r in params.rtt]

    replied = step(params, held_out, Action("reply", client=0, value=rtt))
    assert replied.events == (Replied(0, 0, 45, 1),)
    waiting = replied.state.clients[0]
    assert (waiting.phase, waiting.server, waiting.timer) == (WAITING, 0, 1 + rtt)  # I + rtt
    assert actions(params, replied.state) == [Action("tick", value=1 + rtt)]

    arrived_at = step(params, replied.state, Action("tick", value=1 + rtt)).state
    assert arrived_at.clients[0].session.age == 45 + 1 + rtt
    assert actions(params, arrived_at) == [Action("arrive", client=0)]

    refreshed = step(params, arrived_at, Action("arrive", client=0))
    assert refreshed.events == (Refreshed(0, 0, 45 + 1 + rtt, 45),)
    assert refreshed.state == state  # back where it started: the cycle is a loop in the graph


def test_ages_saturate_at_the_cap():
    params = gitter("off", faults=Faults(client_crash=1))
    crashed = drive(params, on_server(params, 0), Action("crash", client=0))[-1].state
    # Nothing scheduled: time passes by the longest hold (101) per tick.
    state = crashed
    for _ in range(5):
        (tick,) = [a for a in actions(params, state) if a.kind == "tick"]
        assert tick.value == 101
        state = step(params, state, tick).state
    assert params.age_cap == 2 * 101 + 1
    assert state.clients[0].session.age == params.age_cap


# ---------------------------------------------------------------- abandoned sessions


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_lose_drops_the_servers_clients_into_retry_without_a_session(name):
    params = gitter(name, clients=2)
    state = next(s for s in initial_states(params) if [c.server for c in s.clients] == [0, 1])
    lost = step(params, state, Action("lose", server=0))
    retry = params.retry + params.rtt_max
    assert lost.state.clients[0] == (RETRY, -1, retry, ())
    assert lost.state.clients[1] == state.clients[1]  # on another server: untouched
    assert Dropped(0, 0, "server lost connectivity", retry) in lost.events
    assert lost.state.servers[0].down == params.faults.loss_duration
    assert lost.state.losses_left == 0


@pytest.mark.parametrize("name", sorted(WALK_DESIGNS))
@pytest.mark.parametrize("trigger", LOAD_TRIGGERS)
@pytest.mark.parametrize("levels", [(Level(0, 45, 1), HIGH), (Level(0, 45, 1),)], ids=["2-levels", "1-level"])
def test_reconnect_handshakes_on_an_up_server_and_marks_it_hot(name, trigger, levels):
    params = gitter(WALK_DESIGNS[name], load_trigger=trigger, levels=levels)
    after_tick = drive(params, on_server(params, 0), Action("lose", server=0), Action("tick", value=7))[-1].state
    reconnects = [a for a in actions(params, after_tick) if a.kind == "reconnect"]
    assert reconnects == [Action("reconnect", client=0, server=s) for s in (1, 2)]  # up servers only
    hs = step(params, after_tick, reconnects[0])
    assert hs.events == (Handshake(0, 1, 45, 1),)
    cl = hs.state.clients[0]
    assert (cl.phase, cl.server, cl.timer, cl.session.age) == (HELD, 1, 45, 0)
    # `hot` (reconnects absorbed since the last rise) is what lets load rise
    # under load_trigger "reconnects". The model keeps it wherever some load
    # can move (an adjusting design with a second level: the per-server
    # tuners read it per server, the fleet tuners read any server's), and
    # nowhere else: a flag nobody reads would only split states.
    adjusting = params.design.adjusts() and len(levels) > 1
    assert hs.state.servers[1].hot is (adjusting and trigger == "reconnects")
    assert not any(srv.hot for i, srv in enumerate(hs.state.servers) if i != 1)
    if name == "per-server":
        assert hs.state.servers[1].hot is (trigger == "reconnects" and len(levels) > 1)


def test_a_load_rise_needs_a_reconnect_under_the_reconnects_trigger():
    params = gitter("per-server")
    state = on_server(params, 0)
    assert not [a for a in actions(params, state) if a.kind == "load"]
    hot = drive(params, state, Action("lose", server=0), Action("tick", value=7),
                Action("reconnect", client=0, server=2))[-1].state
    assert [a for a in actions(params, hot) if a.kind == "load"] == [Action("load", server=2, value=1)]
    risen = step(params, hot, Action("load", server=2, value=1)).state
    assert risen.servers[2][1:] == (1, 1, 1, False)  # target, adv, reap at the new level; no longer hot
    # Falling back needs nothing.
    assert Action("load", server=2, value=0) in actions(params, risen)
    # Under "free" the load moves at once.
    free = gitter("per-server", load_trigger="free")
    assert {a for a in actions(free, on_server(free, 0)) if a.kind == "load"} == {
        Action("load", server=s, value=1) for s in range(3)
    }


# ---------------------------------------------------------------- simultaneous due events


def test_successors_match_up_to_canonical_when_two_clients_are_due_at_once():
    # Two clients on a 2-server 'off' fleet whose connects fall due at the
    # same instant with different session ages (46 and 48): reached by
    # answering them with different RTTs.
    params = Params(servers=2, clients=2, levels=(Level(0, 45, 1),), design=DESIGNS["off"])
    start = next(s for s in initial_states(params) if [c.server for c in s.clients] == [0, 1])
    state = drive(
        params, start,
        Action("tick", value=45), Action("reply", client=0, value=0), Action("reply", client=1, value=2),
        Action("tick", value=1), Action("arrive", client=0), Action("tick", value=2), Action("arrive", client=1),
        Action("tick", value=43), Action("reply", client=0, value=2), Action("tick", value=2),
        Action("reply", client=1, value=0), Action("tick", value=1),
    )[-1].state
    assert [(c.phase, c.server, c.timer, c.session.age) for c in state.clients] == [
        (WAITING, 0, 0, 48), (WAITING, 1, 0, 46)
    ]
    canon = canonical(params, state)
    assert [c.session.age for c in canon.clients] == [46, 48]
    # Every due client may go first, whichever index it has: that is what
    # makes the sorted form a symmetry of the transition relation.
    both = [Action("arrive", client=0), Action("arrive", client=1)]
    assert [a for a in actions(params, state) if a.kind == "arrive"] == both
    assert [a for a in actions(params, canon) if a.kind == "arrive"] == both
    assert _successor_classes(params, state) == _successor_classes(params, canon)
