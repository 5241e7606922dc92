"""The symbolic state and action records of the Z3 encoding, and helpers over them.

A frame of the encoding (`checkers.z3_encoding`, "Variables") is a record
shaped like the Python state: `SState` of `SClient` and `SServer`, with
`SAction` for a step. These records and the small functions that compare,
select and rebuild them are shared by every part of the encoding (the
rules, the parameters, the properties, `checkers.z3_rollout`,
`checkers.z3_proof`) and know nothing of any one rule, so they sit apart
from it. The underscored names are the encoding's own shorthand, shared by
its parts and not meant beyond them.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, NamedTuple

import z3

from stormcheck.model.fleet import ACTIONS
from stormcheck.model.state import CRASHED, CUT, HELD, PHASES, REJOIN, RETRY, WAITING, State

__all__ = [
    "SState", "SClient", "SServer", "SAction", "PHASE", "KIND", "ENV", "STATE_FIELDS",
    "equal", "ite", "leaves", "select", "ceil_times",
]

PHASE = {p: i for i, p in enumerate(PHASES)}
KIND = {k: i for i, k in enumerate(ACTIONS)}
# The environment's move in the one-client system (``env=True``): not a model
# action, so it gets the next index.
ENV = len(ACTIONS)
_H, _W, _R, _CUT, _X, _J = (PHASE[p] for p in (HELD, WAITING, RETRY, CUT, CRASHED, REJOIN))


class SClient(NamedTuple):
    phase: Any
    server: Any
    timer: Any
    has: Any  # the session exists (False: ``()``)
    age: Any
    stamp: Any
    hs: Any  # Session.hs_level
    ref: Any  # Session.ref_level
    strikes: Any  # Session.strikes: a constant 0 unless the fleet has a minimum spacing


class SServer(NamedTuple):
    down: Any
    target: Any
    adv: Any
    reap: Any
    hot: Any


class SState(NamedTuple):
    clients: tuple
    servers: tuple
    tuner: Any  # State.tuner_timer
    losses: Any  # State.losses_left
    crashes: Any  # State.crashes_left
    cuts: Any  # State.cuts_left
    rollout: Any  # State.rollout: a constant NOT_BEGUN in a fleet without a rollout
    others: Any  # one-client system only: the other clients no longer hold a clients phase back (z3_rollout)


# `SState`'s scalar fields and the `State` fields they hold, by name.
STATE_FIELDS = {"tuner": "tuner_timer", "losses": "losses_left", "crashes": "crashes_left", "cuts": "cuts_left",
                "rollout": "rollout"}
assert tuple(STATE_FIELDS) == SState._fields[2:-1]
assert set(State._fields) - {"clients", "servers"} == set(STATE_FIELDS.values()), \
    "a State field the encoding does not hold"


class SAction(NamedTuple):
    kind: Any
    client: Any
    server: Any
    value: Any


# ---------------------------------------------------------------- record helpers


def equal(a, b) -> z3.BoolRef:
    """Field-wise equality of two records (nested tuples of terms)."""
    if isinstance(a, tuple):
        return z3.And([equal(x, y) for x, y in zip(a, b, strict=True)])
    return a == b


def ite(cond, a, b):
    """Field-wise ``If(cond, a, b)`` of two records of the same shape."""
    if not isinstance(a, tuple):
        return z3.If(cond, a, b)
    fields = [ite(cond, x, y) for x, y in zip(a, b, strict=True)]
    return type(a)(*fields) if hasattr(a, "_fields") else tuple(fields)


def leaves(rec) -> list:
    """The terms of a record, depth first (the order `equal` pairs them in)."""
    if isinstance(rec, tuple):
        return [x for item in rec for x in leaves(item)]
    return [rec]


def select(values: list, index) -> Any:
    """``values[index]`` for a symbolic index (the last value for any other index)."""
    out = values[-1]
    for i in range(len(values) - 2, -1, -1):
        out = z3.If(index == i, values[i], out)
    return out


def _max(values: list):
    out = values[0]
    for v in values[1:]:
        out = z3.If(v > out, v, out)
    return out


def _min(values: list):
    out = values[0]
    for v in values[1:]:
        out = z3.If(v < out, v, out)
    return out


def _is_value(t) -> bool:
    """`t` is a constant (an Int or Bool value), not a variable."""
    return z3.is_int_value(t) or z3.is_true(t) or z3.is_false(t)


def _in(x, options) -> z3.BoolRef:
    return z3.Or([x == o for o in options])


def _with_client(st: SState, c: int, cl: SClient) -> SState:
    return st._replace(clients=st.clients[:c] + (cl,) + st.clients[c + 1:])


def _with_server(st: SState, s: int, srv: SServer) -> SState:
    return st._replace(servers=st.servers[:s] + (srv,) + st.servers[s + 1:])


def ceil_times(mult: Fraction, t):
    """``ceil(mult * t)`` for an integer term `t` >= 0 (integer division by a constant)."""
    return (mult.numerator * t + mult.denominator - 1) / mult.denominator
