"""The server rules of the Z3 encoding: reapers, extra judges, restores and the load tuner.

A publish or GC sweep, an extra judge's close, a restored server, and the
tuner's moves under each design (per server, fleet-wide, staged). Each
method is one rule of ``fleet.py`` (its comment names it): guard first, then
the next frame. A base class of `Encoding`.
"""

from __future__ import annotations

import z3

from stormcheck.model.fleet import DELETE_FIRST, FLUSH_FIRST

from .z3_records import KIND, SAction, SState, _H, _W, _in, _with_client, _with_server, ite

__all__ = ["ServerRules"]


class ServerRules:
    """The server and tuner rules of an `Encoding` (a base class of it)."""

    # ------------------------------------------------------------ servers and tuner

    def _restore(self, st: SState, a: SAction):  # rules_faults._restore
        for s, srv in enumerate(st.servers):
            yield z3.And(self._is(a, "restore", server=s), srv.down == -1), _with_server(st, s, srv._replace(down=self.num(0)))

    def _deadline(self, st: SState, a: SAction):  # rules_tuner._deadline
        servers = tuple(srv._replace(adv=srv.target, reap=srv.target) for srv in st.servers)
        yield z3.And(self._is(a, "deadline"), st.tuner == -1), st._replace(servers=servers, tuner=self.num(0))

    def _publish(self, st: SState, a: SAction):  # rules_reapers._publish
        yield from self._reaper(st, a, "publish")

    def _gc(self, st: SState, a: SAction):  # rules_reapers._gc
        yield from self._reaper(st, a, "gc")

    def _reaper(self, st: SState, a: SAction, path: str):  # rules_reapers._sweep + rules_reapers._destroy (+ rules_reapers._reapers)
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
                # delete comes first is the action's value (rules_reapers._publishes).
                held = z3.Or([z3.And(v, _in(cl.phase, (_H, _W))) for v, cl in zip(victims, st.clients)])
                order = z3.Or(a.value == FLUSH_FIRST, a.value == DELETE_FIRST)
                value = z3.Or(a.value == -1, order) if self.env else z3.If(held, order, a.value == -1)
                yield z3.And(guard, value), st
                continue
            clients = tuple(ite(hit, self._closed(cl), cl) for hit, cl in zip(victims, st.clients))
            yield z3.And(guard, a.value == -1), st._replace(clients=clients)

    def _expire(self, st: SState, a: SAction):  # rules_reapers._expire
        for c, cl in enumerate(st.clients):
            for j, judge in enumerate(self.params.judges):
                guard = z3.And(self._is(a, "expire", client=c, value=j), self._expired(cl, judge))
                yield guard, _with_client(st, c, self._closed(cl))

    def _rising(self, level: int, current) -> z3.BoolRef:
        """Moving from level `current` to `level` raises the load (a concrete table)."""
        avg = [lv.avg_ms for lv in self.params.levels]
        return self.any([current == c for c in range(len(avg)) if avg[c] < avg[level]])

    def _may_move(self, current, level: int, hot) -> z3.BoolRef:  # rules_tuner._may_move
        rising = self._rising(level, current)
        return z3.Or(z3.Not(rising), self.truth(self.params.load_trigger == "free"), hot)

    def _tuner(self, st: SState, a: SAction):  # rules_tuner._when_load + rules_tuner._load / rules_tuner._adopt
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

    def _staged(self, st: SState, a: SAction, settled, target):  # rules_tuner._staged + rules_tuner._adopt
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
