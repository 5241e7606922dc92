"""The tuner's side of the storm simulation: the advice levels a run grows, and the adjusters' moves.

The load-adaptive adjuster computes a (T, I) pair from its samples
(`model.load`); each pair a run meets becomes a level of a table the run
grows (`_Levels`), which the model's functions read as `Params.levels`
(`_Table`, with each level's reap ages computed when a rule first reads
them). `Tuner`, a base class of the simulation (`model.storm`), drains the
servers' backlogs each second and, where the model lets T/I move
(`Params.load_moves`), takes the tuner's steps through the model's guards
and effects: a server's adjuster, a fleet-wide change and its propagation
deadline, a staged change's halves. It sits apart from the clients' steps:
it moves the servers' records, never a client's.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

from . import fleet
from .load import ADJUST_EVERY
from .params import REAPER_PATHS, Level, Params, adjuster_advice
from .state import HELD, RETRY, Action, Client, Session, State

__all__ = ["Tuner"]


# ------------------------------------------------------------ advice levels


class _Lazy(dict):
    """A table filled on first use: ``table[key]`` is ``make(key)``, computed once."""

    __slots__ = ("make",)

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self[key] = self.make(key)
        return value


class _Table(Params):
    """`Params` over the levels a run has met so far; reap ages computed per level on first use.

    The model tabulates `reap_ages` for every level at once; a run meets its
    levels one by one (hundreds of them in a long storm), so here each entry
    is `Params.reap_age` of that level, when some rule first reads it.
    """

    @cached_property
    def reap_ages(self):
        return {path: _Lazy(lambda level, path=path: self.reap_age(path, level)) for path in REAPER_PATHS}

    @cached_property
    def reap_ages_in_use(self):
        return {path: _Lazy(lambda level, path=path: _Lazy(lambda j, level=level: self.reap_age(path, level, j)))
                for path in REAPER_PATHS}


class _Levels:
    """The advice levels a run has met: level 0 is the scenario's base; the adjuster adds the others."""

    def __init__(self, params: Params, threshold_ms: int) -> None:
        self.params, self.threshold = params, threshold_ms
        base = params.levels[0]
        self.levels = [base]
        self.index = {(base.timeout, base.interval): 0}
        self.table = self._build()

    def _build(self) -> _Table:
        values = {f.name: getattr(self.params, f.name) for f in dataclasses.fields(Params)}
        # The simulation's load input is its own load model: the table lets
        # it move freely (the scenario's trigger abstracts what is computed here).
        return _Table(**{**values, "levels": tuple(self.levels), "load_trigger": "free"})

    def of(self, avg_ms: float) -> int:
        """The level Gitter's adjuster advises for a mean subscribe latency of `avg_ms`."""
        p = self.params
        advice = adjuster_advice(avg_ms, p.t0, p.i0, self.threshold)
        found = self.index.get(advice)
        if found is None:
            # A whole number of ms with the same advice (`Level.avg_ms` orders
            # levels: the model tells a rise from a fall by it). Boundaries of
            # T and I are over 300 ms apart, so one of floor/ceil is it.
            lo = math.floor(avg_ms)
            ms = lo if adjuster_advice(lo, p.t0, p.i0, self.threshold) == advice else lo + 1
            found = self.index[advice] = len(self.levels)
            self.levels.append(Level(ms, *advice))
            self.table = self._build()
        return found


class Tuner:
    """The servers' backlogs and the tuner's moves of the storm simulation (a base class of `model.storm._Sim`)."""

    def drain_and_adjust(self, t: int) -> None:
        design = self.p.design
        for s in range(self.n_srv):
            self.backlog[s] = max(0.0, self.backlog[s] + self.work[s] / self.loads[s].capacity - 1.0)
        if not self.moves:
            return
        if design.tuner == "per-server":
            for s in self.up(t):
                if t % ADJUST_EVERY == (3 * s) % ADJUST_EVERY:
                    avg = self.windows[s].mean()
                    if avg is not None:
                        level = self.levels.of(avg)
                        if level != self.servers[s].target:
                            self.tune(Action("load", server=s, value=level))
            return
        # A fleet-wide tuner: one value from the most loaded server, everywhere.
        if t == self.deadline_at:
            self.tune(Action("deadline"), tuner_timer=-1)
            self.deadline_at = -1
        if t % ADJUST_EVERY == 0:
            means = [m for m in (w.mean() for w in self.windows) if m is not None]
            if means:
                level = self.levels.of(max(means))
                if level != self.servers[0].target and self.tune(Action("load", value=level)):
                    if design.propagation_delay:
                        self.deadline_at = t + design.propagation_delay
        if design.tuner == "fleet-staged":
            self.stage()

    def stage(self) -> None:
        """A staged change moves each half as soon as the model's guard lets it."""
        if all(srv.adv == srv.target and srv.reap == srv.target for srv in self.servers):
            return
        clients = self.representatives()
        for _ in range(2 * self.n_srv + 1):
            state = State(clients, self.servers, 0, 0, 0, 0, 0)
            moves = fleet.RULE["adopt_reaper"].enabled(self.table, state) or \
                fleet.RULE["adopt_advice"].enabled(self.table, state)
            if not moves:
                return
            self.servers = fleet.RULE[moves[0].kind].apply(self.table, state, moves[0]).state.servers
            if self.rec:
                self.rec.server_move(self.t, moves[0], self.servers)

    def representatives(self) -> tuple[Client, ...]:
        """One client per distinct refresh level among the running clients' sessions (what a staged guard reads)."""
        refs = {g.ref for slot in self.calendar.values() for g in slot.values() if g.alive and g.phase != RETRY}
        return tuple(Client(HELD, 0, 0, Session(0, 0, 0, ref)) for ref in sorted(refs))
