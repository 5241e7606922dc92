"""The model's transition relation in Z3, over frame-indexed variables.

This module is the only place where the symbolic engine knows the protocol.
It re-encodes `stormcheck.model.fleet` for a fleet with a fixed number of
clients and servers; `tests/test_z3_encoding.py` holds it to the Python
transition function (Hypothesis draws reachable states and actions, and both
sides must agree on enabledness and on the next state).

Variables
---------
Frame ``k`` holds every field of `State` as a Z3 term, in records shaped like
the Python ones (`SState`, `SClient`, `SServer`), so each action below reads
like its Python twin, ``_replace`` included; `STATE_FIELDS` pairs the scalar
fields by name. `State.rollout`, the rollout's marker, is a term only in a
fleet with a rollout (elsewhere the constant `NOT_BEGUN`); ``others`` (one
Bool) exists only in the one-client system of a fleet whose rollout has a
clients phase (`checkers.z3_rollout`), and is the constant True elsewhere.

* a client's phase is a small Int enum (index in `PHASES`), its server an Int
  (-1: none), its session a Bool flag ``has`` (False for ``()``) plus four
  Ints that are 0 whenever ``has`` is False, and a fifth, the strike count,
  that is a variable only in a fleet with a minimum spacing (elsewhere the
  constant 0: no variable, nothing for the solver to carry);
* a server's ``hot`` is a Bool, everything else an Int.

Step ``k`` (frame k -> k+1) has action variables ``kind`` (index in
`ACTIONS`), ``client``, ``server`` and ``value``, -1 when unused.

Formulas: `Encoding.init` (frame 0), `Encoding.trans` (step k), and the
properties the engine checks, `Encoding.bad` (step k reaps a valid client:
``no_valid_reap`` fails) and `Encoding.disagreement` (frame k breaks
``parameter_agreement``). Each action is one method mirroring its function
in ``fleet.py`` (a comment names it): guard first, then the next frame.

Parameters
----------
Every parameter the encoding reads is a term of `Encoding.sym`: each level's
timeout and interval ``T_l`` / ``I_l``, each server's clock offset, the
largest RTT, the fault durations, and what follows from them (the age cap,
the retry wait, the largest timeout, the clock gap). By default each is
pinned to the scenario's value (`Encoding.param_constraints`). Given
``ranges`` (a scenario's ``[ranges]``), the ranged ones become symbolic
constants ``T0``, ``I0``, ``rtt_max``, ``skew_s``, ``load_ms``,
``loss_duration``, ``cut_duration`` constrained to their ranges, and every
level's ``T_l`` / ``I_l`` is the advice adjuster's formula over them
(`params.adjuster_advice`, JavaScript rounding as integer division). The
cutoff multipliers stay concrete fractions (no range key covers them, and a
symbolic multiplier times a symbolic timeout is not linear).

Two modes
---------
* The fleet as it is (default): every client of `Params.clients`, exactly
  the model's transitions. Counterexamples come from here.
* ``env=True``: one client against an environment standing for any number of
  other clients. Other clients touch a client only through the servers: a
  re-handshake on a server marks it ``hot`` (so its load may rise); their
  sessions enable reaper sweeps, which destroy this client's session only if
  it is expired anyway; their countdowns split time into shorter ticks; their
  faults use up the shared fault budgets. So the environment may, at any
  moment, mark an up server hot or use up a crash or cut (action ``env``), a
  publish or GC sweep may run on any up server, and a tick may be any length
  up to this client's and the servers' countdowns. Every run of a fleet of
  any size, seen from one of its clients, is a run of this one-client system
  (tests/test_z3_encoding.py checks it step by step). Proofs use it.

Stacks
------
Every rule of a ``[heartbeat]`` table is encoded as `fleet.py` states it:
held or answered heartbeats (`Encoding.hold`), each ``interval_from``
(`reply_level`) and ``cutoff_from`` (`judged_level`), shared or local
stores (`_judges`: only the holder judges; a crashed or cut-off client's
half-open socket stays with its server, `_half_open`; a new socket is a new
session, `_reconnected`), path subsets, ``m x T + k x I`` cutoffs with the
judged level's I or the one in use (`_reaps`), a minimum spacing with its
strike count (`_connect_cases`) and resumption (`_detached`, `_resume`);
the extra judges of ``[[judge]]`` and ``[[proxy]]`` (`_expire`); and the
published Faye stack (a publish that drops a queue, a retry on the old id,
a 401 followed after the interval in `REJOIN`).

Rollouts
--------
A `Params.rollout` (phases, restarts, live changes, releases, pick-ups) is
encoded by `checkers.z3_rollout`, which this class asks for each rollout
rule, for the level a new session declares and for `_settle`, applied after
every step as `fleet._apply` does.

Left out
--------
Time in milliseconds, and whatever the model gains later that the encoding
does not know (a feature `Params.extensions` names, any field of a parameter
record away from its default): `check_encodable` refuses it with a "not
encoded" message naming the scenario feature, and the engine reports
inconclusive rather than mis-model it.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, NamedTuple

import z3

from stormcheck.model.fleet import ACTIONS, DELETE_FIRST, FLUSH_FIRST, canonical, initial_states
from stormcheck.model.params import TIME_UNITS, Design, Faults, Heartbeat, Judge, Params
from stormcheck.model.rollout import Phase, Rollout
from stormcheck.properties.core import NotEncoded
from stormcheck.model.rollout import NOT_BEGUN
from stormcheck.model.state import (CRASHED, CUT, HELD, NO_PING, PHASES, REJOIN, RETRY, WAITING, Action, Client, Server,
                                    Session, State)

__all__ = [
    "Encoding", "SState", "SClient", "SServer", "SAction", "PHASE", "KIND", "ENV", "RANGED",
    "equal", "ite", "leaves", "select", "ceil_times", "check_encodable", "not_encoded", "ENCODED", "REFUSED",
    "STATE_FIELDS", "REAPS",
]

PHASE = {p: i for i, p in enumerate(PHASES)}
KIND = {k: i for i, k in enumerate(ACTIONS)}
# The environment's move in the one-client system (``env=True``): not a model
# action, so it gets the next index.
ENV = len(ACTIONS)
_H, _W, _R, _CUT, _X, _J = (PHASE[p] for p in (HELD, WAITING, RETRY, CUT, CRASHED, REJOIN))
# Every path a `Reaped` event can name: the reaper paths, the extra judges'
# sides, one early heartbeat too many, and a session gone past its resume window.
REAPS = ("publish", "gc", "existence", "client", "proxy", "spacing", "resume")
# The [ranges] keys the encoding can make symbolic. `servers` is a loop over
# fleets, not a term; `clients` is covered by the one-client system.
RANGED = ("timeout", "interval", "rtt_max", "skew", "load_ms", "loss_duration", "cut_duration")

# Fields of the parameter records the encoding reads. A field the model gains
# later is refused unless it keeps its default (`check_encodable`): a new
# feature must never be silently mis-modelled as the old behaviour.
_KNOWN = {
    Params: {"servers", "clients", "t0", "i0", "levels", "load_servers", "load_trigger", "rtt", "skew", "retry",
             "publish_mult", "gc_mult", "design", "faults", "heartbeat", "judges", "publish_expired", "after_drop",
             "after_401", "unit", "rollout"},
    Design: {"name", "tuner", "propagation_delay", "judge", "record", "reply_advice", "session_paths"},
    Faults: {"server_loss", "loss_duration", "loss_servers", "client_crash", "client_cut", "cut_duration"},
    Heartbeat: {"hold", "interval_from", "cutoff_from", "store", "paths", "interval_multiplier", "interval_term",
                "min_spacing", "strikes", "resume_window"},
    Judge: {"name", "side", "source", "multiplier", "interval_multiplier", "timeout"},
    Rollout: {"phases", "restart"},
    Phase: {"side", "part", "batch", "pace", "pickup", "spread", "change"},
}


_INSTEAD = "use the exhaustive or hypothesis engine for this fleet"

# What this encoding covers, by the model's rule table (`fleet.RULES`): the
# kinds it states (each has an encoder below, held to the Python rule by the
# differential tests) and, for every other kind, the scenario feature that
# enables it, which `check_encodable` refuses by name before a solver starts.
# tests/test_rules.py fails when a kind is in neither.
ENCODED = ("reply", "arrive", "reconnect", "restore", "deadline", "publish", "gc", "load", "adopt",
           "adopt_reaper", "adopt_advice", "lose", "crash", "cut", "tick", "expire",
           "launch", "restart", "upgrade", "reconfigure")
REFUSED: dict[str, str] = {}

# The generalisations of Faye's model (`Params.extensions`) this encoding
# states, in the model's own words: every rule of a `[heartbeat]` table, the
# extra judges (`[[judge]]`, `[[proxy]]`), the published Faye stack,
# configuration rollouts (live changes included) and a clock in milliseconds
# (every duration is an integer in the fleet's unit; only the ranged adjuster
# converts, as `adjuster_advice` does). Any other one the model names (one it
# gains later) is refused.
_ENCODED_FEATURES = frozenset(Params(
    heartbeat=Heartbeat(hold="none", store="local", interval_term="in-use", min_spacing=1, resume_window=1),
    judges=(Judge("client", "client", "handshake"), Judge("proxy", "proxy", "fixed", timeout=1)), unit="ms",
    rollout=Rollout((Phase("servers", change="live"),)),
).extensions()) | frozenset(Params(publish_expired="drop-queue", after_drop="same-id", after_401="interval").extensions())


def not_encoded(params: Params) -> tuple[str, ...]:
    """The scenario features of `params` this encoding does not state (empty: it encodes the fleet)."""
    return tuple(f for f in params.extensions() if f not in _ENCODED_FEATURES)


def check_encodable(params: Params) -> None:
    """Raise `NotEncoded` for what the encoding does not cover, named as the scenario states it.

    First the generalisations the model names itself (`Params.extensions`)
    that the encoding does not state (`not_encoded`), then any field of a
    parameter record this encoding does not read.
    """
    if not_encoded(params):
        raise NotEncoded("symbolic engine", "; ".join(not_encoded(params)), _INSTEAD)
    records = [(Params, params), (Design, params.design), (Faults, params.faults), (Heartbeat, params.heartbeat)]
    records += [(Judge, j) for j in params.judges]
    if params.rollout is not None:
        records += [(Rollout, params.rollout)] + [(Phase, p) for p in params.rollout.phases]
    for record, value in records:
        for f in dataclasses.fields(record):
            if f.name in _KNOWN[record]:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            if default is dataclasses.MISSING or getattr(value, f.name) != default:
                raise NotEncoded("symbolic engine", f"{record.__name__}.{f.name} = {getattr(value, f.name)!r}", _INSTEAD)


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


class Encoding:
    """Init, transition and property formulas of one fleet's model.

    Parameters
    ----------
    params : Params
        The fleet (its point values; ranged keys are replaced by symbols).
    ctx : z3.Context, optional
        None: z3's main context; a fresh one makes a seeded run reproducible.
    ranges : dict, optional
        ``{key: (low, high)}`` for keys of `RANGED`: those parameters become
        symbolic constants within the range.
    threshold_ms : int
        The adjuster's threshold (needed only when ``load_ms`` is ranged).
    env : bool
        The one-client system standing for fleets of any size (module
        docstring, "Two modes").

    Examples
    --------
    >>> from stormcheck.model.params import Params
    >>> enc = Encoding(Params(clients=1))
    >>> s = z3.Solver(); s.add(enc.init(), enc.trans(0))
    >>> s.check()
    sat
    """

    def __init__(self, params: Params, ctx: z3.Context | None = None, *, ranges: dict | None = None,
                 threshold_ms: int = 5000, env: bool = False) -> None:
        check_encodable(params)
        ranges = dict(ranges or {})
        unknown = sorted(set(ranges) - set(RANGED))
        if unknown:
            raise NotEncoded("symbolic engine", f"[ranges] {', '.join(unknown)}",
                             f"it ranges {', '.join(RANGED)}")
        if env:
            params = dataclasses.replace(params, clients=1)
        self.params, self.ctx, self.ranges, self.env = params, ctx, ranges, env
        self.threshold_ms = threshold_ms
        self._frames: dict[int, SState] = {}
        self._actions: dict[int, SAction] = {}
        self._trans0: z3.BoolRef | None = None
        self._build_params()
        from .z3_rollout import RolloutRules  # the rollout rules, stated beside this module

        self.ro = RolloutRules(self) if params.rollout is not None else None

    # ------------------------------------------------------------ parameters

    def _build_params(self) -> None:
        p, r = self.params, self.ranges
        self.base: dict[str, Any] = {}  # key -> the symbolic constant (ranged keys only)

        def sym(key: str, name: str, point: int):
            if key in r:
                v = self.var(name)
                self.base.setdefault(key, []).append(v)
                return v
            return self.num(point)

        t0, i0 = sym("timeout", "T0", p.t0), sym("interval", "I0", p.i0)
        self.T, self.I = [], []
        top = len(p.levels) - 1
        for l, level in enumerate(p.levels):
            if l > 0 and p.rollout is not None:
                # Configuration B is the rollout's own, not an offset from A: pinned.
                self.T.append(self.var(f"T_{l}"))
                self.I.append(self.var(f"I_{l}"))
                continue
            if l == top and "load_ms" in r:
                avg = sym("load_ms", "load_ms", level.avg_ms)
                over = z3.If(avg > self.threshold_ms, avg - self.threshold_ms, 0)
                # adjuster_advice with JavaScript rounding: round(1.6 * over / 1000)
                # = floor((16 * over + 5000) / 10000), round(over / 2500) likewise;
                # whole seconds, counted in the fleet's unit.
                per = TIME_UNITS[p.unit]
                dt, di = per * ((16 * over + 5000) / 10000), per * ((2 * over + 2500) / 5000)
            else:
                dt, di = level.timeout - p.t0, level.interval - p.i0
            if "timeout" in r or "interval" in r or (l == top and "load_ms" in r):
                self.T.append(t0 + dt)
                self.I.append(i0 + di)
            else:
                # Kept as variables pinned by param_constraints, as before.
                self.T.append(self.var(f"T_{l}"))
                self.I.append(self.var(f"I_{l}"))
        self._pins = [(t, lv.timeout) for t, lv in zip(self.T, p.levels) if z3.is_const(t)] + [
            (i, lv.interval) for i, lv in zip(self.I, p.levels) if z3.is_const(i)]
        self.off = [sym("skew", f"skew_{s}", p.offset(s)) for s in range(p.servers)]
        self.rtt_max = sym("rtt_max", "rtt_max", p.rtt_max)
        self.loss_duration = sym("loss_duration", "loss_duration", p.faults.loss_duration)
        self.cut_duration = sym("cut_duration", "cut_duration", p.faults.cut_duration)
        self.retry_wait = p.retry + self.rtt_max  # what a dropped client waits before retrying
        self.t_max, self.t_min, self.i_max = _max(self.T), _min(self.T), _max(self.I)
        self.i_min = _min(self.I)
        # How long a server holds a heartbeat, per level (Params.hold): T, or 0 for a ping answered at once.
        self.H = list(self.T) if p.heartbeat.hold == "timeout" else [self.num(0)] * len(self.T)
        self.hold_max = _max(self.H)
        # The smallest RTT choice (`rtt_choices`: one below rtt_max counts only while it is below it).
        self.rtt_min = self.num(min(p.rtt)) if "rtt_max" not in r or len(p.rtt) == 1 else z3.If(
            self.num(p.rtt[0]) < self.rtt_max, self.num(p.rtt[0]), self.rtt_max)
        self.gap = _max(self.off) - _min(self.off) if "skew" in r else self.num(p.max_skew_gap)
        if r:
            self.age_cap = self._age_cap()
        else:
            self.age_cap = self.num(p.age_cap)

    def _age_cap(self):  # Params.age_cap, over symbolic levels
        p, n = self.params, range(len(self.T))
        in_use = p.heartbeat.interval_term == "in-use"
        cuts = [self.cutoff_age(path, self.T[i], self.I[j]) for path in p.heartbeat.paths for i in n
                for j in (n if in_use else (i,))]
        for judge in p.judges:
            cuts += [self.judge_age(judge, self.num(i)) for i in n]
        cuts += [self.num(p.heartbeat.min_spacing), self.num(p.heartbeat.resume_window)]
        return _max(cuts) + self.gap + 1

    def cutoff_age(self, path: str, timeout, interval):
        """The smallest whole age reaper `path` reaps at: ``ceil(m x T + k x I)`` (Params.reap_ages)."""
        m, k = self.params.multiplier(path), self.params.heartbeat.interval_multiplier
        den = m.denominator * k.denominator
        total = m.numerator * k.denominator * timeout + k.numerator * m.denominator * interval
        return (total + den - 1) / den

    def judge_age(self, judge, level):
        """The smallest whole age an extra judge closes a connection at, for a session told `level`."""
        if judge.source == "fixed":
            return self.num(judge.timeout)
        m, k = judge.multiplier, judge.interval_multiplier
        den = m.denominator * k.denominator
        total = m.numerator * k.denominator * select(self.T, level) + k.numerator * m.denominator * select(self.I, level)
        return (total + den - 1) / den

    def hold(self, level):  # Params.hold
        return select(self.H, level)

    def rtt_choices(self, value) -> z3.BoolRef:
        """`value` is one of the RTT choices (`concrete_config`: the largest replaced by ``rtt_max``)."""
        if "rtt_max" not in self.ranges:
            return _in(value, self.params.rtt)
        lower = [z3.And(value == x, x < self.rtt_max) for x in self.params.rtt[:-1]]
        return z3.Or([value == self.rtt_max] + lower)

    def param_constraints(self) -> z3.BoolRef:
        """Pin each unranged level's T/I to the scenario's values; keep ranged ones in range."""
        cs = [t == v for t, v in self._pins]
        for key, terms in self.base.items():
            lo, hi = self.ranges[key]
            cs += [z3.And(v >= lo, v <= hi) for v in terms]
        if "load_ms" in self.ranges and len(self.params.levels) > 1:
            # The highest level stays above the one below it (scenario.py checks this too).
            cs.append(self.base["load_ms"][0] > self.params.levels[-2].avg_ms)
        return z3.And(cs) if cs else self.truth(True)

    def param_values(self, model: z3.ModelRef) -> dict:
        """The ranged parameters' values in `model`, as `concrete_config` takes them."""
        out = {}
        for key, terms in self.base.items():
            vals = [model.eval(v, model_completion=True).as_long() for v in terms]
            out[key] = vals if key == "skew" else vals[0]
        return out

    # ------------------------------------------------------------ variables

    def var(self, name: str) -> z3.ArithRef:
        """An integer variable (every integer field, action field and parameter)."""
        return z3.Int(name, self.ctx)

    def num(self, value: int) -> z3.ArithRef:
        return z3.IntVal(value, self.ctx)

    def truth(self, value: bool) -> z3.BoolRef:
        return z3.BoolVal(value, self.ctx)

    def any(self, conditions: list) -> z3.BoolRef:
        """``Or`` that is False for no conditions (in this encoding's context)."""
        return z3.Or(conditions) if conditions else self.truth(False)

    def frame(self, k: int) -> SState:
        """The state variables of frame `k`."""
        if k not in self._frames:
            def field_(c, f):
                if f == "has":
                    return z3.Bool(f"c{c}.{f}@{k}", self.ctx)
                if f == "strikes" and not self.params.heartbeat.min_spacing:
                    return self.num(0)  # no minimum spacing: always 0, no variable
                return self.var(f"c{c}.{f}@{k}")

            def cl(c):
                return SClient(*(field_(c, f) for f in SClient._fields))

            def sv(s):
                return SServer(*(z3.Bool(f"s{s}.{f}@{k}", self.ctx) if f == "hot" else self.var(f"s{s}.{f}@{k}")
                                 for f in SServer._fields))

            def scalar(f):
                if f == "rollout" and self.ro is None:
                    return self.num(NOT_BEGUN)  # no rollout: the marker never moves, no variable
                return self.var(f"{f}@{k}")

            others = z3.Bool(f"others@{k}", self.ctx) if self._has_others() else self.truth(True)
            self._frames[k] = SState(
                tuple(cl(c) for c in range(self.params.clients)),
                tuple(sv(s) for s in range(self.params.servers)),
                *(scalar(f) for f in SState._fields[2:-1]), others,
            )
        return self._frames[k]

    def _has_others(self) -> bool:
        """The frame holds `SState.others`: the one-client system of a fleet whose rollout has a clients phase."""
        return self.env and self.ro is not None and self.ro.clients_phase

    def action(self, k: int) -> SAction:
        """The action variables of step `k` (frame k -> k+1)."""
        if k not in self._actions:
            self._actions[k] = SAction(*(self.var(f"a.{f}@{k}") for f in SAction._fields))
        return self._actions[k]

    # ------------------------------------------------------------ concrete <-> symbolic

    def const_state(self, state: State, others=True) -> SState:
        """`state` as a record of Z3 constants (`others`: `SState.others`, a Bool or a term)."""
        clients = []
        for cl in state.clients:
            ses = cl.session or Session(0, 0, 0, 0)
            clients.append(SClient(self.num(PHASE[cl.phase]), self.num(cl.server), self.num(cl.timer),
                                   self.truth(bool(cl.session)), *(self.num(x) for x in ses)))
        servers = [SServer(*(self.num(x) for x in srv[:4]), self.truth(srv.hot)) for srv in state.servers]
        scalars = (self.num(getattr(state, STATE_FIELDS[f])) for f in SState._fields[2:-1])
        others = self.truth(others) if isinstance(others, bool) else others
        return SState(tuple(clients), tuple(servers), *scalars, others)

    def const_action(self, action: Action) -> SAction:
        kind = ENV if action.kind == "env" else KIND[action.kind]
        return SAction(self.num(kind), *(self.num(x) for x in action[1:]))

    def state_of(self, model: z3.ModelRef, k: int) -> State:
        """Frame `k` of a Z3 model as a Python `State`."""
        def val(t):
            v = model.eval(t, model_completion=True)
            return z3.is_true(v) if z3.is_bool(v) else v.as_long()

        f = self.frame(k)
        clients = tuple(
            Client(PHASES[val(c.phase)], val(c.server), val(c.timer),
                   Session(val(c.age), val(c.stamp), val(c.hs), val(c.ref), val(c.strikes)) if val(c.has) else ())
            for c in f.clients
        )
        servers = tuple(Server(*(val(x) for x in s[:4]), val(s.hot)) for s in f.servers)
        scalars = {STATE_FIELDS[name]: val(getattr(f, name)) for name in SState._fields[2:-1]}
        return State(clients, servers, **scalars)

    def action_of(self, model: z3.ModelRef, k: int) -> Action:
        """Step `k` of a Z3 model as a Python `Action` (kind ``env`` for the environment's move)."""
        a = [model.eval(x, model_completion=True).as_long() for x in self.action(k)]
        return Action("env" if a[0] == ENV else ACTIONS[a[0]], *a[1:])

    # ------------------------------------------------------------ formulas

    def init(self, symmetric: bool = True) -> z3.BoolRef:
        """Frame 0 is an initial state, and the parameters hold.

        With `symmetric` (the default), one initial state per symmetry class,
        as the exhaustive engine's roots (`fleet.canonical`): a run from any
        other initial state is a permutation of a run from its representative,
        and the properties do not tell permuted clients or servers apart. On
        the 2015 fleet this is 1 start instead of 3, and a 2.5x faster search.
        With symbolic clock offsets the servers are not interchangeable, and
        every placement is a start.
        """
        f0 = self.frame(0)
        if self.ranges:
            # Clock offsets and T0 may be symbolic: the model's initial states
            # (one per placement, up to client symmetry) with symbolic stamps.
            starts = []
            for st in initial_states(self.params):
                cls = tuple(SClient(self.num(_H), self.num(cl.server), self.H[0], self.truth(True), self.num(0),
                                    self.off[cl.server], self.num(0), self.num(0), self.num(cl.session.strikes))
                            for cl in st.clients)
                starts.append(self._initial(cls))
            return z3.And(self.param_constraints(), z3.Or([equal(f0, st) for st in starts]))
        starts = []
        for s in initial_states(self.params):
            if symmetric and not self.env:
                s = canonical(self.params, s)
            if s not in starts:
                starts.append(s)
        # `others` starts free: a fleet of one client has no other client to wait for.
        return z3.And(self.param_constraints(), z3.Or([equal(f0, self.const_state(s, f0.others)) for s in starts]))

    def _initial(self, clients: tuple) -> SState:
        f = self.params.faults
        servers = tuple(SServer(self.num(0), self.num(0), self.num(0), self.num(0), self.truth(False))
                        for _ in range(self.params.servers))
        return SState(clients, servers, self.num(0), self.num(f.server_loss), self.num(f.client_crash),
                      self.num(f.client_cut), self.num(NOT_BEGUN), self.frame(0).others)

    def trans(self, k: int) -> z3.BoolRef:
        """Frame k+1 follows from frame k by the action of step k.

        Built once for step 0 and renamed for every other step (`z3.substitute`
        is native code; building the formula again in Python is not): a
        12-step unrolling is ready in a tenth of the time.
        """
        if self._trans0 is None:
            self._trans0 = self._trans_at(0)
        if k == 0:
            return self._trans0
        old = leaves(self.frame(0)) + leaves(self.frame(1)) + leaves(self.action(0))
        new = leaves(self.frame(k)) + leaves(self.frame(k + 1)) + leaves(self.action(k))
        # Constant fields (a strike count the fleet does not keep, the marker of a fleet
        # without a rollout) are the same in every frame.
        return z3.substitute(self._trans0, *((o, n) for o, n in zip(old, new) if not _is_value(o)))

    def _trans_at(self, k: int) -> z3.BoolRef:
        pre, post, a = self.frame(k), self.frame(k + 1), self.action(k)
        encoders = [self._reply, self._arrive, self._reconnect, self._restore, self._deadline,
                    self._publish, self._gc, self._expire, self._tuner, self._lose, self._crash, self._cut, self._tick]
        if self.ro is not None:
            encoders += [self.ro.launch, self.ro.restart, self.ro.reconfigure, self.ro.upgrade]
        if self.env:
            encoders.append(self._environment)
        options = [option for encode in encoders for option in encode(pre, a)]
        if self.ro is not None:
            if self._has_others():
                # Any step may be one that also moves the other clients' side (z3_rollout).
                moves = self.ro.others_step(pre, post.others)
                options = [(z3.And(guard, moves), nxt._replace(others=post.others)) for guard, nxt in options]
            # fleet._apply: after every step, a completed phase starts the next one.
            options = [(guard, self.ro.settle(pre, nxt)) for guard, nxt in options]
        # One disjunct per (action, client, server, value) pattern: its guard
        # and the whole next frame. (A case expression per field instead was
        # slower on the 2015 fleet, and so were bit-vectors.)
        return z3.Or([z3.And(guard, equal(post, nxt)) for guard, nxt in options])

    def bad(self, k: int, paths: tuple[str, ...] = REAPS) -> z3.BoolRef:
        """Step k reaps a valid client's session (`properties.protocol.no_valid_reap` fails).

        Read together with `trans(k)`: this only says which enabled steps reap.
        `paths` restricts the reaps counted to those `Reaped` events of these
        paths (synthesis asks per reaper path); by default every way the
        model reaps a session (`REAPS`).
        """
        return self._reap_step(k, paths, self.is_valid)

    def dead_reaped(self, k: int) -> z3.BoolRef:
        """Step k reaps a crashed client's session (a witness of ``dead_session_reaped``)."""
        return self._reap_step(k, REAPS, lambda cl: cl.phase == _X)

    def _reap_step(self, k: int, paths, who) -> z3.BoolRef:
        """Step k emits a `Reaped` event of one of `paths` for a client `who` holds of (before the step)."""
        p, hb = self.params, self.params.heartbeat
        pre, a = self.frame(k), self.action(k)
        cases = []
        for s in range(p.servers):
            for path in ("publish", "gc"):
                if path in paths and self._destroys(path):
                    victims = [z3.And(who(cl), self._sweeps(pre, s, cl, path)) for cl in pre.clients]
                    cases.append(z3.And(a.kind == KIND[path], a.server == s, z3.Or(victims)))
        for c, cl in enumerate(pre.clients):
            for s in range(p.servers):
                # The existence check of a connect, or one early heartbeat too many.
                reaped = z3.Or(self._connect_reaps(pre, c, s, paths))
                arrive = z3.And(a.kind == KIND["arrive"], a.client == c, cl.server == s)
                reconnect = z3.And(a.kind == KIND["reconnect"], a.client == c, a.server == s)
                cases.append(z3.And(who(cl), arrive, reaped))
                if hb.store != "local":
                    cases.append(z3.And(who(cl), reconnect, reaped))
                elif hb.resume_window and "resume" in paths:
                    # A session gone past its resume window when its client comes back.
                    cases.append(z3.And(who(cl), reconnect, cl.has, cl.age >= hb.resume_window))
            for j, judge in enumerate(p.judges):
                if judge.side in paths:
                    cases.append(z3.And(who(cl), a.kind == KIND["expire"], a.client == c, a.value == j))
        return self.any(cases)

    def handshakes(self, k: int) -> z3.BoolRef:
        """Step k makes a client handshake (a witness of ``rehandshake_reachable``).

        A connect (``arrive``, or ``reconnect`` to a server) that ends in a
        handshake (`_connect_cases`); with sessions local to their socket, a
        reconnect that does not resume its session.
        """
        hb = self.params.heartbeat
        pre, a = self.frame(k), self.action(k)
        cases = []
        for c, cl in enumerate(pre.clients):
            for s in range(self.params.servers):
                handshake = next(cond for cond, _, what in self._connect_cases(pre, c, s) if what == "handshake")
                cases.append(z3.And(a.kind == KIND["arrive"], a.client == c, cl.server == s, handshake))
                if hb.store == "local":
                    fresh = z3.Not(self._resumes(cl)) if hb.resume_window else self.truth(True)
                    handshake = z3.If(cl.has, fresh, handshake)
                cases.append(z3.And(a.kind == KIND["reconnect"], a.client == c, a.server == s, handshake))
        return self.any(cases)

    def disagreement(self, k: int) -> z3.BoolRef:
        """Frame k violates `properties.protocol.parameter_agreement` (`properties.protocol.reap_margin`).

        Some up server that may judge a valid client (`_judges`) has a
        publish or GC cutoff at or before the client's next refresh
        (`properties.protocol.next_refresh_age`), the cutoff the reaper itself
        applies (`fleet.cutoff_age`); or, under a minimum spacing, the next heartbeat may
        come too soon; or, with a resume window, a client retrying with its
        detached session reconnects at or past the window.
        """
        hb = self.params.heartbeat
        st = self.frame(k)
        cases = []
        for cl in st.clients:
            if hb.resume_window:
                cases.append(z3.And(cl.has, cl.phase == _R, cl.age + cl.timer >= hb.resume_window))
            live = z3.And(cl.has, _in(cl.phase, (_H, _W)))
            held = cl.timer + select(self.I, self.reply_level(st, cl)) + self.rtt_max
            due = cl.age + z3.If(cl.phase == _W, cl.timer, held)
            if hb.min_spacing:
                earliest = z3.If(cl.phase == _W, due, due - self.rtt_max + self.rtt_min)
                cases.append(z3.And(live, cl.strikes != NO_PING, earliest - hb.min_spacing + 1 <= 0))
            at_refresh = cl._replace(age=due)
            for s, srv in enumerate(st.servers):
                reaped = self.any([self._reaps(st, s, at_refresh, path)
                                   for path in ("publish", "gc") if path in hb.paths])
                cases.append(z3.And(live, self.up(srv), self._judges(cl, s), reaped))
        return self.any(cases)

    # ------------------------------------------------------------ helpers (fleet.py's)

    def perceived_age(self, cl: SClient, s: int):  # fleet.perceived_age
        return cl.age + self.off[s] - cl.stamp

    def judged_level(self, st: SState, s: int, cl: SClient, path: str):  # fleet.judged_level
        design = self.params.design
        if self.params.heartbeat.cutoff_from == "client":
            return cl.hs
        if design.judges_by_session(path):
            return cl.hs if design.record == "handshake" else cl.ref
        return st.servers[s].reap

    def _judges(self, cl: SClient, s: int) -> z3.BoolRef:  # fleet.judges (without the server's being up)
        """Server `s`'s reapers may judge `cl`'s session: any server's with a shared store, else its socket's."""
        return cl.server == s if self.params.heartbeat.store == "local" else self.truth(True)

    def _reaps(self, st: SState, s: int, cl: SClient, path: str) -> z3.BoolRef:
        """`cl` has a session that reaper `path` on `s` destroys (fleet.would_reap, fleet.cutoff_age).

        ``age >= m x T + k x I`` as ``age x den >= ...``: integers only. The
        I is the judged level's, or with ``interval_term = "in-use"`` the
        interval the server uses now, its advice level (`fleet.interval_level`).
        """
        m, k = self.params.multiplier(path), self.params.heartbeat.interval_multiplier
        level = self.judged_level(st, s, cl, path)
        i_level = st.servers[s].adv if self.params.heartbeat.interval_term == "in-use" else level
        cutoff = m.numerator * k.denominator * select(self.T, level)
        if k:
            cutoff = cutoff + k.numerator * m.denominator * select(self.I, i_level)
        return z3.And(cl.has, self.perceived_age(cl, s) * (m.denominator * k.denominator) >= cutoff)

    def _sweeps(self, st: SState, s: int, cl: SClient, path: str) -> z3.BoolRef:  # fleet._sweep, per session
        return z3.And(self._judges(cl, s), self._reaps(st, s, cl, path))

    def _destroys(self, path: str) -> bool:
        """Reaper `path` exists and destroys what it calls expired (the published engine's publish drops a queue)."""
        return path in self.params.heartbeat.paths and not (
            path == "publish" and self.params.publish_expired == "drop-queue")

    def _expired(self, cl: SClient, judge) -> z3.BoolRef:  # fleet.expired_judges, one judge
        """An extra judge's cutoff has passed for `cl`'s connection (its session's age, no clock offset)."""
        if judge.source == "fixed":
            past = cl.age >= judge.timeout
        else:
            m, k = judge.multiplier, judge.interval_multiplier
            cutoff = m.numerator * k.denominator * select(self.T, cl.hs) + \
                k.numerator * m.denominator * select(self.I, cl.hs)
            past = cl.age * (m.denominator * k.denominator) >= cutoff
        running = _in(cl.phase, (_H, _W)) if judge.side == "client" else self.truth(True)
        return z3.And(cl.has, cl.server >= 0, running, past)

    @staticmethod
    def is_valid(cl: SClient) -> z3.BoolRef:  # fleet.is_valid
        return _in(cl.phase, (_H, _W, _R, _J))

    @staticmethod
    def up(srv: SServer) -> z3.BoolRef:
        return srv.down == 0

    def new_session(self, s: int, hs, ref) -> dict:  # fleet.new_session
        p, design = self.params, self.params.design
        by_session = design.judge == "session"
        keep_hs = by_session and design.record == "handshake"
        keep_hs = keep_hs or p.heartbeat.interval_from == "handshake" or p.heartbeat.client_owned
        keep_hs = keep_hs or any(j.source == "handshake" for j in p.judges)
        keep_ref = design.reply_advice == "arrival" or design.tuner == "fleet-staged" or (
            by_session and design.record == "refresh"
        )
        zero = self.num(0)
        return dict(has=self.truth(True), age=zero, stamp=self.off[s],
                    hs=hs if keep_hs else zero, ref=ref if keep_ref else zero, strikes=zero)

    def due(self, st: SState) -> z3.BoolRef:
        """Some event is due, so time may not advance (fleet.actions' ``due``)."""
        return z3.Or(
            [z3.And(cl.timer == 0, _in(cl.phase, (_H, _W, _R, _CUT, _J))) for cl in st.clients]
            + [srv.down == -1 for srv in st.servers]
            + [st.tuner == -1]
            + (self.ro.due(st) if self.ro is not None else [])
        )

    @staticmethod
    def _is(a: SAction, kind: str, client=-1, server=-1, value=-1) -> z3.BoolRef:
        return z3.And(a.kind == KIND[kind], a.client == client, a.server == server, a.value == value)

    def _no_session(self) -> dict:
        zero = self.num(0)
        return dict(has=self.truth(False), age=zero, stamp=zero, hs=zero, ref=zero, strikes=zero)

    def _detached(self, cl: SClient) -> dict:  # fleet._detached
        """What is left of `cl`'s session once its socket closed: kept for the resume window (age from 0), else none."""
        if not self.params.heartbeat.resume_window:
            return self._no_session()
        keep = z3.And(cl.has, cl.phase != _X)
        zero = self.num(0)
        return dict(has=keep, age=zero, stamp=z3.If(keep, cl.stamp, zero), hs=z3.If(keep, cl.hs, zero),
                    ref=z3.If(keep, cl.ref, zero), strikes=zero)

    def _closed(self, cl: SClient) -> SClient:  # fleet._destroy, one victim
        """`cl` after its session was reaped and its socket closed: a running client retries."""
        dropped = cl._replace(phase=self.num(_R), server=self.num(-1), timer=self.retry_wait, **self._detached(cl))
        return ite(_in(cl.phase, (_H, _W)), dropped, cl._replace(server=self.num(-1), **self._detached(cl)))

    # ------------------------------------------------------------ due client events

    def reply_level(self, st: SState, cl: SClient):  # fleet.reply_level
        if self.params.heartbeat.interval_from in ("client", "handshake"):
            return cl.hs
        if self.params.design.reply_advice == "arrival":
            return cl.ref
        return select([srv.adv for srv in st.servers], cl.server)

    def _reply(self, st: SState, a: SAction):  # fleet._reply
        for c, cl in enumerate(st.clients):
            # A client running A may pick B up from this reply (fleet._pick_up).
            st_c = self.ro.pick_up(st, c) if self.ro is not None else st
            cl = st_c.clients[c]
            level = self.reply_level(st_c, cl)
            guard = z3.And(a.kind == KIND["reply"], a.client == c, a.server == -1, self.rtt_choices(a.value),
                           cl.phase == _H, cl.timer == 0)
            nxt = cl._replace(phase=self.num(_W), timer=select(self.I, level) + a.value)
            if self.params.design.tuner == "fleet-staged":
                # Answered with other advice than it was refreshed under: the
                # client counts as refreshed under no level (fleet.STALE).
                nxt = nxt._replace(ref=z3.If(cl.ref != level, self.num(-1), cl.ref))
            yield guard, _with_client(st_c, c, nxt)

    def _arrive(self, st: SState, a: SAction):  # fleet._arrive
        for c, cl in enumerate(st.clients):
            for s in range(self.params.servers):
                guard = z3.And(self._is(a, "arrive", client=c), cl.phase == _W, cl.timer == 0, cl.server == s)
                yield guard, self._connect(st, c, s)

    def _reconnect(self, st: SState, a: SAction):  # fleet._reconnect (+ fleet._reconnects)
        none_up = z3.Not(z3.Or([self.up(srv) for srv in st.servers]))
        for c, cl in enumerate(st.clients):
            ready = z3.And(cl.timer == 0, _in(cl.phase, (_R, _CUT, _J)))
            # During a release window a reconnect may declare either level (fleet._reconnects).
            value = self.ro.declared(st, cl, a.value) if self.ro is not None else a.value == -1
            for s, srv in enumerate(st.servers):
                is_s = z3.And(a.kind == KIND["reconnect"], a.client == c, a.server == s, value)
                yield z3.And(is_s, ready, self.up(srv)), self._reconnected(st, c, s, a.value)
            # Nowhere to connect: it tries again later (a client about to re-handshake keeps that plan).
            failed = cl._replace(phase=z3.If(cl.phase == _J, self.num(_J), self.num(_R)), server=self.num(-1),
                                 timer=self.retry_wait)
            yield z3.And(self._is(a, "reconnect", client=c), ready, none_up), _with_client(st, c, failed)

    def _reconnected(self, st: SState, c: int, s: int, declared=None) -> SState:  # fleet._reconnect, to server s
        cl = st.clients[c]
        hb = self.params.heartbeat
        if hb.store != "local":
            return self._connect(st, c, s, declared)
        # A session lives with its socket: a new socket is a new session,
        # unless it resumes one that outlives its socket.
        fresh = self._handshake(self._without_session(st, c), c, s, declared)
        if hb.resume_window:
            fresh = ite(self._resumes(cl), self._resume(st, c, s), fresh)
        return ite(cl.has, fresh, self._connect(st, c, s, declared))

    def _without_session(self, st: SState, c: int) -> SState:
        """`st` with client `c`'s session gone (what `fleet._handshake` is given: a rollout's phase reads it)."""
        return _with_client(st, c, st.clients[c]._replace(**self._no_session()))

    def _resumes(self, cl: SClient) -> z3.BoolRef:
        return z3.And(cl.has, cl.age < self.params.heartbeat.resume_window)

    def _resume(self, st: SState, c: int, s: int) -> SState:  # fleet._resume
        cl, srv = st.clients[c], st.servers[s]
        session = self.new_session(s, cl.hs, srv.adv)
        if self.params.heartbeat.min_spacing:
            session["strikes"] = self.num(NO_PING)  # a new connection's count starts afresh
        return _with_client(st, c, SClient(self.num(_H), self.num(s), self.hold(srv.adv), **session))

    def _connect_cases(self, st: SState, c: int, s: int, declared=None) -> list:  # fleet._connect (+ _refused...)
        """A connect from `c` reaches `s`: (condition, next state, outcome) for each way it can go.

        The conditions exclude one another and cover every state. Outcomes:
        ``too-early`` (one early heartbeat too many: the server closes the
        connection), ``refresh``, ``handshake`` (no session, or the existence
        check destroyed it, and the 401 is followed at once), ``rejoin`` (a
        401 followed after the advised interval).
        """
        p, hb = self.params, self.params.heartbeat
        cl, srv = st.clients[c], st.servers[s]
        # No session: a connect on an old id gets 401; a new socket handshakes.
        refusing = _in(cl.phase, (_W, _CUT, _R) if p.after_drop == "same-id" else (_W, _CUT))
        expired = self._reaps(st, s, cl, "existence") if "existence" in hb.paths else self.truth(False)
        refused = z3.Or(z3.And(z3.Not(cl.has), refusing), expired)
        wait = select(self.I, srv.adv) if p.after_401 == "interval" else self.num(0)
        handshake = z3.Or(z3.And(z3.Not(cl.has), z3.Not(refusing)), z3.And(refused, wait == 0))
        rejoin = SClient(self.num(_J), self.num(-1), wait, **self._no_session())
        live = z3.And(cl.has, z3.Not(expired))
        refreshed = SClient(self.num(_H), self.num(s), self.hold(srv.adv), **self.new_session(s, cl.hs, srv.adv))
        cases = []
        if hb.min_spacing:
            first = cl.strikes == NO_PING
            early = z3.And(z3.Not(first), self.perceived_age(cl, s) < hb.min_spacing)
            # Counts saturate one past the tolerance: the close comes then.
            count = z3.If(first, self.num(0), z3.If(early, z3.If(cl.strikes < hb.strikes, cl.strikes + 1,
                                                                    self.num(hb.strikes + 1)), cl.strikes))
            too_early = z3.And(live, early, cl.strikes >= hb.strikes)
            cases.append((too_early, _with_client(st, c, self._closed(cl)), "too-early"))
            live = z3.And(live, z3.Not(too_early))
            refreshed = refreshed._replace(strikes=count)
        cases += [(live, _with_client(st, c, refreshed), "refresh"),
                  (handshake, self._handshake(self._without_session(st, c), c, s, declared), "handshake"),
                  (z3.And(refused, wait != 0), _with_client(st, c, rejoin), "rejoin")]
        return cases

    def _connect(self, st: SState, c: int, s: int, declared=None) -> SState:  # fleet._connect
        """A connect from `c` reaches `s`: existence check, then refresh, else handshake (`_connect_cases`)."""
        cases = self._connect_cases(st, c, s, declared)
        out = cases[-1][1]
        for cond, nxt, _ in reversed(cases[:-1]):
            out = ite(cond, nxt, out)
        return out

    def _connect_reaps(self, st: SState, c: int, s: int, paths) -> list:
        """The ways a connect from `c` to `s` emits a `Reaped` event of one of `paths`."""
        hb, cl = self.params.heartbeat, st.clients[c]
        out = []
        expired = self._reaps(st, s, cl, "existence") if "existence" in hb.paths else self.truth(False)
        if "existence" in paths and "existence" in hb.paths:
            out.append(expired)
        if "spacing" in paths and hb.min_spacing:
            too_early = next(cond for cond, _, what in self._connect_cases(st, c, s) if what == "too-early")
            out.append(too_early)
        return out or [self.truth(False)]

    def _handshake(self, st: SState, c: int, s: int, declared=None) -> SState:  # fleet._handshake
        srv = st.servers[s]
        # A client that sets its own interval or cutoff declares its own level:
        # the one its reconnect chose (`declared` >= 0, during a release), else
        # the one the rollout gives a new session (0 without a rollout).
        # Otherwise the session records the advice.
        hs = srv.adv
        if self.params.heartbeat.client_owned:
            hs = self.num(0) if self.ro is None else self.ro.client_level(st)
            if declared is not None and self.ro is not None:
                hs = z3.If(declared >= 0, declared, hs)
        session = self.new_session(s, hs, srv.adv)
        if self.params.heartbeat.min_spacing:
            session["strikes"] = self.num(NO_PING)
        cl = SClient(self.num(_H), self.num(s), self.hold(srv.adv), **session)
        nxt = _with_client(st, c, cl)
        if self.params.load_trigger == "reconnects" and self.params.load_moves:
            nxt = _with_server(nxt, s, srv._replace(hot=self.truth(True)))
        return nxt

    # ------------------------------------------------------------ servers and tuner

    def _restore(self, st: SState, a: SAction):  # fleet._restore
        for s, srv in enumerate(st.servers):
            yield z3.And(self._is(a, "restore", server=s), srv.down == -1), _with_server(st, s, srv._replace(down=self.num(0)))

    def _deadline(self, st: SState, a: SAction):  # fleet._deadline
        servers = tuple(srv._replace(adv=srv.target, reap=srv.target) for srv in st.servers)
        yield z3.And(self._is(a, "deadline"), st.tuner == -1), st._replace(servers=servers, tuner=self.num(0))

    def _publish(self, st: SState, a: SAction):  # fleet._publish
        yield from self._reaper(st, a, "publish")

    def _gc(self, st: SState, a: SAction):  # fleet._gc
        yield from self._reaper(st, a, "gc")

    def _reaper(self, st: SState, a: SAction, path: str):  # fleet._sweep + fleet._destroy (+ fleet._reapers)
        if path not in self.params.heartbeat.paths:
            return
        for s, srv in enumerate(st.servers):
            victims = [self._sweeps(st, s, cl, path) for cl in st.clients]
            # With other clients (env), some other session may be expired: a
            # sweep may run on any up server, destroying this one only if due.
            enabled = self.truth(True) if self.env else z3.Or(victims)
            guard = z3.And(a.kind == KIND[path], a.client == -1, a.server == s, self.up(srv), enabled)
            if not self._destroys(path):
                # The published engine drops an expired subscriber's queue and
                # nothing else changes; which of the holder's flush and the
                # delete comes first is the action's value (fleet._publishes).
                held = z3.Or([z3.And(v, _in(cl.phase, (_H, _W))) for v, cl in zip(victims, st.clients)])
                order = z3.Or(a.value == FLUSH_FIRST, a.value == DELETE_FIRST)
                value = z3.Or(a.value == -1, order) if self.env else z3.If(held, order, a.value == -1)
                yield z3.And(guard, value), st
                continue
            clients = tuple(ite(hit, self._closed(cl), cl) for hit, cl in zip(victims, st.clients))
            yield z3.And(guard, a.value == -1), st._replace(clients=clients)

    def _expire(self, st: SState, a: SAction):  # fleet._expire
        for c, cl in enumerate(st.clients):
            for j, judge in enumerate(self.params.judges):
                guard = z3.And(self._is(a, "expire", client=c, value=j), self._expired(cl, judge))
                yield guard, _with_client(st, c, self._closed(cl))

    def _rising(self, level: int, current) -> z3.BoolRef:
        """Moving from level `current` to `level` raises the load (a concrete table)."""
        avg = [lv.avg_ms for lv in self.params.levels]
        return self.any([current == c for c in range(len(avg)) if avg[c] < avg[level]])

    def _may_move(self, current, level: int, hot) -> z3.BoolRef:  # fleet._may_move
        rising = self._rising(level, current)
        return z3.Or(z3.Not(rising), self.truth(self.params.load_trigger == "free"), hot)

    def _tuner(self, st: SState, a: SAction):  # fleet._tuner_actions + fleet._load / fleet._adopt
        p = self.params
        if not p.load_moves:
            return
        if p.design.tuner == "per-server":
            for s, srv in enumerate(st.servers):
                if not p.can_load_move(s):
                    continue
                for level in range(len(p.levels)):
                    lv = self.num(level)
                    rising = self._rising(level, srv.target)
                    guard = z3.And(self._is(a, "load", server=s, value=level), srv.down == 0, srv.target != level,
                                   self._may_move(srv.target, level, srv.hot))
                    new = srv._replace(target=lv, adv=lv, reap=lv, hot=z3.And(srv.hot, z3.Not(rising)))
                    yield guard, _with_server(st, s, new)
            return
        # fleet and fleet-staged: one load value for every server.
        settled = z3.And([z3.And(srv.adv == srv.target, srv.reap == srv.target) for srv in st.servers])
        target = st.servers[0].target
        hot = z3.Or([srv.hot for srv in st.servers])
        staged = p.design.tuner == "fleet-staged"
        immediate = not staged and p.design.propagation_delay == 0
        delay = 0 if immediate or staged else p.design.propagation_delay
        for level in range(len(p.levels)):
            lv = self.num(level)
            rising = self._rising(level, target)
            servers = tuple(
                srv._replace(target=lv, hot=z3.And(srv.hot, z3.Not(rising)),
                             **(dict(adv=lv, reap=lv) if immediate else {}))
                for srv in st.servers
            )
            guard = z3.And(self._is(a, "load", value=level), settled, target != level, self._may_move(target, level, hot))
            yield guard, st._replace(servers=servers, tuner=self.num(delay))
        if staged:
            yield from self._staged(st, a, settled, target)
            return
        for s, srv in enumerate(st.servers):
            nxt = _with_server(st, s, srv._replace(adv=srv.target, reap=srv.target))
            now_settled = z3.And([z3.And(x.adv == x.target, x.reap == x.target) for x in nxt.servers])
            nxt = nxt._replace(tuner=z3.If(now_settled, self.num(0), st.tuner))
            yield z3.And(self._is(a, "adopt", server=s), z3.Not(settled), srv.adv != target), nxt

    def _staged(self, st: SState, a: SAction, settled, target):  # fleet._tuner_actions (fleet-staged) + fleet._adopt
        """Raising: every reaper adopts before any advice. Lowering: every advice, then reapers once
        every session was refreshed under the new level."""
        servers = st.servers
        # The first server not settled tells the direction: the level it has not left yet.
        previous = servers[-1].adv
        for srv in reversed(servers):
            pending = z3.Or(srv.adv != target, srv.reap != target)
            previous = z3.If(pending, z3.If(srv.reap != target, srv.reap, srv.adv), previous)
        avg = [lv.avg_ms for lv in self.params.levels]
        raising = self.any([z3.And(target == t, previous == q) for t in range(len(avg)) for q in range(len(avg))
                            if avg[t] > avg[q]])
        reapers_left = z3.Or([srv.reap != target for srv in servers])
        advice_left = z3.Or([srv.adv != target for srv in servers])
        # With other clients (env), theirs may all be refreshed too: only this one's session is known.
        refreshed = z3.And([z3.Or(z3.Not(cl.has), cl.ref == target) for cl in st.clients])
        may_reaper = z3.Or(z3.And(raising, reapers_left), z3.And(z3.Not(raising), z3.Not(advice_left), refreshed))
        may_advice = z3.Or(z3.And(raising, z3.Not(reapers_left), advice_left), z3.And(z3.Not(raising), advice_left))
        for s, srv in enumerate(servers):
            for kind, field_, may in (("adopt_reaper", "reap", may_reaper), ("adopt_advice", "adv", may_advice)):
                nxt = _with_server(st, s, srv._replace(**{field_: srv.target}))
                guard = z3.And(self._is(a, kind, server=s), z3.Not(settled), may, getattr(srv, field_) != target)
                yield guard, nxt

    # ------------------------------------------------------------ faults

    def _lose(self, st: SState, a: SAction):  # fleet._lose (+ fleet._drop_sockets)
        p = self.params
        for s, srv in enumerate(st.servers):
            if not p.can_lose(s):
                continue
            # A fleet that loses every server at once is a different outage.
            another_up = self.any([self.up(x) for j, x in enumerate(st.servers) if j != s])
            nxt = self.drop_sockets(_with_server(st, s, srv._replace(down=self.loss_duration)), s)
            nxt = nxt._replace(losses=st.losses - 1)
            yield z3.And(self._is(a, "lose", server=s), st.losses > 0, self.up(srv), another_up), nxt

    def drop_sockets(self, st: SState, s: int) -> SState:  # fleet._drop_sockets
        """Every socket on `s` drops: a running client retries (on its old id with
        `after_drop = "same-id"`, its session kept); a half-open one of a crashed
        or cut-off client closes."""
        keep = {} if self.params.after_drop == "same-id" else self._detached
        clients = tuple(
            ite(cl.server == s,
                ite(_in(cl.phase, (_H, _W)),
                    cl._replace(phase=self.num(_R), server=self.num(-1), timer=self.retry_wait,
                                **(keep(cl) if keep else {})),
                    cl._replace(server=self.num(-1), **self._detached(cl))),
                cl)
            for cl in st.clients
        )
        return st._replace(clients=clients)

    def _crash(self, st: SState, a: SAction):  # fleet._crash
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_X), server=self._half_open(cl), timer=self.num(0))
            guard = z3.And(self._is(a, "crash", client=c), st.crashes > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(crashes=st.crashes - 1)

    def _cut(self, st: SState, a: SAction):  # fleet._cut
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_CUT), server=self._half_open(cl), timer=self.cut_duration)
            guard = z3.And(self._is(a, "cut", client=c), st.cuts > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(cuts=st.cuts - 1)

    def _half_open(self, cl: SClient):
        """The server left holding a crashed or cut-off client's socket (it matters only with a local store)."""
        return cl.server if self.params.heartbeat.store == "local" else self.num(-1)

    # ------------------------------------------------------------ time

    def _next_deadline(self, st: SState, d) -> z3.BoolRef:  # fleet._next_deadline
        """`d` is the smallest positive countdown (the longest hold when there is none)."""
        timers = [(z3.And(cl.phase != _X, cl.timer > 0), cl.timer) for cl in st.clients]
        timers += [(srv.down > 0, srv.down) for srv in st.servers]
        timers.append((st.tuner > 0, st.tuner))
        if self.ro is not None:
            timers.append((st.rollout > 0, st.rollout))  # a rollout's batch or release window
        some = z3.Or([on for on, _ in timers])
        if self.env:
            # Other clients' countdowns may come first: any step up to the next of ours.
            return z3.And([d >= 1] + [z3.Implies(on, d <= t) for on, t in timers])
        return z3.And(
            z3.Or([z3.And(on, d == t) for on, t in timers] + [z3.And(z3.Not(some), d == self.t_max)]),
            z3.And([z3.Implies(on, d <= t) for on, t in timers]),
        )

    def _tick(self, st: SState, a: SAction):  # fleet._tick
        d, cap = a.value, self.age_cap
        clients = tuple(
            cl._replace(
                age=z3.If(cl.has, z3.If(cl.age + d < cap, cl.age + d, cap), cl.age),
                timer=z3.If(cl.phase != _X, cl.timer - d, 0),
            )
            for cl in st.clients
        )
        servers = tuple(
            srv._replace(down=z3.If(srv.down > 0, z3.If(srv.down - d == 0, -1, srv.down - d), srv.down))
            for srv in st.servers
        )
        tuner = z3.If(st.tuner > 0, z3.If(st.tuner - d > 0, st.tuner - d, -1), st.tuner)
        rollout = st.rollout
        if self.ro is not None:
            rollout = z3.If(st.rollout > 0, z3.If(st.rollout - d > 0, st.rollout - d, -1), st.rollout)
        guard = z3.And(a.kind == KIND["tick"], a.client == -1, a.server == -1,
                       z3.Not(self.due(st)), self._next_deadline(st, d))
        yield guard, st._replace(clients=clients, servers=servers, tuner=tuner, rollout=rollout)

    # ------------------------------------------------------------ the environment (env=True)

    def _environment(self, st: SState, a: SAction):
        """What other clients do that this one can see (module docstring, "Two modes").

        ``env(server=s, value=0)``: a client re-handshakes on up server `s`,
        which marks it hot (fleet._handshake). ``env(value=1)`` / ``env(value=2)``:
        another client crashes / is cut off, using up the shared budget.
        """
        p = self.params
        marks = p.load_trigger == "reconnects" and p.load_moves
        for s, srv in enumerate(st.servers):
            nxt = _with_server(st, s, srv._replace(hot=self.truth(True))) if marks else st
            yield z3.And(a.kind == ENV, a.client == -1, a.server == s, a.value == 0, self.up(srv)), nxt
        for value, budget in ((1, "crashes"), (2, "cuts")):
            left = getattr(st, budget)
            guard = z3.And(a.kind == ENV, a.client == -1, a.server == -1, a.value == value, left > 0)
            yield guard, st._replace(**{budget: left - 1})
        if self.ro is not None:
            yield from self.ro.environment(st, a)  # value 3: the other clients complete a clients phase
