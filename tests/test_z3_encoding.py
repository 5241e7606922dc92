"""Differential tests: the Z3 encoding (checkers/z3_encoding.py) against model/fleet.py.

Hypothesis draws a small fleet (3 servers, 1 or 2 clients, levels (45, 1) and
(101, 15), every named design and a delayed fleet-wide one, Faye's rules or
any stack's: a drawn `[heartbeat]` table, extra judges, the published Faye
stack), a reachable state (a random walk with the model's own
`actions`/`step` from one of its initial states) and an action, enabled or
not. With frame 0 fixed to the state and the action fixed:

* the transition formula is satisfiable exactly when the action is enabled;
* frame 1 is then unique and equals ``fleet.step(...).state``;
* the encoded bad step agrees with `properties.protocol.no_valid_reap`, and
  the encoded state predicate with `parameter_agreement`, before and after.

The state graphs of the 2015 fleet and of every stack preset are also
walked step by step. Rollouts (checkers/z3_rollout.py) get the same test
over the shipped rollouts with their phases redrawn (every order `plan`
tries, paces, batches, pick-ups, live changes), and the one-client system's
cover of every fleet step, with the other clients' side of a clients phase.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import z3
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from stormcheck.checkers.z3_encoding import STATE_FIELDS, Encoding, SState, equal
from stormcheck.model.fleet import actions, initial_states, step
from fractions import Fraction

from stormcheck.model.params import DESIGNS, Design, Faults, Heartbeat, Judge, Level, Params
from stormcheck.model.state import Action
from stormcheck.properties.core import NotEncoded
from stormcheck.properties.protocol import no_valid_reap, parameter_agreement

LEVELS = (Level(0, 45, 1), Level(40_000, 101, 15))
ENCODED = dict(DESIGNS)
# A fleet-wide change that takes 30 s to reach every server: exercises adopt,
# deadline and the tuner timer.
ENCODED["fleet-wide-delayed"] = Design("fleet-wide-delayed", tuner="fleet", propagation_delay=30)


@lru_cache(maxsize=None)
def fleet(design: str, clients: int, trigger: str, cut: int, skew: tuple, stack: tuple = ()) -> Params:
    """The drawn fleet; `stack` is ``(heartbeat, judges, published)`` for a stack's rules (empty: Faye's)."""
    extra = {}
    if stack:
        heartbeat, judges, published = stack
        extra = dict(heartbeat=heartbeat, judges=judges, **dict(published))
    return Params(servers=3, clients=clients, levels=LEVELS, design=ENCODED[design], load_trigger=trigger,
                  skew=skew, faults=Faults(server_loss=1, client_crash=1, client_cut=cut), **extra)


@st.composite
def stacks(draw):
    """A stack's rules, as the scenario format allows them together (model/scenario.py's checks)."""
    hold = draw(st.sampled_from(["timeout", "none"]))
    store = draw(st.sampled_from(["shared", "local"]))
    interval_from = draw(st.sampled_from(["server", "handshake", "client"]))
    cutoff_from = draw(st.sampled_from(["server", "client"]))
    paths = tuple(p for p in ("publish", "existence", "gc") if draw(st.booleans(), label=p)) or ("gc",)
    in_use = interval_from != "client" and (cutoff_from, store) == ("server", "local") and draw(st.booleans())
    spacing = (hold, store) == ("none", "local") and draw(st.booleans())
    heartbeat = Heartbeat(
        hold=hold, interval_from=interval_from, cutoff_from=cutoff_from, store=store, paths=paths,
        interval_multiplier=draw(st.sampled_from([Fraction(0), Fraction(1), Fraction(1, 2)])),
        interval_term="in-use" if in_use else "judged",
        min_spacing=draw(st.sampled_from([20, 50])) if spacing else 0,
        strikes=draw(st.integers(0, 2)) if spacing else 2,
        resume_window=draw(st.sampled_from([0, 5, 60])) if store == "local" else 0,
    )
    judges = ()
    if hold == "none":
        judges = tuple(draw(st.lists(st.sampled_from([
            Judge("client", "client", "handshake"), Judge("proxy", "proxy", "fixed", timeout=60),
            Judge("lb", "proxy", "fixed", timeout=100)]), max_size=2, unique=True)))
    published = []
    if "publish" in paths and draw(st.booleans()):
        published.append(("publish_expired", "drop-queue"))
    if store == "shared" and draw(st.booleans()):
        published.append(("after_drop", "same-id"))
    if draw(st.booleans()):
        published.append(("after_401", "interval"))
    return heartbeat, judges, tuple(published)


@lru_cache(maxsize=None)
def encoded(params: Params):
    """The encoding and its step-0 transition formula, built once per fleet."""
    enc = Encoding(params)
    return enc, enc.trans(0), enc.bad(0), (enc.disagreement(0), enc.disagreement(1))


def every_action(params: Params, state) -> list[Action]:
    """Every action any state of this fleet could have, for drawing disabled ones."""
    C, S, L = params.clients, params.servers, len(params.levels)
    acts = [Action("deadline")] + [Action("load", value=v) for v in range(L)]
    for c in range(C):
        acts += [Action("reply", client=c, value=r) for r in (*params.rtt, 1)]
        acts += [Action(k, client=c) for k in ("arrive", "crash", "cut", "reconnect")]
        acts += [Action("reconnect", client=c, server=s) for s in range(S)]
        acts += [Action("expire", client=c, value=j) for j in range(len(params.judges) + 1)]
    for s in range(S):
        acts += [Action(k, server=s) for k in ("restore", "publish", "gc", "adopt", "adopt_reaper", "adopt_advice",
                                               "lose")]
        acts += [Action("load", server=s, value=v) for v in range(L)]
        acts += [Action("publish", server=s, value=v) for v in (0, 1)]
    timers = {cl.timer for cl in state.clients} | {srv.down for srv in state.servers} | {1, 45, 101}
    acts += [Action("tick", value=t + d) for t in timers for d in (-1, 0, 1) if t + d > 0]
    return acts


@st.composite
def drawn_steps(draw):
    params = fleet(
        draw(st.sampled_from(sorted(ENCODED))),
        draw(st.integers(1, 2)),
        draw(st.sampled_from(["reconnects", "free"])),
        draw(st.integers(0, 1)),
        draw(st.sampled_from([(), (0, 0, 3)])),
        draw(st.one_of(st.just(()), stacks())),
    )
    state = draw(st.sampled_from(initial_states(params)))
    for _ in range(draw(st.integers(0, 40))):
        state = step(params, state, draw(st.sampled_from(actions(params, state)))).state
    enabled = actions(params, state)
    candidates = enabled if draw(st.booleans()) else every_action(params, state)
    # The kind first, so that every kind is drawn about as often.
    kind = draw(st.sampled_from(sorted({a.kind for a in candidates})))
    action = draw(st.sampled_from([a for a in candidates if a.kind == kind]))
    return params, state, action, action in enabled


def solver_at(enc: Encoding, trans, state, action) -> z3.Solver:
    s = z3.Solver()
    s.add(enc.param_constraints(), equal(enc.frame(0), enc.const_state(state)),
          equal(enc.action(0), enc.const_action(action)), trans)
    return s


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn_steps())
def test_transition_formula_agrees_with_step(drawn):
    params, state, action, enabled = drawn
    note(f"design {params.design.name}, heartbeat {params.heartbeat}, judges {params.judges}, state {state}, "
         f"action {action}, enabled {enabled}")
    event("Faye's rules" if not params.extensions() else "a stack's rules")
    event(f"{action.kind} {'enabled' if enabled else 'disabled'}")
    agrees_with_step(params, state, action, enabled)


def agrees_with_step(params: Params, state, action, enabled: bool) -> None:
    """The transition formula at (`state`, `action`) is the model's step: enabled as it is, to its one next state.

    And the bad-step and disagreement formulas are exactly the properties' verdicts there.
    """
    enc, trans, bad, disagree = encoded(params)
    solver = solver_at(enc, trans, state, action)
    answer = solver.check()
    assert answer != z3.unknown
    assert (answer == z3.sat) == enabled
    if not enabled:
        return
    model = solver.model()
    expected = step(params, state, action)
    assert enc.state_of(model, 1) == expected.state
    # Unique: no other frame 1 satisfies the formula.
    solver.add(z3.Not(equal(enc.frame(1), enc.const_state(expected.state))))
    assert solver.check() == z3.unsat
    # The bad step is exactly a violation of no_valid_reap.
    holds = lambda formula: z3.is_true(model.eval(formula, model_completion=True))  # noqa: E731
    assert holds(bad) == (not no_valid_reap.check(params, state, action, expected))
    # ... and the state property, on both frames.
    assert holds(disagree[0]) == (not parameter_agreement.check(params, state))
    assert holds(disagree[1]) == (not parameter_agreement.check(params, expected.state))


def test_bad_step_on_the_2015_reap():
    """The last step of the stored 2015 counterexample is bad; the step before is not."""
    from stormcheck.checkers.bfs import check_bfs

    params = fleet("per-server", 1, "reconnects", 0, ())
    run = check_bfs(params, (no_valid_reap,)).get("no_valid_reap").run
    enc, trans, bad, _ = encoded(params)
    for i, (action, _) in enumerate(run.steps):
        s = solver_at(enc, trans, run.states[i], action)
        s.add(bad)
        assert s.check() == (z3.sat if i == len(run) - 1 else z3.unsat), (i, action)


def test_state_round_trips_through_z3():
    params = fleet("per-session", 2, "free", 1, (0, 0, 3))
    enc = encoded(params)[0]
    state = initial_states(params)[-1]
    s = z3.Solver()
    s.add(equal(enc.frame(0), enc.const_state(state)))
    assert s.check() == z3.sat
    assert enc.state_of(s.model(), 0) == state


def test_the_rollout_marker_is_a_term_only_in_a_fleet_with_a_rollout():
    """Without a rollout `State.rollout` stays NOT_BEGUN: a constant, no variable for the solver to carry;
    with one, a state with the rollout under way round-trips through Z3."""
    from stormcheck.model.scenario import load_scenario

    plain = Encoding(fleet("per-server", 1, "free", 1, ()))
    assert set(STATE_FIELDS.values()) | {"clients", "servers"} == set(initial_states(plain.params)[0]._fields)
    assert z3.is_int_value(plain.frame(0).rollout) and z3.is_true(plain.frame(0).others)
    params = load_scenario("rollouts/faye-timeout-101").params
    enc = Encoding(params)
    assert not z3.is_int_value(enc.frame(0).rollout)
    state = initial_states(params)[0]
    for marker in (-2, -1, 0, 120):
        s = z3.Solver()
        s.add(equal(enc.frame(0), enc.const_state(state._replace(rollout=marker))))
        assert s.check() == z3.sat and enc.state_of(s.model(), 0).rollout == marker


def test_a_fleet_the_encoding_does_not_cover_is_refused(monkeypatch):
    # Every model feature is encoded today: one left out of the encoded set stands for a rule the
    # model gains later, refused by its own name.
    from stormcheck.checkers import z3_coverage

    monkeypatch.setattr(z3_coverage, "_ENCODED_FEATURES", frozenset())
    with pytest.raises(NotEncoded, match=r"not encoded: time in milliseconds") as err:
        Encoding(Params(levels=LEVELS, t0=45_000, i0=1_000, rtt=(0, 2000), unit="ms"))
    assert not isinstance(err.value, ValueError)  # the CLI reads ValueError as bad input (exit 2)


def test_a_field_the_encoding_does_not_read_is_refused_unless_at_its_default(monkeypatch):
    """A rule the model gains later is refused by name until it is encoded, never read as the old behaviour."""
    from stormcheck.checkers import z3_coverage

    Encoding(Params(heartbeat=Heartbeat(hold="none", store="local", min_spacing=5)))
    known = {k: v - {"min_spacing"} if k is Heartbeat else v for k, v in z3_coverage._KNOWN.items()}
    monkeypatch.setattr(z3_coverage, "_KNOWN", known)
    Encoding(Params(heartbeat=Heartbeat(hold="none", store="local")))  # at its default
    with pytest.raises(NotEncoded, match=r"not encoded: Heartbeat.min_spacing = 5"):
        Encoding(Params(heartbeat=Heartbeat(hold="none", store="local", min_spacing=5)))


@pytest.mark.parametrize("design", ["per-server", "fleet-wide-staged"])
def test_every_step_of_the_2015_state_graph(design):
    """Enabled steps from the states the exhaustive engine reaches on the 2015 fleet.

    Random walks rarely reach old sessions; the state graph (one state per
    symmetry class) has them all, and every reap; under the staged design,
    every phase of a rollout.
    """
    RARE = ("publish", "gc", "restore", "adopt_reaper", "adopt_advice")
    from stormcheck.checkers.bfs import explore
    from stormcheck.model.fleet import successors

    params = fleet(design, 1, "reconnects", 0, ())
    enc, trans, bad, _ = encoded(params)
    search, _ = explore(params, (), keep_graph=True, stop_when_decided=False)
    solver = z3.Solver()
    solver.add(enc.param_constraints(), trans)
    kinds, checked = set(), 0
    for n, state in enumerate(search.graph.nodes):
        # Every step of every 10th state, and the reaps and restores of every 4th: the
        # whole graph (1,236 states, 6,429 steps) would take over a minute.
        every, rare = (10, 4) if design == "per-server" else (40, 6)  # the staged graph is 6x larger
        steps = [(a, x) for a, x in successors(params, state) if n % every == 0 or (n % rare == 0 and a.kind in RARE)]
        if not steps:
            continue
        solver.push()
        solver.add(equal(enc.frame(0), enc.const_state(state)))
        for action, expected in steps:
            solver.push()
            solver.add(equal(enc.action(0), enc.const_action(action)))
            assert solver.check() == z3.sat, (state, action)
            model = solver.model()
            assert enc.state_of(model, 1) == expected.state, (state, action)
            violated = not no_valid_reap.check(params, state, action, expected)
            assert z3.is_true(model.eval(bad, model_completion=True)) == violated, (state, action)
            solver.pop()
            kinds.add(action.kind)
            checked += 1
        solver.pop()
    assert checked > 200
    assert {"reply", "arrive", "restore", "publish", "gc", "load", "lose", "crash", "tick"} <= kinds
    if design == "per-server":
        assert "reconnect" in kinds  # 2 of the staged graph's 5,000 steps: left to the random test
    else:
        assert {"adopt_reaper", "adopt_advice"} <= kinds


# Every stack preset, its variants and the proxies: each a rule set of its own.
STACK_GRAPHS = ["stacks/actioncable", "stacks/faye", "stacks/grpc", "stacks/mqtt", "stacks/phoenix",
                "stacks/python-websockets", "stacks/signalr", "stacks/socketio-2", "stacks/socketio-4",
                "variants/grpc-keepalive-10", "variants/socketio-4-recovery", "variants/socketio-4-recovery-2",
                "proxies/nginx-websockets", "proxies/nginx-websockets-ping-90"]


def _walk_graph(params: Params, limit: int = 500):
    """Every step of (every n-th state of) the one-client state graph: next state and every property formula.

    Returns the kinds of the steps checked, how many reap a valid client and how many were checked.
    """
    from stormcheck.checkers.bfs import explore
    from stormcheck.model.fleet import successors
    from stormcheck.properties.protocol import dead_session_reaped, rehandshake_reachable

    enc = Encoding(params)
    formulas = (enc.bad(0), enc.dead_reaped(0), enc.handshakes(0), enc.disagreement(0), enc.disagreement(1))
    search, _ = explore(params, (), keep_graph=True, stop_when_decided=False)
    solver = z3.Solver()
    solver.add(enc.param_constraints(), enc.trans(0))
    nodes = list(search.graph.nodes)
    every = 1 if len(nodes) < limit + 200 else len(nodes) // limit
    kinds, reaps, checked = set(), 0, 0
    for state in nodes[::every]:
        solver.push()
        solver.add(equal(enc.frame(0), enc.const_state(state)))
        for action, expected in successors(params, state):
            solver.push()
            solver.add(equal(enc.action(0), enc.const_action(action)))
            assert solver.check() == z3.sat, (state, action)
            model = solver.model()
            assert enc.state_of(model, 1) == expected.state, (state, action)
            got = [z3.is_true(model.eval(f, model_completion=True)) for f in formulas]
            want = [not no_valid_reap.check(params, state, action, expected),
                    dead_session_reaped.check(params, state, action, expected),
                    rehandshake_reachable.check(params, state, action, expected),
                    not parameter_agreement.check(params, state), not parameter_agreement.check(params, expected.state)]
            assert got == want, (state, action)
            kinds.add(action.kind)
            reaps += got[0]
            checked += 1
            solver.pop()
        solver.pop()
    return kinds, reaps, checked


@pytest.mark.slow
@pytest.mark.parametrize("name", ROLLOUT_GRAPHS := ["rollouts/actioncable-beat-10", "rollouts/faye-timeout-101",
                                                    "rollouts/mqtt-keepalive-120", "rollouts/phoenix-heartbeat-90",
                                                    "rollouts/python-websockets-ping-60",
                                                    "rollouts/signalr-keepalive-60", "rollouts/socketio-2-ping-60",
                                                    "rollouts/socketio-4-ping-60",
                                                    "rollouts/socketio-4-live-ping-60"])
def test_every_step_of_a_rollout_state_graph(name):
    """Every step of each shipped rollout's one-client state graph (mqtt's 4,295 states sampled):
    launch, restarts, live changes, releases and the start of each phase, held to the model."""
    from stormcheck.model.scenario import load_scenario

    params = load_scenario(name).params
    kinds, reaps, checked = _walk_graph(params)
    assert {"reply", "arrive", "reconnect", "gc", "crash", "tick", "launch"} <= kinds, kinds
    phases = params.rollout.phases
    expected = {"upgrade" if p.side == "clients" else "reconfigure" if p.change == "live" else "restart"
                for p in phases}
    assert expected <= kinds, (expected, kinds)  # every phase's own kind is among the steps checked
    assert checked > 300  # 7,218 steps over the nine rollouts
    if name in ("rollouts/faye-timeout-101", "rollouts/phoenix-heartbeat-90", "rollouts/signalr-keepalive-60"):
        assert reaps > 0  # the unsafe orders' valid reaps are among the steps checked


@pytest.mark.slow
@pytest.mark.parametrize("name", STACK_GRAPHS)
def test_every_step_of_a_stack_state_graph(name):
    """Every step of the one-client state graph of each stack preset: next state, and every property formula.

    The presets are where each heartbeat rule is used as documented (held or
    answered heartbeats, every interval and cutoff source, local stores with
    their half-open sockets, ``in-use`` intervals, client judges, proxies, a
    minimum spacing, resumption, the published Faye stack); the variants
    and the broken proxy reach the reaps a safe preset never makes.
    """
    from dataclasses import replace

    from stormcheck.model.scenario import load_scenario

    params = replace(load_scenario(name).params, clients=1)
    # Every state up to 700; above that (grpc-keepalive-10 has 3,016) every n-th of about 500.
    kinds, reaps, _ = _walk_graph(params, limit=500)
    assert {"reply", "arrive", "reconnect", "gc", "lose", "crash", "tick"} <= kinds
    if name.startswith("proxies/"):
        assert "expire" in kinds
    if name in ("variants/grpc-keepalive-10", "variants/socketio-4-recovery-2", "proxies/nginx-websockets-ping-90"):
        assert reaps > 0  # the broken variants' valid reaps are among the steps checked


# ---------------------------------------------------------------- the one-client system (env=True)


@lru_cache(maxsize=None)
def env_encoded(params: Params):
    enc = Encoding(params, env=True)
    return enc, enc.trans(0)


def alone(state, c: int = 0):
    """Client `c` of `state` with the servers and budgets: what the one-client system sees."""
    return state._replace(clients=(state.clients[c],))


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn_steps())
def test_every_fleet_step_is_a_step_of_each_client_against_the_environment(drawn):
    """Proofs over the one-client system cover fleets of any size only if this holds.

    For every enabled step of a (1- or 2-client) fleet, what each client sees
    before and after is a step of the one-client system (the environment's
    move standing for the other clients).
    """
    params, state, action, enabled = drawn
    if not enabled:
        return
    note(f"design {params.design.name}, state {state}, action {action}")
    enc, trans = env_encoded(params)
    nxt = step(params, state, action).state
    for c in range(params.clients):
        if alone(state, c) == alone(nxt, c):
            # Invisible to c (another client's reply, say): the one-client
            # system need not move, and an invariant over its reachable
            # states is untouched by a step that changes nothing it sees.
            continue
        s = z3.Solver()
        s.add(enc.param_constraints(), trans, equal(enc.frame(0), enc.const_state(alone(state, c))),
              equal(enc.frame(1), enc.const_state(alone(nxt, c))))
        assert s.check() == z3.sat, (c, action)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_symbolic_parameters_agree_with_the_point_fleet(data):
    """With ranged parameters pinned to a drawn point, the encoding steps like the model at that point.

    This holds the adjuster's formula (JavaScript rounding as integer
    division), the symbolic RTT choices, clock offsets, fault durations and
    age cap to their Python definitions.
    """
    from hypothesis import assume

    from stormcheck.model.scenario import ScenarioError, concrete_config, load_scenario, scenario_from_dict

    ranges = {"timeout": (20, 90), "interval": (0, 9), "rtt_max": (1, 4), "skew": (-2, 2),
              "load_ms": (6000, 90000), "loss_duration": (5, 90), "cut_duration": (5, 150)}
    base = load_scenario("gitter-2015", design=data.draw(st.sampled_from(sorted(ENCODED.keys() & DESIGNS.keys()))))
    point = {k: data.draw(st.integers(*r), label=k) for k, r in ranges.items() if k != "skew"}
    point["skew"] = data.draw(st.lists(st.integers(*ranges["skew"]), min_size=3, max_size=3), label="skew")
    config = concrete_config(base.config, point)
    config["faults"]["client_cut"] = 1
    params = scenario_from_dict(config, "test").params
    enc = Encoding(params, ranges=ranges, threshold_ms=config["load"]["threshold_ms"])
    state = data.draw(st.sampled_from(initial_states(params)))
    for _ in range(data.draw(st.integers(0, 30))):
        state = step(params, state, data.draw(st.sampled_from(actions(params, state)))).state
    action = data.draw(st.sampled_from(actions(params, state)))
    s = z3.Solver()
    pins = [t == v for key, terms in enc.base.items()
            for t, v in zip(terms, point[key] if key == "skew" else [point[key]])]
    s.add(enc.param_constraints(), *pins, equal(enc.frame(0), enc.const_state(state)),
          equal(enc.action(0), enc.const_action(action)), enc.trans(0))
    assert s.check() == z3.sat
    assert enc.state_of(s.model(), 1) == step(params, state, action).state
    # T/I of every level as the model computes them.
    m = s.model()
    assert [(m.eval(t).as_long(), m.eval(i).as_long()) for t, i in zip(enc.T, enc.I)] == \
        [(lv.timeout, lv.interval) for lv in params.levels]


# ---------------------------------------------------------------- rollouts (checkers/z3_rollout.py)

ROLLOUT_BASES = ("rollouts/actioncable-beat-10", "rollouts/faye-timeout-101", "rollouts/mqtt-keepalive-120",
                 "rollouts/phoenix-heartbeat-90", "rollouts/python-websockets-ping-60",
                 "rollouts/signalr-keepalive-60", "rollouts/socketio-2-ping-60", "rollouts/socketio-4-ping-60",
                 "rollouts/socketio-4-live-ping-60")


@lru_cache(maxsize=None)
def rollout_fleet(base: str, order: int, clients: int, batch: int, pace: int, pickup: str, spread: int,
                  change: str, restart: int, cut: int) -> Params:
    """A shipped rollout with its phases redrawn: one of the orders `plan` tries, with drawn pace and pick-up."""
    from dataclasses import replace

    from stormcheck.checkers.plan import candidate_orders
    from stormcheck.model.scenario import load_scenario

    params = load_scenario(base).params
    orders = candidate_orders(params)
    phases = tuple(
        replace(p, batch=min(batch, params.servers), pace=pace, change=change) if p.side == "servers"
        else replace(p, pickup=pickup, spread=spread if pickup == "release" else 0)
        for p in orders[order % len(orders)])
    return replace(params, clients=clients, rollout=replace(params.rollout, phases=phases, restart=restart),
                   faults=Faults(server_loss=1, loss_duration=30, client_crash=1, client_cut=cut, cut_duration=40))


def rollout_actions(params: Params, state) -> list[Action]:
    """`every_action`, and every rollout action with every value a state of this fleet could give it."""
    acts = every_action(params, state) + [Action("launch")]
    acts += [Action(k, server=s) for k in ("restart", "reconfigure") for s in range(params.servers)]
    for c in range(params.clients):
        acts += [Action("upgrade", client=c)]
        acts += [Action("reconnect", client=c, server=s, value=v) for s in range(params.servers) for v in (0, 1)]
    timers = {state.rollout - 1, state.rollout, state.rollout + 1}
    return acts + [Action("tick", value=t) for t in timers if t > 0]


@st.composite
def rollout_steps(draw):
    params = rollout_fleet(
        draw(st.sampled_from(ROLLOUT_BASES)), draw(st.integers(0, 5)), draw(st.integers(1, 2)),
        draw(st.integers(1, 2)), draw(st.sampled_from([0, 30])), draw(st.sampled_from(["release", "advice",
                                                                                         "reconnect"])),
        draw(st.sampled_from([0, 50])), draw(st.sampled_from(["restart", "live"])), draw(st.sampled_from([0, 5])),
        draw(st.integers(0, 1)))
    state = draw(st.sampled_from(initial_states(params)))
    for _ in range(draw(st.integers(0, 50))):
        enabled = actions(params, state)
        # Rollout steps first half the time, so that every phase is reached.
        rollout = [a for a in enabled if a.kind in ("launch", "restart", "reconfigure", "upgrade")]
        pool = rollout if rollout and draw(st.booleans()) else enabled
        state = step(params, state, draw(st.sampled_from(pool))).state
    enabled = actions(params, state)
    candidates = enabled if draw(st.booleans()) else rollout_actions(params, state)
    # Half the time a rollout kind, where the candidates have one: the other kinds are drawn above too.
    rollout = [a for a in candidates if a.kind in ("launch", "restart", "reconfigure", "upgrade")]
    candidates = rollout if rollout and draw(st.booleans()) else candidates
    kind = draw(st.sampled_from(sorted({a.kind for a in candidates})))
    action = draw(st.sampled_from([a for a in candidates if a.kind == kind]))
    return params, state, action, action in enabled


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rollout_steps())
def test_rollout_transition_formula_agrees_with_step(drawn):
    """Launch, restarts in batches at a pace, live changes, releases, pick-ups and `_settle`, held to the model."""
    params, state, action, enabled = drawn
    note(f"heartbeat {params.heartbeat}, rollout {params.rollout}, state {state}, action {action}, enabled {enabled}")
    event(f"{action.kind} {'enabled' if enabled else 'disabled'}")
    event(f"rollout marker {state.rollout if state.rollout <= 0 else 'counting'}")
    agrees_with_step(params, state, action, enabled)


def test_a_seeded_slip_in_a_rollout_rule_is_caught(monkeypatch):
    """The differential check is not vacuous: a restart that forgets to drop its server's sockets disagrees."""
    from stormcheck.checkers import z3_encoding

    params = rollout_fleet("rollouts/faye-timeout-101", 0, 1, 1, 30, "release", 0, "restart", 5, 0)
    state = step(params, initial_states(params)[0], Action("launch")).state
    action = Action("restart", server=state.clients[0].server)
    expected = step(params, state, action).state
    assert expected.clients[0].phase == "retry"
    for slip in (False, True):
        if slip:
            monkeypatch.setattr(z3_encoding.Encoding, "drop_sockets", lambda self, st, s: st)
        enc = Encoding(params)
        s = solver_at(enc, enc.trans(0), state, action)
        assert s.check() == z3.sat
        assert (enc.state_of(s.model(), 1) == expected) == (not slip)


