"""Proofs by inductive invariant (checkers/z3_proof.py) over the one-client system.

The safe designs are proved for any number of clients, unbounded time and
every parameter in a range; the broken ones are not (a counterexample to
induction, never "proved"); and the proof is not vacuous: the invariant it
finds holds in every state the exhaustive engine reaches on a 2-client
fleet, and without its lemmas the safe design is not proved.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import z3

from stormcheck.checkers.bfs import explore
from stormcheck.checkers.z3_bmc import make_solver
from stormcheck.checkers.z3_encoding import Encoding, leaves
from stormcheck.checkers.z3_proof import LEMMAS, houdini, prove
from stormcheck.model.params import DESIGNS, Bounds, Faults
from stormcheck.model.scenario import load_scenario
from stormcheck.model.state import State


def make(ctx):
    return make_solver(seed=0, ctx=ctx)


@pytest.fixture(scope="module")
def gitter():
    return load_scenario("gitter-2015").params


@pytest.mark.parametrize("design", ["off", "per-session", "fleet-wide-staged"])
@pytest.mark.parametrize("prop", ["no_valid_reap", "parameter_agreement"])
def test_safe_designs_are_proved(gitter, design, prop):
    out = prove(gitter.with_design(DESIGNS[design]), prop, make)
    assert out.status == "proved", out
    assert "any number of clients, unbounded time" in out.covers


@pytest.mark.parametrize("design", ["per-server", "fleet-wide", "per-session-branch"])
def test_broken_designs_are_not_proved(gitter, design):
    out = prove(gitter.with_design(DESIGNS[design]), "no_valid_reap", make)
    assert out.status == "cti"
    # The counterexample to induction is a state with a valid client and a step that reaps it.
    assert out.cti.clients[0].phase in ("held", "waiting") and out.cti_action.kind in ("publish", "gc", "arrive")


RANGES = {"timeout": (40, 600), "interval": (0, 10), "rtt_max": (0, 5), "skew": (-2, 2),
          "load_ms": (6000, 200_000), "loss_duration": (1, 600), "cut_duration": (1, 600)}


def test_per_session_is_proved_for_every_value_in_range(gitter):
    params = replace(gitter.with_design(DESIGNS["per-session"]), faults=Faults(server_loss=1, client_crash=1, client_cut=1))
    out = prove(params, "no_valid_reap", make, ranges=RANGES)
    assert out.status == "proved", out
    assert "timeout in [40, 600]" in out.covers and "skew in [-2, 2]" in out.covers


def test_a_range_reaching_unsafe_values_gives_a_cti_with_its_parameters(gitter):
    # With T0 down to 10 and I0 up to 30, a refresh comes after the cutoff.
    out = prove(gitter.with_design(DESIGNS["per-session"]), "no_valid_reap", make,
                ranges={"timeout": (10, 120), "interval": (0, 30)})
    assert out.status == "cti"
    t0, i0 = out.cti_params["timeout"], out.cti_params["interval"]
    assert t0 + i0 + gitter.rtt_max >= 1.6 * t0 or t0 + 56 + i0 + 14 + gitter.rtt_max >= 1.6 * (t0 + 56)


def test_unknown_is_never_proved(gitter):
    out = prove(gitter.with_design(DESIGNS["off"]), "no_valid_reap",
                lambda ctx: make_solver(seed=0, rlimit=1, ctx=ctx))
    assert out.status == "unknown"


@pytest.mark.parametrize("name", ["gitter-2015", "stacks/faye", "stacks/grpc", "stacks/mqtt", "stacks/socketio-2",
                                  "stacks/socketio-4", "variants/socketio-4-recovery", "proxies/nginx-websockets"])
def test_the_invariant_holds_in_every_reachable_state_of_a_two_client_fleet(name):
    """Each client of a 2-client fleet, seen alone, satisfies the proof's invariant.

    The one-client system stands for fleets of any size; if the invariant
    excluded a state a real fleet reaches, the proof would be unsound. The
    stacks' rules (local stores with half-open sockets, a minimum spacing,
    resumption, extra judges, the published Faye stack) each keep other
    lemmas.
    """
    design = "per-session" if name == "gitter-2015" else None
    params = replace(load_scenario(name, design=design).params, clients=2)
    enc, solver = _one_client_system(params)

    kept, _ = houdini(enc, solver)
    inv = _at_point(enc, LEMMAS, kept)
    # The first 1,500 states breadth-first: every phase, reaps, both levels.
    search, _ = explore(params, (), Bounds(max_states=1500), stop_when_decided=False)
    frame = leaves(enc.frame(0))
    checked = 0
    for state in search.seen:
        for c in range(params.clients):
            alone = State((state.clients[c],), *state[1:])
            pairs = [(v, x) for v, x in zip(frame, leaves(enc.const_state(alone))) if not z3.is_int_value(v)]
            value = z3.simplify(z3.substitute(inv, *pairs))
            assert z3.is_true(value), alone
            checked += 1
    assert checked > min(1500, 2 * len(search.seen) - 1)


def test_without_the_refresh_bounds_the_safe_design_is_not_proved(gitter):
    """The lemmas carry the proof: drop the per-level refresh bounds and it fails."""
    import stormcheck.checkers.z3_proof as proof

    keep = dict(proof.LEMMAS)
    try:
        for name in list(proof.LEMMAS):
            if "recorded level" in name or "largest" in name:
                del proof.LEMMAS[name]
        out = prove(gitter.with_design(DESIGNS["per-session"]), "no_valid_reap", make)
    finally:
        proof.LEMMAS.clear()
        proof.LEMMAS.update(keep)
    assert out.status == "cti"


def _at_point(enc, lemmas: dict, kept) -> "z3.BoolRef":
    """The invariant of the `kept` lemmas over frame 0, at the scenario's point values."""
    inv = z3.And([lemmas[n](enc, enc.frame(0)) for n in kept])
    return z3.substitute(inv, *[(var, enc.num(value)) for var, value in enc._pins])


