"""The property formulas of the Z3 encoding, read together with its transition relation.

What the symbolic engine checks of a step or a frame: a step that reaps a
valid client (`bad`, ``no_valid_reap``), a step that reaps a crashed one
(`dead_reaped`), a step that makes a client handshake (`handshakes`), and a
frame that breaks ``parameter_agreement`` (`disagreement`). They only say
which enabled steps or which frames are bad; the rules in the other parts
say which steps are enabled. A base class of `Encoding`.
"""

from __future__ import annotations

import z3

from stormcheck.model.state import NO_PING

from .z3_records import KIND, _H, _R, _W, _X, _in, select

__all__ = ["PropertyFormulas", "REAPS"]

# Every path a `Reaped` event can name: the reaper paths, the extra judges'
# sides, one early heartbeat too many, and a session gone past its resume window.
REAPS = ("publish", "gc", "existence", "client", "proxy", "spacing", "resume")


class PropertyFormulas:
    """The property formulas of an `Encoding` over its frames and steps (a base class of it)."""

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
