"""Faults, time and the environment in the Z3 encoding.

What happens to a fleet from outside its protocol: a lost server (every
socket on it drops), a crashed or cut-off client, a tick of time up to the
next countdown, and, in the one-client system (``env=True``), the other
clients' moves that this client can see (`checkers.z3_encoding`, "Two
modes"). Each method is one rule of ``fleet.py`` (its comment names it). A
base class of `Encoding`.
"""

from __future__ import annotations

import z3

from .z3_records import ENV, KIND, SAction, SClient, SState, _CUT, _H, _R, _W, _X, _in, _with_client, _with_server, ite

__all__ = ["FaultRules"]


class FaultRules:
    """The fault, time and environment rules of an `Encoding` (a base class of it)."""

    # ------------------------------------------------------------ faults

    def _lose(self, st: SState, a: SAction):  # rules_faults._lose (+ rules_faults._drop_sockets)
        p = self.params
        for s, srv in enumerate(st.servers):
            if not p.can_lose(s):
                continue
            # A fleet that loses every server at once is a different outage.
            another_up = self.any([self.up(x) for j, x in enumerate(st.servers) if j != s])
            nxt = self.drop_sockets(_with_server(st, s, srv._replace(down=self.loss_duration)), s)
            nxt = nxt._replace(losses=st.losses - 1)
            yield z3.And(self._is(a, "lose", server=s), st.losses > 0, self.up(srv), another_up), nxt

    def drop_sockets(self, st: SState, s: int) -> SState:  # rules_faults._drop_sockets
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

    def _crash(self, st: SState, a: SAction):  # rules_faults._crash
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_X), server=self._half_open(cl), timer=self.num(0))
            guard = z3.And(self._is(a, "crash", client=c), st.crashes > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(crashes=st.crashes - 1)

    def _cut(self, st: SState, a: SAction):  # rules_faults._cut
        for c, cl in enumerate(st.clients):
            new = cl._replace(phase=self.num(_CUT), server=self._half_open(cl), timer=self.cut_duration)
            guard = z3.And(self._is(a, "cut", client=c), st.cuts > 0, _in(cl.phase, (_H, _W)))
            yield guard, _with_client(st, c, new)._replace(cuts=st.cuts - 1)

    def _half_open(self, cl: SClient):
        """The server left holding a crashed or cut-off client's socket (it matters only with a local store)."""
        return cl.server if self.params.heartbeat.store == "local" else self.num(-1)

    # ------------------------------------------------------------ time

    def _next_deadline(self, st: SState, d) -> z3.BoolRef:  # rules_faults._next_deadline
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

    def _tick(self, st: SState, a: SAction):  # rules_faults._tick
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
        which marks it hot (rules_clients._handshake). ``env(value=1)`` / ``env(value=2)``:
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
