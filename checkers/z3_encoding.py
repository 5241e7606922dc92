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

Parts
-----
`Encoding` is one class, but its methods live in one module per concern,
each a base class of it, so that each reads on its own and stays short:
`checkers.z3_records` (the records above and the helpers over them),
`checkers.z3_coverage` (what is encoded, and the refusal of the rest),
`checkers.z3_params` ("Parameters"), `checkers.z3_sessions` (the helpers of
``fleet.py`` the rules share), the rules in `checkers.z3_clients`,
`checkers.z3_servers` and `checkers.z3_faults` (faults, time and the
environment), and `checkers.z3_properties` (`bad`, `disagreement` and the
witnesses). This module keeps the frames, the conversions between concrete
and symbolic states, and `init` / `trans`, which gathers every rule into
one relation; the names callers import from it are re-exported here.
"""

from __future__ import annotations

import dataclasses

import z3

from stormcheck.model.fleet import ACTIONS, canonical, initial_states
from stormcheck.model.params import Params
from stormcheck.model.rollout import NOT_BEGUN
from stormcheck.model.state import PHASES, Action, Client, Server, Session, State
from stormcheck.properties.core import NotEncoded

from .z3_clients import ClientRules
from .z3_coverage import ENCODED, REFUSED, check_encodable, not_encoded
from .z3_faults import FaultRules
from .z3_params import RANGED, ParamTerms
from .z3_properties import REAPS, PropertyFormulas
from .z3_records import (ENV, KIND, PHASE, STATE_FIELDS, SAction, SClient, SServer, SState, _H, _is_value, ceil_times,
                         equal, ite, leaves, select)
from .z3_servers import ServerRules
from .z3_sessions import SessionTerms

__all__ = [
    "Encoding", "SState", "SClient", "SServer", "SAction", "PHASE", "KIND", "ENV", "RANGED",
    "equal", "ite", "leaves", "select", "ceil_times", "check_encodable", "not_encoded", "ENCODED", "REFUSED",
    "STATE_FIELDS", "REAPS",
]


class Encoding(ParamTerms, PropertyFormulas, SessionTerms, ClientRules, ServerRules, FaultRules):
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
