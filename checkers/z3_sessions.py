"""Sessions and judging in the Z3 encoding: the helpers of ``fleet.py`` that its rules share.

Who judges a session and at what age a reaper or an extra judge destroys it,
what a new, detached or closed session looks like, and when an event is due
so that time may not pass. Each mirrors the function of ``fleet.py`` its
comment names. The client rules, the server rules and the property formulas
all read them, so they sit in a part of their own. A base class of `Encoding`.
"""

from __future__ import annotations

import z3

from .z3_records import KIND, SAction, SClient, SServer, SState, _CUT, _H, _J, _R, _W, _X, _in, ite, select

__all__ = ["SessionTerms"]


class SessionTerms:
    """The session helpers of an `Encoding` (a base class of it)."""

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

    def _sweeps(self, st: SState, s: int, cl: SClient, path: str) -> z3.BoolRef:  # rules_reapers._sweep, per session
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
        keep_hs, keep_ref = self.params.session_levels_kept
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

    def _detached(self, cl: SClient) -> dict:  # rules_common._detached
        """What is left of `cl`'s session once its socket closed: kept for the resume window (age from 0), else none."""
        if not self.params.heartbeat.resume_window:
            return self._no_session()
        keep = z3.And(cl.has, cl.phase != _X)
        zero = self.num(0)
        return dict(has=keep, age=zero, stamp=z3.If(keep, cl.stamp, zero), hs=z3.If(keep, cl.hs, zero),
                    ref=z3.If(keep, cl.ref, zero), strikes=zero)

    def _closed(self, cl: SClient) -> SClient:  # rules_reapers._destroy, one victim
        """`cl` after its session was reaped and its socket closed: a running client retries."""
        dropped = cl._replace(phase=self.num(_R), server=self.num(-1), timer=self.retry_wait, **self._detached(cl))
        return ite(_in(cl.phase, (_H, _W)), dropped, cl._replace(server=self.num(-1), **self._detached(cl)))
