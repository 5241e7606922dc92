"""Configuration rollouts in Z3: the rollout rules of `stormcheck.model.fleet`, over frame-indexed terms.

`checkers.z3_encoding.Encoding` asks this module for every rule of a fleet
with a `Params.rollout` (and for nothing else): the operator's ``launch``,
``restart`` and ``reconfigure`` of a servers phase, a release's
``upgrade``, a client picking B up from a reply (``_pick_up``) or choosing
its level at a reconnect during a release window, a new session's level
(``client_level``), and ``_settle``, which starts the next phase after any
step that completed one. Each method names the function of ``fleet.py`` it
mirrors; tests/test_z3_encoding.py holds them to it (random reachable states
and actions of rollout fleets: the same enabledness, the same next state).

Where the rollout stands
------------------------
As in the model, the state records only the marker `State.rollout` (the
frame's ``rollout`` term); the phase under way is a function of the state
(`current`), built from the concrete list of phases: ``n``, one past the
last phase, stands for the model's None (done, or no phase left).

The one-client system (``env=True``)
------------------------------------
A clients phase is complete once *every* client runs B. A proof's one
client cannot see the others, so the frame carries one more Bool,
``others``: the other clients do not hold the clients phase back (each runs
B, has no session, or crashed). Other clients' steps move it (a reload, a
reap, a server restart that drops their sockets, a new session at A), and a
step of any kind may be one that moves it too; so in the one-client system
every step may set it, and may clear it where another client could start a
session at A: before a clients phase began, or while a release window lets
a reconnect declare A (`others_step`; elsewhere it stays set, or the
one-client system could start the rollout again after its end). The
environment may also move it alone
(`environment`, ``env(value=3)``), after which `settle` moves the rollout
on exactly as the model does after the other client's step. It starts free
(a fleet of one client has no others). The one-client system therefore
over-approximates every fleet's rollout: every step of a fleet, seen from
one client, is one of its steps (tests/test_z3_encoding.py checks it step by
step). Outside the one-client system ``others`` is the constant True (a
fleet's clients are all in the frame), so the rules are exactly the model's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import z3

from stormcheck.model.rollout import DUE, NOT_BEGUN, RUNNING, Phase
from stormcheck.model.state import CRASHED, HELD, RETRY, WAITING

if TYPE_CHECKING:
    from .z3_encoding import Encoding
    from .z3_records import SAction, SServer, SState

__all__ = ["RolloutRules", "ENV_OTHERS_DONE"]

# The environment's move (``env`` with this value) that stands for the other
# clients' completing the clients phase under way.
ENV_OTHERS_DONE = 3


def _start_timer(phase: Phase) -> int:  # rules_rollout._start_timer
    if phase.side == "clients" and phase.pickup == "release":
        return phase.spread if phase.spread > 0 else DUE
    return RUNNING


class RolloutRules:
    """The rollout rules of one fleet, over the terms of `enc` (an `Encoding` of a fleet with a rollout)."""

    def __init__(self, enc: "Encoding") -> None:
        from .z3_records import PHASE

        self.enc = enc
        self.rollout = enc.params.rollout
        self.phases: tuple[Phase, ...] = self.rollout.phases
        self.n = len(self.phases)
        self._h, self._w, self._r, self._x = (PHASE[p] for p in (HELD, WAITING, RETRY, CRASHED))
        self.clients_phase = any(p.side == "clients" for p in self.phases)

    # ------------------------------------------------------------ where the rollout stands

    def server_done(self, srv: "SServer", phase: Phase) -> z3.BoolRef:  # rules_rollout._server_done
        if phase.part == "judge":
            return srv.reap >= 1
        if phase.part == "advice":
            return srv.adv >= 1
        return z3.And(srv.adv >= 1, srv.reap >= 1)

    def phase_done(self, st: "SState", phase: Phase) -> z3.BoolRef:  # rules_rollout._phase_done
        if phase.side == "servers":
            return z3.And([self.server_done(srv, phase) for srv in st.servers])
        # A crashed client never picks anything up: the rollout does not wait
        # for it. `others`: the clients the frame does not hold (module docstring).
        mine = [z3.Or(z3.Not(cl.has), cl.hs >= 1, cl.phase == self._x) for cl in st.clients]
        return z3.And([st.others] + mine)

    def current(self, st: "SState"):  # fleet.current_phase (n: None)
        """The index of the phase under way or next to begin; `n` when every phase is done."""
        k = self.enc.num(self.n)
        for j in range(self.n - 1, -1, -1):
            k = z3.If(z3.Not(self.phase_done(st, self.phases[j])), self.enc.num(j), k)
        # A release is over when its window is: while its countdown runs, the
        # next phase (servers, none of which has moved) waits.
        out = k
        for last in range(1, self.n + 1):
            prev = self.phases[last - 1]
            if not (prev.side == "clients" and prev.pickup == "release"):
                continue
            untouched = self.enc.truth(True) if last == self.n else z3.Not(
                z3.Or([self.server_done(srv, self.phases[last]) for srv in st.servers]))
            out = z3.If(z3.And(k == last, st.rollout > 0, untouched), self.enc.num(last - 1), out)
        return out

    def _under_way(self, st: "SState", test) -> z3.BoolRef:
        """The rollout was launched and the phase under way satisfies `test` (a Python predicate on a `Phase`)."""
        cur = self.current(st)
        hits = [cur == j for j, p in enumerate(self.phases) if test(p)]
        return z3.And(st.rollout != NOT_BEGUN, self.enc.any(hits))

    def release_open(self, st: "SState") -> z3.BoolRef:  # rules_rollout._release_open
        cur = self.current(st)
        hits = [cur == j for j, p in enumerate(self.phases) if p.side == "clients" and p.pickup == "release"]
        return z3.And(st.rollout > 0, self.enc.any(hits))

    def client_level(self, st: "SState"):  # fleet.client_level
        """The level a client without a session starts its next one with: B once a clients phase began."""
        num, cur = self.enc.num, self.current(st)
        out = num(1 if self.clients_phase else 0)  # cur == n: every phase done
        for j in range(self.n - 1, -1, -1):
            if any(p.side == "clients" for p in self.phases[:j]):
                level = num(1)
            elif self.phases[j].side == "clients":
                level = z3.If(st.rollout != NOT_BEGUN, num(1), num(0))
            else:
                level = num(0)
            out = z3.If(cur == j, level, out)
        return out

    def declared(self, st: "SState", cl, value) -> z3.BoolRef:  # rules_clients._reconnects (the value of a reconnect)
        """`value` is a level a reconnect to an up server may declare: 0 or 1 while a release's window runs
        (for a client without a session, or any client where sessions live with their socket), else -1."""
        local = self.enc.params.heartbeat.store == "local"
        choose = z3.And(self.release_open(st), z3.Or(self.enc.truth(local), z3.Not(cl.has)))
        return z3.If(choose, z3.Or(value == 0, value == 1), value == -1)

    def due(self, st: "SState") -> list:
        """The rollout's urgent events (fleet.RULES' ``due``): a batch's restarts and live changes; a
        release's upgrades once its window ran out."""
        out = [guard for kind in ("restart", "reconfigure") for guard, _ in self._moves(st, None, kind)]
        out += [z3.And(st.rollout == DUE, guard) for guard, _ in self.upgrade(st, None)]
        return out

    # ------------------------------------------------------------ the rules

    def launch(self, st: "SState", a: "SAction"):  # rules_rollout._launch
        cur = self.current(st)
        timer = self.enc.num(NOT_BEGUN)
        for j in range(self.n - 1, -1, -1):
            timer = z3.If(cur == j, self.enc.num(_start_timer(self.phases[j])), timer)
        guard = z3.And(self.enc._is(a, "launch"), st.rollout == NOT_BEGUN, cur != self.n)
        yield guard, st._replace(rollout=timer)

    def restart(self, st: "SState", a: "SAction"):  # rules_rollout._restart (+ rules_faults._drop_sockets, rules_rollout._next_batch)
        yield from self._moves(st, a, "restart")

    def reconfigure(self, st: "SState", a: "SAction"):  # rules_rollout._reconfigure (+ rules_rollout._next_batch)
        yield from self._moves(st, a, "reconfigure")

    def _moves(self, st: "SState", a, kind: str):  # rules_rollout._moving, per server and per phase
        """A server of the servers phase under way takes the phase's part at B (`a` None: guards only)."""
        from .z3_records import _with_server

        enc, live = self.enc, kind == "reconfigure"
        cur = self.current(st)
        for j, phase in enumerate(self.phases):
            if phase.side != "servers" or (phase.change == "live") != live:
                continue
            for s, srv in enumerate(st.servers):
                guard = z3.And(st.rollout != NOT_BEGUN, cur == j, z3.Or(st.rollout == DUE, st.rollout == RUNNING),
                               enc.up(srv), z3.Not(self.server_done(srv, phase)))
                if a is not None:
                    guard = z3.And(enc._is(a, kind, server=s), guard)
                one = enc.num(1)
                new = srv._replace(adv=one if phase.part != "judge" else srv.adv,
                                   reap=one if phase.part != "advice" else srv.reap)
                if not live:
                    new = new._replace(down=enc.num(self.rollout.restart))
                nxt = _with_server(st, s, new)
                if not live:
                    nxt = enc.drop_sockets(nxt, s)
                yield guard, self._next_batch(nxt, phase)

    def _next_batch(self, st: "SState", phase: Phase) -> "SState":  # rules_rollout._next_batch
        """After one server moved: the batch goes on, or the next one comes after the pace."""
        num = self.enc.num
        done = [self.server_done(srv, phase) for srv in st.servers]
        count = sum(z3.If(d, 1, 0) for d in done)
        timer = st.rollout
        for k in range(len(st.servers)):
            at_k = RUNNING if k % phase.batch or phase.pace == 0 else phase.pace
            timer = z3.If(count == k, num(at_k), timer)
        return st._replace(rollout=timer)

    def upgrade(self, st: "SState", a):  # rules_rollout._upgrade (a None: guards only)
        from .z3_records import _with_client, ite

        enc = self.enc
        release = self._under_way(st, lambda p: p.side == "clients" and p.pickup == "release")
        for c, cl in enumerate(st.clients):
            guard = z3.And(release, cl.has, cl.hs < 1, cl.phase != self._x)
            if a is not None:
                guard = z3.And(enc._is(a, "upgrade", client=c), guard)
            # A running client's page reloads: its socket closes and it reconnects
            # after the retry delay, running B; any other session takes B in place.
            reloaded = cl._replace(phase=enc.num(self._r), server=enc.num(-1), timer=enc.retry_wait,
                                   **enc._no_session())
            running = z3.Or(cl.phase == self._h, cl.phase == self._w)
            yield guard, _with_client(st, c, ite(running, reloaded, cl._replace(hs=enc.num(1))))

    def pick_up(self, st: "SState", c: int) -> "SState":  # rules_rollout._pick_up
        """A client running A takes B from a reply, if the clients phase under way says so."""
        from .z3_records import _with_client

        cl = st.clients[c]
        advice = self._under_way(st, lambda p: p.side == "clients" and p.pickup == "advice")
        takes = z3.And(advice, cl.hs < 1)
        return _with_client(st, c, cl._replace(hs=z3.If(takes, self.enc.num(1), cl.hs)))

    def settle(self, pre: "SState", post: "SState") -> "SState":  # rules_rollout._settle
        """After a step that completed a phase, start the next one (or mark the rollout done).

        Phases follow one another: the next one begins even if it looks
        complete already, and its marker is the one that phase starts with.
        """
        before, after = self.current(pre), self.current(post)
        timer = post.rollout
        for j in range(self.n - 1, -1, -1):
            following = j + 1
            start = NOT_BEGUN if following == self.n else _start_timer(self.phases[following])
            timer = z3.If(before == j, self.enc.num(start), timer)
        moved = z3.And(pre.rollout != NOT_BEGUN, after != before, before != self.n)
        return post._replace(rollout=z3.If(moved, timer, post.rollout))

    def others_step(self, pre: "SState", others) -> z3.BoolRef:
        """How one step may move ``others`` (module docstring): to True at any moment; back to False
        only where another client may start a session at A (a new session's level is A, or a release
        window lets a reconnect declare A). Once the clients phase is over for them it stays over."""
        at_a = z3.Or(self.client_level(pre) == 0, self.release_open(pre))
        return z3.Implies(z3.And(pre.others, z3.Not(at_a)), others)

    def environment(self, st: "SState", a: "SAction"):
        """``env(value=3)``: the other clients' side of a clients phase moves, and nothing else (module docstring).

        The next frame's ``others`` is left free by `Encoding._trans_at`."""
        if not self.clients_phase:
            return
        yield z3.And(a.kind == self._env_kind(), a.client == -1, a.server == -1, a.value == ENV_OTHERS_DONE), st

    @staticmethod
    def _env_kind():
        from .z3_records import ENV

        return ENV
