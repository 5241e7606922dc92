"""Differential tests: the Z3 encoding (checkers/z3_encoding.py) against model/fleet.py.

Hypothesis draws a small fleet (3 servers, 1 or 2 clients, levels (45, 1) and
(101, 15), every encoded design), a reachable state (a random walk with the
model's own `actions`/`step` from one of its initial states) and an action,
enabled or not. With frame 0 fixed to the state and the action fixed:

* the transition formula is satisfiable exactly when the action is enabled;
* frame 1 is then unique and equals ``fleet.step(...).state``;
* the encoded bad step agrees with `properties.protocol.no_valid_reap`, and
  the encoded state predicate with `parameter_agreement`, before and after.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import z3
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from stormcheck.checkers.z3_encoding import Encoding, equal
from stormcheck.model.fleet import actions, initial_states, step
from stormcheck.model.params import DESIGNS, Design, Faults, Level, Params
from stormcheck.model.state import Action
from stormcheck.properties.protocol import no_valid_reap, parameter_agreement

LEVELS = (Level(0, 45, 1), Level(40_000, 101, 15))
ENCODED = {name: d for name, d in DESIGNS.items() if d.tuner != "fleet-staged"}
# A fleet-wide change that takes 30 s to reach every server: exercises adopt,
# deadline and the tuner timer.
ENCODED["fleet-wide-delayed"] = Design("fleet-wide-delayed", tuner="fleet", propagation_delay=30)


@lru_cache(maxsize=None)
def fleet(design: str, clients: int, trigger: str, cut: int, skew: tuple) -> Params:
    return Params(servers=3, clients=clients, levels=LEVELS, design=ENCODED[design], load_trigger=trigger,
                  skew=skew, faults=Faults(server_loss=1, client_crash=1, client_cut=cut))


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
    for s in range(S):
        acts += [Action(k, server=s) for k in ("restore", "publish", "gc", "adopt", "lose")]
        acts += [Action("load", server=s, value=v) for v in range(L)]
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
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn_steps())
def test_transition_formula_agrees_with_step(drawn):
    params, state, action, enabled = drawn
    note(f"design {params.design.name}, state {state}, action {action}, enabled {enabled}")
    enc, trans, bad, disagree = encoded(params)
    event(f"{action.kind} {'enabled' if enabled else 'disabled'}")
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


def test_staged_design_is_refused_with_a_message():
    with pytest.raises(ValueError, match="fleet-staged tuner is not encoded"):
        Encoding(Params(design=DESIGNS["fleet-wide-staged"]))


def test_every_step_of_the_2015_state_graph():
    """Enabled steps from the states the exhaustive engine reaches on the 2015 fleet.

    Random walks rarely reach old sessions; the state graph (one state per
    symmetry class) has them all, and every reap.
    """
    RARE = ("publish", "gc", "restore")
    from stormcheck.checkers.bfs import explore
    from stormcheck.model.fleet import successors

    params = fleet("per-server", 1, "reconnects", 0, ())
    enc, trans, bad, _ = encoded(params)
    search, _ = explore(params, (), keep_graph=True, stop_when_decided=False)
    solver = z3.Solver()
    solver.add(enc.param_constraints(), trans)
    kinds, checked = set(), 0
    for n, state in enumerate(search.graph.nodes):
        # Every step of every 10th state, and the reaps and restores of every 4th: the
        # whole graph (1,236 states, 6,429 steps) would take over a minute.
        steps = [(a, x) for a, x in successors(params, state) if n % 10 == 0 or (n % 4 == 0 and a.kind in RARE)]
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
    assert {"reply", "arrive", "reconnect", "restore", "publish", "gc", "load", "lose", "crash", "tick"} <= kinds
