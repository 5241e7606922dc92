"""The client rules of the Z3 encoding: a due client event and a connect, as ``fleet.py`` states them.

A heartbeat reply, an arrival, a reconnect, and what a connect does on the
server it reaches (refresh, handshake, a 401 followed now or later, one
early heartbeat too many, a resumed session). Each method is one rule of
``fleet.py`` (its comment names it): guard first, then the next frame. A
base class of `Encoding`.
"""

from __future__ import annotations

import z3

from stormcheck.model.state import NO_PING

from .z3_records import KIND, SAction, SClient, SState, _CUT, _H, _J, _R, _W, _in, _with_client, _with_server, ite, select

__all__ = ["ClientRules"]


class ClientRules:
    """The client rules of an `Encoding` (a base class of it)."""

    # ------------------------------------------------------------ due client events

    def reply_level(self, st: SState, cl: SClient):  # fleet.reply_level
        if self.params.heartbeat.interval_from in ("client", "handshake"):
            return cl.hs
        if self.params.design.reply_advice == "arrival":
            return cl.ref
        return select([srv.adv for srv in st.servers], cl.server)

    def _reply(self, st: SState, a: SAction):  # rules_clients._reply
        for c, cl in enumerate(st.clients):
            # A client running A may pick B up from this reply (rules_rollout._pick_up).
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

    def _arrive(self, st: SState, a: SAction):  # rules_clients._arrive
        for c, cl in enumerate(st.clients):
            for s in range(self.params.servers):
                guard = z3.And(self._is(a, "arrive", client=c), cl.phase == _W, cl.timer == 0, cl.server == s)
                yield guard, self._connect(st, c, s)

    def _reconnect(self, st: SState, a: SAction):  # rules_clients._reconnect (+ rules_clients._reconnects)
        none_up = z3.Not(z3.Or([self.up(srv) for srv in st.servers]))
        for c, cl in enumerate(st.clients):
            ready = z3.And(cl.timer == 0, _in(cl.phase, (_R, _CUT, _J)))
            # During a release window a reconnect may declare either level (rules_clients._reconnects).
            value = self.ro.declared(st, cl, a.value) if self.ro is not None else a.value == -1
            for s, srv in enumerate(st.servers):
                is_s = z3.And(a.kind == KIND["reconnect"], a.client == c, a.server == s, value)
                yield z3.And(is_s, ready, self.up(srv)), self._reconnected(st, c, s, a.value)
            # Nowhere to connect: it tries again later (a client about to re-handshake keeps that plan).
            failed = cl._replace(phase=z3.If(cl.phase == _J, self.num(_J), self.num(_R)), server=self.num(-1),
                                 timer=self.retry_wait)
            yield z3.And(self._is(a, "reconnect", client=c), ready, none_up), _with_client(st, c, failed)

    def _reconnected(self, st: SState, c: int, s: int, declared=None) -> SState:  # rules_clients._reconnect, to server s
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
        """`st` with client `c`'s session gone (what `rules_clients._handshake` is given: a rollout's phase reads it)."""
        return _with_client(st, c, st.clients[c]._replace(**self._no_session()))

    def _resumes(self, cl: SClient) -> z3.BoolRef:
        return z3.And(cl.has, cl.age < self.params.heartbeat.resume_window)

    def _resume(self, st: SState, c: int, s: int) -> SState:  # rules_clients._resume
        cl, srv = st.clients[c], st.servers[s]
        session = self.new_session(s, cl.hs, srv.adv)
        if self.params.heartbeat.min_spacing:
            session["strikes"] = self.num(NO_PING)  # a new connection's count starts afresh
        return _with_client(st, c, SClient(self.num(_H), self.num(s), self.hold(srv.adv), **session))

    def _connect_cases(self, st: SState, c: int, s: int, declared=None) -> list:  # rules_clients._connect (+ _refused...)
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

    def _connect(self, st: SState, c: int, s: int, declared=None) -> SState:  # rules_clients._connect
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

    def _handshake(self, st: SState, c: int, s: int, declared=None) -> SState:  # rules_clients._handshake
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
