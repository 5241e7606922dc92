"""The storm simulation's reapers and extra judges: the index they search and their sweeps.

`Reapers` is a base class of the simulation (`model.storm`). A group with a
session enters, when it is scheduled, one heap per reaper path, bucketed so
that each bucket's sessions share one cutoff on a given server
(`remember`, `slot`), and one heap per extra judge, ordered by expiry. A
sweep (`reap`, `expire`) pops only what the model's decision functions
judge past its cutoff (`fleet.judges_of`, `fleet.judged_level_of`,
`fleet.reap_age`); `destroy` counts each reap as a dead or a valid
client's and sends a valid client to reconnect. These are the reaps the
storm table counts and certification replays (`checkers.certify`), so they
sit in one place, apart from the clients' own steps.
"""

from __future__ import annotations

import heapq

from . import fleet
from .groups import DEAD, HUNG, Group as _Group
from .state import Session

__all__ = ["Reapers"]


class Reapers:
    """The reapers' index and sweeps of the storm simulation (a base class of `model.storm._Sim`)."""

    def remember(self, g: _Group) -> None:
        self.seq += 1
        session = g.session(0)
        for path in self.paths:
            bucket, key = self.slot(path, g, session)
            heapq.heappush(self.index[path].setdefault(bucket, []), (key, self.seq, g))
        if g.phase != DEAD:
            # An extra judge watches a running client's connection (the model's
            # `expired_judges`); an abandoned session has none, and a hung
            # client's own judge is frozen with it (a proxy's still runs).
            for j, judge in enumerate(self.p.judges):
                if g.phase == HUNG and judge.side == "client":
                    continue
                heapq.heappush(self.judge_heaps[j], (g.t_ref + self.table.judge_age(judge, g.hs), self.seq, g))

    def slot(self, path: str, g: _Group, session: Session) -> tuple[tuple, int]:
        holder = g.server if self.local else -1
        if self.source[path] == "server":
            return (holder, -1), g.base
        level, _ = fleet.judged_level_of(self.table, path, session, -1)
        if self.in_use:
            return (holder, level), g.base
        return (holder, -1), g.base + fleet.reap_age(self.table, path, level, level)

    def reap(self, s: int, path: str, t: int, ups: list[int]) -> None:
        """Reaper `path` on `s` destroys every session it judges past its cutoff."""
        now, srv = self.now(t, s), self.servers[s]
        source, table = self.source[path], self.table
        for (holder, level), heap in self.index[path].items():
            if not heap or s not in fleet.judges_of(table, holder if self.local else -1, ups):
                continue
            if source == "server" or self.in_use:
                if source == "server":
                    level, _ = fleet.judged_level_of(table, path, (), srv.reap)
                limit = now - fleet.reap_age(table, path, level, fleet.interval_level_of(table, level, srv.adv))
            else:
                limit = now  # keys are expiry instants
            while heap and (not heap[0][2].alive or heap[0][0] <= limit):
                _, _, g = heapq.heappop(heap)
                if g.alive:
                    self.destroy(g, t, s, path)

    def destroy(self, g: _Group, t: int, s: int, path: str) -> None:
        """`path` on `s` (a reaper; -1 and ``judge:J`` for an extra judge) destroys `g`'s session."""
        g.alive = False
        if g.phase in (DEAD, HUNG):  # no running client's: correct to reap
            self.out.reaped_dead[t] += g.n
            if g.phase == HUNG:
                self.faults.hung_reaped(g)
        else:
            # A running client's session: its socket is closed, it reconnects.
            self.out.reaped_valid[t] += g.n
            if self.rec:
                g.hist = self.rec.reap(g.hist, t, s, path, g.n)
            self.retry(g.n, g, t)

    def expire(self, t: int) -> None:
        """Each extra judge closes the connections silent past its cutoff (the model's ``expire``)."""
        for j, heap in enumerate(self.judge_heaps):
            while heap and (not heap[0][2].alive or heap[0][0] <= t):
                _, _, g = heapq.heappop(heap)
                if g.alive:
                    self.destroy(g, t, g.server, f"judge:{j}")