def _one_client_system(params):
    """The one-client system of `params` in a context of its own, and a maker of solvers over its parameters."""
    ctx = z3.Context()
    enc = Encoding(params, ctx=ctx, env=True)

    def solver():
        s = make_solver(ctx=ctx)
        s.add(enc.param_constraints())
        return s

    return enc, solver


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rollouts/mqtt-keepalive-120", "rollouts/python-websockets-ping-60",
                                  "rollouts/socketio-2-ping-60", "rollouts/socketio-4-ping-60",
                                  "rollouts/socketio-4-live-ping-60", "rollouts/phoenix-heartbeat-90",
                                  "rollouts/actioncable-beat-10 clients first"])
def test_a_rollouts_invariant_holds_in_every_reachable_state_of_a_two_client_fleet(name):
    """The same for rollouts, whose one-client system also lets the other clients hold a clients phase
    back or release it (`SState.others`, here what the other client really does). Phoenix as written is
    unsafe; its invariant (which does not prove it) must still hold wherever the fleet goes. ActionCable
    is also taken in the other order (its release first), which keeps the clients-first lemmas."""
    from stormcheck.checkers.plan import orders_to_check
    from stormcheck.checkers.plan_z3 import with_phases
    from stormcheck.checkers.z3_proof import lemmas_for

    sc = load_scenario(name.removesuffix(" clients first"))
    if name.endswith(" clients first"):
        sc = with_phases(sc, next(o for o in orders_to_check(sc.params) if o[0].side == "clients"))
    params = replace(sc.params, clients=2)
    enc, solver = _one_client_system(params)

    lemmas = lemmas_for(params)
    kept, _ = houdini(enc, solver, lemmas)
    assert any(n in kept for n in ("a live client's server is up", "the rollout marker is a marker or a countdown "
                                   "within the longest pace or window"))  # a rollout lemma carries weight
    inv = _at_point(enc, lemmas, kept)
    clients_phase = any(p.side == "clients" for p in params.rollout.phases)
    search, _ = explore(params, (), Bounds(max_states=1500), stop_when_decided=False)
    frame = leaves(enc.frame(0))
    checked = 0
    for state in search.seen:
        for c in range(params.clients):
            alone = State((state.clients[c],), *state[1:])
            other = state.clients[1 - c]
            others = not clients_phase or not other.session or other.session.hs_level >= 1 or other.phase == "crashed"
            consts = leaves(enc.const_state(alone, others))
            pairs = [(v, x) for v, x in zip(frame, consts) if not (z3.is_int_value(v) or z3.is_true(v))]
            assert z3.is_true(z3.simplify(z3.substitute(inv, *pairs))), alone
            checked += 1
    assert checked > min(1500, 2 * len(search.seen) - 1)


@pytest.mark.slow
def test_without_the_rollout_lemmas_no_rollout_is_proved(monkeypatch):
    """The rollout lemmas carry the rollouts' proofs: with the generic ones alone each safe rollout
    gets a counterexample to induction, never "proved"; with them, it is proved."""
    import stormcheck.checkers.z3_proof as proof

    cases = [("rollouts/mqtt-keepalive-120", "no_valid_reap"), ("rollouts/socketio-2-ping-60", "no_valid_reap"),
             ("rollouts/socketio-4-live-ping-60", "parameter_agreement")]
    for name, prop in cases:
        assert prove(load_scenario(name).params, prop, make).status == "proved", name
    monkeypatch.setattr(proof, "lemmas_for", lambda params: proof.LEMMAS)
    for name, prop in cases:
        assert prove(load_scenario(name).params, prop, make).status == "cti", name
