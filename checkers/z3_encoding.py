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
like its Python twin, ``_replace`` included:

* a client's phase is a small Int enum (index in `PHASES`), its server an Int
  (-1: none), its session a Bool flag ``has`` (False for ``()``) plus four
  Ints that are 0 whenever ``has`` is False;
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
Each level's timeout and interval are symbolic Ints ``T_l`` / ``I_l``, pinned
to the scenario's values by `Encoding.param_constraints`, so a later step can
constrain them by ranges instead. Everything else (multipliers, RTT choices,
retry, skew, fault bounds, the age cap, the levels' load averages) is a
concrete Python value. The age cap in particular is computed from the
concrete timeouts: freeing ``T_l`` needs a symbolic cap too.

Left out for now
----------------
The ``fleet-staged`` tuner (design ``fleet-wide-staged``, actions
``adopt_reaper``/``adopt_advice``): `Encoding` refuses it with a message.
Fleet-wide changes with a propagation delay are encoded (``adopt``,
``deadline``, the tuner timer), and so is clock skew (concrete offsets).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import z3

from stormcheck.model.fleet import ACTIONS, canonical, initial_states
from stormcheck.model.params import Params
from stormcheck.model.state import CRASHED, CUT, HELD, PHASES, RETRY, WAITING, Action, Client, Server, Session, State

__all__ = ["Encoding", "SState", "SClient", "SServer", "SAction", "PHASE", "KIND", "equal", "ite"]

PHASE = {p: i for i, p in enumerate(PHASES)}
KIND = {k: i for i, k in enumerate(ACTIONS)}
_H, _W, _R, _CUT, _X = (PHASE[p] for p in (HELD, WAITING, RETRY, CUT, CRASHED))


class SClient(NamedTuple):
    phase: Any
    server: Any
    timer: Any
    has: Any  # the session exists (False: ``()``)
    age: Any
    stamp: Any
    hs: Any  # Session.hs_level
    ref: Any  # Session.ref_level


class SServer(NamedTuple):
    down: Any
    target: Any
    adv: Any
    reap: Any
    hot: Any


class SState(NamedTuple):
    clients: tuple
    servers: tuple
    tuner: Any
    losses: Any
    crashes: Any
    cuts: Any


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


def _select(values: list, index) -> Any:
    """``values[index]`` for a symbolic index (the last value past the end)."""
    out = values[-1]
    for i in range(len(values) - 2, -1, -1):
        out = z3.If(index == i, values[i], out)
    return out


def _in(x, options) -> z3.BoolRef:
    return z3.Or([x == o for o in options])


def _with_client(st: SState, c: int, cl: SClient) -> SState:
    return st._replace(clients=st.clients[:c] + (cl,) + st.clients[c + 1:])


def _with_server(st: SState, s: int, srv: SServer) -> SState:
    return st._replace(servers=st.servers[:s] + (srv,) + st.servers[s + 1:])



class Encoding:
    """Init, transition and bad-step formulas of one fleet's model.

    Examples
    --------
    >>> from stormcheck.model.params import Params
    >>> enc = Encoding(Params(clients=1))
    >>> s = z3.Solver(); s.add(enc.init(), enc.trans(0))
    >>> s.check()
    sat
    """

    def __init__(self, params: Params, ctx: z3.Context | None = None) -> None:
        if params.design.tuner == "fleet-staged":
            raise ValueError(
                f"design {params.design.name!r}: the fleet-staged tuner is not encoded in Z3 yet; "
                "use the exhaustive engine for it"
            )
        self.params = params
        self.ctx = ctx  # None: z3's main context; a fresh one makes a seeded run reproducible
        self.T = [self.var(f"T_{l}") for l in range(len(params.levels))]
        self.I = [self.var(f"I_{l}") for l in range(len(params.levels))]
        self._frames: dict[int, SState] = {}
        self._actions: dict[int, SAction] = {}
        p = params
        self.retry_wait = p.retry + p.rtt_max  # what a dropped client waits before retrying
        self.t_max = self.T[0]
        for t in self.T[1:]:
            self.t_max = z3.If(t > self.t_max, t, self.t_max)

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

    def param_constraints(self) -> z3.BoolRef:
        """Pin each level's T/I to the scenario's values."""
        return z3.And(
            [t == level.timeout for t, level in zip(self.T, self.params.levels)]
            + [i == level.interval for i, level in zip(self.I, self.params.levels)]
        )

    def frame(self, k: int) -> SState:
        """The state variables of frame `k`."""
        if k not in self._frames:
            def cl(c):
                return SClient(*(z3.Bool(f"c{c}.{f}@{k}", self.ctx) if f == "has" else self.var(f"c{c}.{f}@{k}")
                                 for f in SClient._fields))

            def sv(s):
                return SServer(*(z3.Bool(f"s{s}.{f}@{k}", self.ctx) if f == "hot" else self.var(f"s{s}.{f}@{k}")
                                 for f in SServer._fields))

            self._frames[k] = SState(
                tuple(cl(c) for c in range(self.params.clients)),
                tuple(sv(s) for s in range(self.params.servers)),
                *(self.var(f"{f}@{k}") for f in SState._fields[2:]),
            )
        return self._frames[k]

    def action(self, k: int) -> SAction:
        """The action variables of step `k` (frame k -> k+1)."""
        if k not in self._actions:
            self._actions[k] = SAction(*(self.var(f"a.{f}@{k}") for f in SAction._fields))
        return self._actions[k]

    # ------------------------------------------------------------ concrete <-> symbolic

    def const_state(self, state: State) -> SState:
        """`state` as a record of Z3 constants."""
        clients = []
        for cl in state.clients:
            ses = cl.session or Session(0, 0, 0, 0)
            clients.append(SClient(self.num(PHASE[cl.phase]), self.num(cl.server), self.num(cl.timer),
                                   self.truth(bool(cl.session)), *(self.num(x) for x in ses)))
        servers = [SServer(*(self.num(x) for x in srv[:4]), self.truth(srv.hot)) for srv in state.servers]
        return SState(tuple(clients), tuple(servers), *(self.num(x) for x in state[2:]))

    def const_action(self, action: Action) -> SAction:
        return SAction(self.num(KIND[action.kind]), *(self.num(x) for x in action[1:]))

    def state_of(self, model: z3.ModelRef, k: int) -> State:
        """Frame `k` of a Z3 model as a Python `State`."""
        def val(t):
            v = model.eval(t, model_completion=True)
            return z3.is_true(v) if z3.is_bool(v) else v.as_long()

        f = self.frame(k)
        clients = tuple(
            Client(PHASES[val(c.phase)], val(c.server), val(c.timer),
                   Session(val(c.age), val(c.stamp), val(c.hs), val(c.ref)) if val(c.has) else ())
            for c in f.clients
        )
        servers = tuple(Server(*(val(x) for x in s[:4]), val(s.hot)) for s in f.servers)
        return State(clients, servers, *(val(x) for x in f[2:]))

    def action_of(self, model: z3.ModelRef, k: int) -> Action:
        """Step `k` of a Z3 model as a Python `Action`."""
        a = [model.eval(x, model_completion=True).as_long() for x in self.action(k)]
        return Action(ACTIONS[a[0]], *a[1:])

    # ------------------------------------------------------------ formulas

    def init(self, symmetric: bool = True) -> z3.BoolRef:
        """Frame 0 is an initial state, and the parameters hold.

        With `symmetric` (the default), one initial state per symmetry class,
        as the exhaustive engine's roots (`fleet.canonical`): a run from any
        other initial state is a permutation of a run from its representative,
        and the properties do not tell permuted clients or servers apart. On
        the 2015 fleet this is 1 start instead of 3, and a 2.5x faster search.
        """
        starts = []
        for s in initial_states(self.params):
            if symmetric:
                s = canonical(self.params, s)
            if s not in starts:
                starts.append(s)
        f0 = self.frame(0)
        return z3.And(self.param_constraints(), z3.Or([equal(f0, self.const_state(s)) for s in starts]))

    def trans(self, k: int) -> z3.BoolRef:
        """Frame k+1 follows from frame k by the action of step k."""
        pre, post, a = self.frame(k), self.frame(k + 1), self.action(k)
        options = [
            option
            for encode in (self._reply, self._arrive, self._reconnect, self._restore, self._deadline,
                           self._publish, self._gc, self._tuner, self._lose, self._crash, self._cut, self._tick)
            for option in encode(pre, a)
        ]
        # One disjunct per (action, client, server, value) pattern: its guard
        # and the whole next frame. (A case expression per field instead was
        # slower on the 2015 fleet, and so were bit-vectors.)
        return z3.Or([z3.And(guard, equal(post, nxt)) for guard, nxt in options])

    def bad(self, k: int) -> z3.BoolRef:
        """Step k reaps a valid client's session (`properties.protocol.no_valid_reap` fails).

        Read together with `trans(k)`: this only says which enabled steps reap.
        """
        pre, a = self.frame(k), self.action(k)
        p = self.params
        cases = []
        for s in range(p.servers):
            for path in ("publish", "gc"):
                victims = [z3.And(self.is_valid(cl), self._reaps(pre, s, cl, path)) for cl in pre.clients]
                cases.append(z3.And(a.kind == KIND[path], a.server == s, z3.Or(victims)))
            for c, cl in enumerate(pre.clients):
                # The existence check of a connect from a valid client.
                expired = z3.And(self.is_valid(cl), self._reaps(pre, s, cl, "existence"))
                cases.append(z3.And(a.kind == KIND["arrive"], a.client == c, cl.server == s, expired))
                cases.append(z3.And(a.kind == KIND["reconnect"], a.client == c, a.server == s, expired))
        return z3.Or(cases)

    def disagreement(self, k: int) -> z3.BoolRef:
        """Frame k violates `properties.protocol.parameter_agreement`.

        Some up server's publish or GC cutoff falls at or before the next
        refresh of some valid client (`properties.protocol.next_refresh_age`).
        """
        st = self.frame(k)
        cases = []
        for cl in st.clients:
            held = cl.timer + _select(self.I, self.reply_level(st, cl)) + self.params.rtt_max
            due = cl.age + z3.If(cl.phase == _W, cl.timer, held)
            at_refresh = cl._replace(age=due)
            for s, srv in enumerate(st.servers):
                reaped = z3.Or(self._reaps(st, s, at_refresh, "publish"), self._reaps(st, s, at_refresh, "gc"))
                cases.append(z3.And(_in(cl.phase, (_H, _W)), self.up(srv), reaped))
        return self.any(cases)

    # ------------------------------------------------------------ helpers (fleet.py's)

    def perceived_age(self, cl: SClient, s: int):  # fleet.perceived_age
        return cl.age + self.params.offset(s) - cl.stamp

    def judged_level(self, st: SState, s: int, cl: SClient, path: str):  # fleet.judged_level
        design = self.params.design
        if design.judges_by_session(path):
            return cl.hs if design.record == "handshake" else cl.ref
        return st.servers[s].reap

    def _reaps(self, st: SState, s: int, cl: SClient, path: str) -> z3.BoolRef:
        """`cl` has a session that reaper `path` on `s` destroys (fleet.would_reap).

        ``age >= mult * T`` as ``age * den >= num * T``: integers only.
        """
        mult = self.params.multiplier(path)
        timeout = _select(self.T, self.judged_level(st, s, cl, path))
        return z3.And(cl.has, self.perceived_age(cl, s) * mult.denominator >= mult.numerator * timeout)

    @staticmethod
    def is_valid(cl: SClient) -> z3.BoolRef:  # fleet.is_valid
        return _in(cl.phase, (_H, _W, _R))

    @staticmethod
    def up(srv: SServer) -> z3.BoolRef:
        return srv.down == 0

    def new_session(self, s: int, hs, ref) -> dict:  # fleet.new_session
        design = self.params.design
        by_session = design.judge == "session"
        keep_hs = by_session and design.record == "handshake"
        keep_ref = design.reply_advice == "arrival" or design.tuner == "fleet-staged" or (
            by_session and design.record == "refresh"
        )
        zero = self.num(0)
        return dict(has=self.truth(True), age=zero, stamp=self.num(self.params.offset(s)),
                    hs=hs if keep_hs else zero, ref=ref if keep_ref else zero)

    def due(self, st: SState) -> z3.BoolRef:
        """Some event is due, so time may not advance (fleet.actions' ``due``)."""
        return z3.Or(
            [z3.And(cl.timer == 0, _in(cl.phase, (_H, _W, _R, _CUT))) for cl in st.clients]
            + [srv.down == -1 for srv in st.servers]
            + [st.tuner == -1]
        )

    @staticmethod
    def _is(a: SAction, kind: str, client=-1, server=-1, value=-1) -> z3.BoolRef:
        return z3.And(a.kind == KIND[kind], a.client == client, a.server == server, a.value == value)

    def _no_session(self) -> dict:
        zero = self.num(0)
        return dict(has=self.truth(False), age=zero, stamp=zero, hs=zero, ref=zero)

    def _dropped(self) -> dict:
        """A client whose socket closed and whose session is gone: it retries."""
        return dict(phase=self.num(_R), server=self.num(-1), timer=self.num(self.retry_wait), **self._no_session())

    # ------------------------------------------------------------ due client events

    def reply_level(self, st: SState, cl: SClient):  # fleet.reply_level
        if self.params.design.reply_advice == "arrival":
            return cl.ref
        return _select([srv.adv for srv in st.servers], cl.server)

    def _reply(self, st: SState, a: SAction):  # fleet._reply
        for c, cl in enumerate(st.clients):
            level = self.reply_level(st, cl)
            guard = z3.And(a.kind == KIND["reply"], a.client == c, a.server == -1, _in(a.value, self.params.rtt),
                           cl.phase == _H, cl.timer == 0)
            yield guard, _with_client(st, c, cl._replace(phase=self.num(_W), timer=_select(self.I, level) + a.value))

    def _arrive(self, st: SState, a: SAction):  # fleet._arrive
        for c, cl in enumerate(st.clients):
            for s in range(self.params.servers):
                guard = z3.And(self._is(a, "arrive", client=c), cl.phase == _W, cl.timer == 0, cl.server == s)
                yield guard, self._connect(st, c, s)

    def _reconnect(self, st: SState, a: SAction):  # fleet._reconnect (+ fleet._client_event)
        none_up = z3.Not(z3.Or([self.up(srv) for srv in st.servers]))
        for c, cl in enumerate(st.clients):
            ready = z3.And(cl.timer == 0, _in(cl.phase, (_R, _CUT)))
            for s, srv in enumerate(st.servers):
                yield z3.And(self._is(a, "reconnect", client=c, server=s), ready, self.up(srv)), self._connect(st, c, s)
            failed = cl._replace(phase=self.num(_R), server=self.num(-1), timer=self.num(self.retry_wait))
            yield z3.And(self._is(a, "reconnect", client=c), ready, none_up), _with_client(st, c, failed)

    def _connect(self, st: SState, c: int, s: int) -> SState:  # fleet._connect
        """A connect from `c` reaches `s`: existence check, then refresh, else handshake."""
        cl, srv = st.clients[c], st.servers[s]
        refreshed = SClient(self.num(_H), self.num(s), _select(self.T, srv.adv),
                            **self.new_session(s, cl.hs, srv.adv))
        alive = z3.And(cl.has, z3.Not(self._reaps(st, s, cl, "existence")))
        return ite(alive, _with_client(st, c, refreshed), self._handshake(st, c, s))

    def _handshake(self, st: SState, c: int, s: int) -> SState:  # fleet._handshake
        srv = st.servers[s]
        cl = SClient(self.num(_H), self.num(s), _select(self.T, srv.adv), **self.new_session(s, srv.adv, srv.adv))
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
        for s, srv in enumerate(st.servers):
            victims = [self._reaps(st, s, cl, path) for cl in st.clients]
            clients = tuple(
                ite(hit, ite(_in(cl.phase, (_H, _W)), cl._replace(**self._dropped()), cl._replace(**self._no_session())), cl)
                for hit, cl in zip(victims, st.clients)
            )
            yield z3.And(self._is(a, path, server=s), self.up(srv), z3.Or(victims)), st._replace(clients=clients)

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
        # fleet (the only other tuner encoded): one load value for every server.
        settled = z3.And([z3.And(srv.adv == srv.target, srv.reap == srv.target) for srv in st.servers])
        target = st.servers[0].target
        hot = z3.Or([srv.hot for srv in st.servers])
        immediate = p.design.propagation_delay == 0
        for level in range(len(p.levels)):
            lv = self.num(level)
            rising = self._rising(level, target)
            servers = tuple(
                srv._replace(target=lv, hot=z3.And(srv.hot, z3.Not(rising)),
                             **(dict(adv=lv, reap=lv) if immediate else {}))
                for srv in st.servers
            )
            guard = z3.And(self._is(a, "load", value=level), settled, target != level, self._may_move(target, level, hot))
            yield guard, st._replace(servers=servers, tuner=self.num(0 if immediate else p.design.propagation_delay))
        for s, srv in enumerate(st.servers):
            nxt = _with_server(st, s, srv._replace(adv=srv.target, reap=srv.target))
            now_settled = z3.And([z3.And(x.adv == x.target, x.reap == x.target) for x in nxt.servers])
            nxt = nxt._replace(tuner=z3.If(now_settled, self.num(0), st.tuner))
            yield z3.And(self._is(a, "adopt", server=s), z3.Not(settled), srv.adv != target), nxt

    # ------------------------------------------------------------ faults

    def _lose(self, st: SState, a: SAction):  # fleet._lose (+ fleet._fault_actions)
        p = self.params
        for s, srv in enumerate(st.servers):
            if not p.can_lose(s):
                continue
            # A fleet that loses every server at once is a different outage.
            another_up = self.any([self.up(x) for j, x in enumerate(st.servers) if j != s])
            nxt = _with_server(st, s, srv._replace(down=self.num(p.faults.loss_duration)))
            clients = tuple(
                ite(z3.And(cl.server == s, _in(cl.phase, (_H, _W))), cl._replace(**self._dropped()), cl)
                for cl in st.clients
            )
            nxt = nxt._replace(clients=clients, losses=st.losses - 1)
            yield z3.And(self._is(a, "lose", server=s), st.losses > 0, self.up(srv), another_up), nxt

    def _crash(self, st: SState, a: SAction):  # fleet._crash
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_X), server=self.num(-1), timer=self.num(0))
            guard = z3.And(self._is(a, "crash", client=c), st.crashes > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(crashes=st.crashes - 1)

    def _cut(self, st: SState, a: SAction):  # fleet._cut
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_CUT), server=self.num(-1), timer=self.num(self.params.faults.cut_duration))
            guard = z3.And(self._is(a, "cut", client=c), st.cuts > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(cuts=st.cuts - 1)

    # ------------------------------------------------------------ time

    def _next_deadline(self, st: SState, d) -> z3.BoolRef:  # fleet._next_deadline
        """`d` is the smallest positive countdown (the longest hold when there is none)."""
        timers = [(z3.And(cl.phase != _X, cl.timer > 0), cl.timer) for cl in st.clients]
        timers += [(srv.down > 0, srv.down) for srv in st.servers]
        timers.append((st.tuner > 0, st.tuner))
        some = z3.Or([on for on, _ in timers])
        return z3.And(
            z3.Or([z3.And(on, d == t) for on, t in timers] + [z3.And(z3.Not(some), d == self.t_max)]),
            z3.And([z3.Implies(on, d <= t) for on, t in timers]),
        )

    def _tick(self, st: SState, a: SAction):  # fleet._tick
        d, cap = a.value, self.params.age_cap
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
        guard = z3.And(a.kind == KIND["tick"], a.client == -1, a.server == -1,
                       z3.Not(self.due(st)), self._next_deadline(st, d))
        yield guard, st._replace(clients=clients, servers=servers, tuner=tuner)
