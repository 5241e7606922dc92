"""The storm simulation's client steps: replies, heartbeats, reloads, drops and reconnects of groups.

`ClientSteps` is a base class of the simulation (`model.storm`). Each
method takes a group of interchangeable clients (`model.groups`) through
one of its own steps by the model's rule (`_Sim.step`) and schedules it
as the model left it: a reply (`reply`, its round trip longer by its
server's queue with ``reply_share``), the next heartbeat (`arrive`: a
refresh, a refusal by the existence check, or a page reload), a closed
socket (`drop`, `abandon`) and the reconnect that follows by the run's
policy (`retry`), and a second's reconnects (`handshake`: the retry
budget, admission control, load shedding and the setup deadline, with the
setups abandoned at it, `give_up`). `model.storm` decides when each step
is due; this module says what the step does to the group.
"""

from __future__ import annotations

from .events import Handshake, Reaped
from .groups import DEAD, _RETRYING, Group as _Group
from .history import Pieces
from .load import StormError
from .state import HELD, RETRY, Action, Client

__all__ = ["ClientSteps"]


class ClientSteps:
    """The client steps of the storm simulation (a base class of `model.storm._Sim`)."""

    def drop(self, g: _Group, after: Client, t: int) -> None:
        """`g`'s socket closed and the model sent it to reconnect; an abandoned session may linger."""
        if after.phase != RETRY or after.session:
            raise StormError(f"the model left a dropped client {after.phase} with session {after.session}: "
                             "not a reconnect the simulation covers")
        self.abandon(g)
        self.retry(g.n, g, t)

    def abandon(self, g: _Group, n: float | None = None) -> _Group | None:
        """`g`'s clients leave their sessions; in a shared store they linger, dead, until a reaper comes (returned)."""
        dead = None
        if self.lingers:
            dead = _Group(g.n if n is None else n, DEAD, g.server, g.t_ref, g.stamp, g.hs, g.ref)
            self.remember(dead)
        if n is None:
            g.alive = False
        return dead

    def retry(self, n: float, g: _Group, t: int, pieces: Pieces | None = None) -> None:
        """`n` clients of `g` lost their socket: they reconnect by their policy.

        With a recording, `pieces` (default: `g`'s history) are their histories.
        """
        # Capped where the policy stops changing, so such clients share a group.
        attempt = min(g.attempt + 1, self.s.policy.saturates_at) if g.phase == RETRY else 1
        prev = g.prev if g.phase == RETRY else 0
        for count, (delay, nxt_prev) in self.choose(
            n, ((p, (d, nx)) for d, p, nx in self.s.policy.delays(attempt, prev))
        ):
            # The retry arrives the policy's delay plus a round trip after the
            # drop (the model's `Params.retry_delay` for its fixed policy).
            for part, hist in pieces.take(count) if pieces else ((count, g.hist),):
                self.schedule(t + max(delay + self.rtt, 1), _Group(part, RETRY, attempt=attempt, prev=nxt_prev,
                                                                   wstart=g.wstart, used=g.used, hist=hist))

    def place(self, g: _Group, after: Client, t: int, n: float | None = None) -> None:
        """Schedule `n` of `g`'s clients (default: all) as the model left them (`after`): held or waiting.

        Where their session is still `g`'s, `g` itself moves on (its index
        entries stay valid); otherwise they form a new group.
        """
        session = after.session
        t_ref = t - session.age
        same = n is None and g.phase != RETRY and \
            (t_ref, session.stamp, session.hs_level, session.ref_level) == (g.t_ref, g.stamp, g.hs, g.ref)
        if same:
            g.phase, g.server = after.phase, after.server
        else:
            if n is None:
                g.alive = False
            g = _Group(g.n if n is None else n, after.phase, after.server, t_ref, session.stamp, session.hs_level,
                       session.ref_level, wstart=g.wstart, used=g.used, hist=g.hist)
        if after.phase == HELD and after.timer == 0:
            # Answered at once (a ping/pong stack): the reply is due now.
            if not same:
                self.remember(g)
            self.reply(g, t)
            return
        # A next heartbeat due at once (no interval, no RTT) waits for the next second.
        self.schedule(t + max(after.timer, 1), g, stored=same)

    def reply(self, g: _Group, t: int) -> None:
        # The model's reply, its round trip the RTT plus the server's delay
        # behind its queued work (`LoadModel.reply_delay_s`; none by default).
        rtt = self.rtt + self.reply_delay(g.server) if self.reply_share else self.rtt
        if rtt > self.rtt:
            # Later than any round trip the scenario allows ([protocol] rtt): what the model and
            # `check` prove assumes none is, so the output says how many were (`meta["late_replies"]`).
            self.late_replies += g.n
            self.latest_reply = max(self.latest_reply, rtt)
        after, _ = self.step(self.client(g, t), Action("reply", client=0, value=rtt))
        if self.rec:
            g.hist = self.rec.note(g.hist, t, "reply", -1, after, value=rtt)
        self.place(g, after, t)

    def reply_delay(self, s: int) -> int:
        lm = self.loads[s]
        return lm.reply_delay_s(self.backlog[s] + self.work[s] / lm.capacity)

    def arrive(self, g: _Group, t: int, handshakes: list) -> None:
        # A reload: the user opens the page anew instead of sending the next
        # heartbeat; the old session is abandoned.
        q = min(1.0, self.churn_s * (t - g.t_ref))
        rec, before = self.rec, g.hist
        for n, reload in self.choose(g.n, ((q, True), (1 - q, False))):
            if reload:
                self.abandon(g, n)
                hist = rec.note(before, t, "reload") if rec else None
                handshakes.append((_Group(n, RETRY, attempt=0, wstart=g.wstart, used=g.used, hist=hist), -1))
                continue
            after, events = self.step(self.client(g, t), Action("arrive", client=0))
            if any(isinstance(e, Reaped) for e in events):
                # The existence check refused it (a valid client): the model's
                # client handshakes again at once, on the same server.
                self.out.reaped_valid[t] += n
                hist = rec.reap(before, t, g.server, "existence", n) if rec else None
                handshakes.append((_Group(n, RETRY, attempt=1, wstart=g.wstart, used=g.used, hist=hist), g.server))
                continue
            if rec:
                g.hist = rec.note(before, t, "arrive", -1, after)
            self.place(g, after, t, n)
        g.alive = False

    def handshake(self, groups: list, t: int) -> None:
        ups = self.up(t)
        S, budget, window = self.s, self.s.budget, self.s.budget_window
        # Clients reconnecting in the same second with the same retry state
        # are one batch (its mean latency is that of the parts, one after another).
        # (A recording hands the batch's clients out to its histories in
        # order, `Pieces`: the draws stay the batch's, as without one.)
        pooled: dict[tuple, tuple[_Group, int]] = {}
        parts: dict[tuple, list] = {}
        for g, fixed in groups:
            key = (g.attempt, g.prev, g.wstart, g.used, fixed)
            if self.rec:
                parts.setdefault(key, []).append((g.n, g.hist))
            if key in pooled:
                pooled[key][0].n += g.n
            else:
                pooled[key] = (g, fixed)
        for key, (g, fixed) in pooled.items():
            pieces = Pieces(parts[key]) if self.rec else None
            wstart, used = g.wstart, g.used
            if budget and g.attempt > 0:
                # Budgets count reconnects per fixed window [k W, (k+1) W):
                # a sliding window would make the start a per-client state.
                if t - wstart >= window:
                    wstart, used = t - t % window, 0
                if used >= budget:
                    # Out of budget: wait for the window to end, then try again.
                    for n, hist in pieces.take(g.n) if pieces else ((g.n, None),):
                        self.schedule(wstart + window, _Group(n, RETRY, attempt=g.attempt, prev=g.prev,
                                                              wstart=wstart, used=used, hist=hist))
                    continue
                used += 1
            targets = [fixed] if fixed in ups else ups
            if not targets:  # nowhere to connect: the attempt fails and is retried later
                self.retry(g.n, g, t, pieces)
                continue
            for n, s in self.choose(g.n, ((1.0 / len(targets), s) for s in targets)):
                lm, setup = self.loads[s], S.setup
                wait = self.backlog[s] + self.work[s] / lm.capacity  # seconds of queue ahead of this batch
                room = S.admission - self.admitted[s] if S.admission else n
                take = max(0.0, min(n, room, setup.room(wait, lm)))  # admission control, then load shedding
                admitted = pieces.take(take) if pieces else ()
                if take < n:
                    self.out.rejected[t] += n - take
                    self.retry(n - take, _Group(0, RETRY, attempt=g.attempt, prev=g.prev, wstart=wstart, used=used),
                               t, Pieces(pieces.take(n - take)) if pieces else None)
                if take <= 0:
                    continue
                self.admitted[s] += take
                # Past the deadline a client gives up; the server does the work
                # of those in time, and of the others unless it cancels it.
                done = setup.finished(take, wait, lm)
                worked = done if setup.cancels else take
                self.windows[s].add(lm.batch_latency_ms(wait, worked), worked * lm.channels)
                self.work[s] += worked * lm.reconnect_work_s
                self.out.reconnects[t] += take
                # The model's reconnect: a handshake and its first heartbeat, one step.
                after, events = self.step(_RETRYING, Action("reconnect", client=0, server=s))
                if not any(isinstance(e, Handshake) for e in events):
                    raise StormError(f"a reconnect to s{s} did not handshake ({events}): not covered")
                g.wstart, g.used = wstart, used
                # `done` of them set up in time (which of the batch's interchangeable
                # clients are late is a labelling: the first ones, here).
                kept = Pieces(admitted) if pieces else None
                if done < take:
                    self.give_up(take - done, g, after, t, kept.take(take - done) if kept else None)
                if done > 0 and not pieces:
                    self.place(g, after, t, done)
                for n, hist in kept.take(done) if kept else ():
                    g.hist = self.rec.note(hist, t, "reconnect", s, after)
                    self.place(g, after, t, n)
        if self.gave_up:
            self.reconnect_abandoned(t)
        self.left_behind.clear()

    def give_up(self, n: float, g: _Group, after: Client, t: int, pieces: list | None = None) -> None:
        """`n` of `g`'s clients, handshaken at `t` (`after`), abandon their setup at its deadline.

        The session the handshake made is left behind (in a shared store it
        lingers, dead, until a reaper comes), and the clients reconnect by
        their policy from the deadline on, one failed attempt more. A
        recording notes the abandonment in each one's history (`pieces`).
        """
        self.out.abandoned[t] += n
        session = after.session
        # The sessions this second's abandoned setups leave on one server are
        # alike: one dead group for them all, grown by each batch.
        left = (after.server, t - session.age, session.stamp, session.hs_level, session.ref_level)
        dead = self.left_behind.get(left)
        if dead is not None:
            dead.n += n
        else:
            self.left_behind[left] = self.abandon(_Group(n, after.phase, *left))
        key = (g.attempt, g.prev, g.wstart, g.used)
        total, parts = self.gave_up.get(key, (0.0, []))
        parts += [(m, self.rec.note(hist, t, "abandoned", after.server)) for m, hist in pieces or ()]
        self.gave_up[key] = (total + n, parts)

    def reconnect_abandoned(self, t: int) -> None:
        """The clients that gave up a setup started at `t` reconnect by their policy from its deadline.

        Those with the same retry state are split over the policy's delays
        together: in a storm of abandoned setups, every server's and every
        batch's share is one split (with a jittered policy, a group per delay).
        """
        for (attempt, prev, wstart, used), (n, parts) in self.gave_up.items():
            self.retry(n, _Group(0, RETRY, attempt=attempt, prev=prev, wstart=wstart, used=used),
                       t + self.s.setup.deadline, Pieces(parts) if self.rec else None)
        self.gave_up.clear()