def _others_done(params: Params, state, c: int) -> bool:
    """The clients other than `c` do not hold a clients phase back (`SState.others`; True without one)."""
    if not any(p.side == "clients" for p in params.rollout.phases):
        return True
    return all(not cl.session or cl.session.hs_level >= 1 or cl.phase == "crashed"
               for i, cl in enumerate(state.clients) if i != c)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rollout_steps())
def test_every_rollout_step_is_a_step_of_each_client_against_the_environment(drawn):
    """Proofs of rollouts over the one-client system cover fleets of any size only if this holds."""
    params, state, action, enabled = drawn
    if not enabled:
        return
    enc, trans = env_encoded(params)
    nxt = step(params, state, action).state
    for c in range(params.clients):
        pre = enc.const_state(alone(state, c), _others_done(params, state, c))
        post = enc.const_state(alone(nxt, c), _others_done(params, nxt, c))
        if alone(state, c) == alone(nxt, c) and _others_done(params, state, c) == _others_done(params, nxt, c):
            continue
        s = z3.Solver()
        s.add(enc.param_constraints(), trans, equal(enc.frame(0), pre), equal(enc.frame(1), post))
        assert s.check() == z3.sat, (c, action)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_ranged_rollout_pinned_to_a_point_steps_like_the_model_there(data):
    """`plan --engine symbolic` proves orders over [ranges]: A's T/I, the RTT and the fault durations are
    symbols there, while configuration B stays the rollout's own (not an offset from A)."""
    from hypothesis import assume

    from stormcheck.model.scenario import ScenarioError, concrete_config, load_scenario, scenario_from_dict

    ranges = {"timeout": (20, 90), "interval": (0, 15), "rtt_max": (1, 4), "cut_duration": (5, 150)}
    base = load_scenario(data.draw(st.sampled_from(ROLLOUT_BASES)))
    point = {k: data.draw(st.integers(*r), label=k) for k, r in ranges.items()}
    config = concrete_config(base.config, point)
    config["faults"]["client_cut"] = 1
    config["faults"]["cut_duration"] = point["cut_duration"]
    try:
        params = scenario_from_dict(config, "test").params
    except ScenarioError:  # a draw where B equals A, say: not a fleet
        assume(False)
    enc = Encoding(params, ranges=ranges)
    state = data.draw(st.sampled_from(initial_states(params)))
    for _ in range(data.draw(st.integers(0, 40))):
        state = step(params, state, data.draw(st.sampled_from(actions(params, state)))).state
    action = data.draw(st.sampled_from(actions(params, state)))
    s = z3.Solver()
    pins = [t == point[key] for key, terms in enc.base.items() for t in terms]
    s.add(enc.param_constraints(), *pins, equal(enc.frame(0), enc.const_state(state)),
          equal(enc.action(0), enc.const_action(action)), enc.trans(0))
    assert s.check() == z3.sat
    m = s.model()
    assert enc.state_of(m, 1) == step(params, state, action).state
    assert [(m.eval(t).as_long(), m.eval(i).as_long()) for t, i in zip(enc.T, enc.I)] == \
        [(lv.timeout, lv.interval) for lv in params.levels]
