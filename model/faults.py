"""The storm simulation's fault: which one strikes, when, and what it does to the fleet.

A run has one fault (``[storm] fault``), so that it has one window: the
storm table, W and the recovery instant are all measured from where that
window ends (`checkers.recovery`). Combining faults would need a rule for
which one "the fault" is; one per run keeps every figure's meaning. The
keys in brackets are ``[storm]`` keys; absent, the default is the fault
every result had before they existed.

* ``"loss"`` (default): the scenario's ``[faults]`` server loss. Server
  ``loss_servers[0]`` (or 0) loses connectivity at ``fault_at`` for
  ``loss_duration``: every socket on it drops at once (the model's ``lose``),
  and it is back at the model's ``restore``. None with ``server_loss = 0``.
* ``"restart"``: a rolling restart. From ``fault_at``, servers restart in
  server order, ``restart_batch`` at a time, ``restart_pace`` seconds between
  batches. A restart drops the server's sockets (the model's effect of a
  dropped socket: a local session goes with it, a shared one stays in the
  store, dead, until a reaper destroys it) and the server refuses
  connections for ``restart_down`` seconds (each server its own: with a
  pace shorter than that the batches overlap, and the clients of a
  restarted server find only the servers up, none while all are down;
  `Fault.most_down`). The new process starts with an
  empty queue and an empty adjuster sample window; it keeps its advice
  level, since the model has no step that resets one outside a rollout
  (which the simulation refuses). The model's fleet loses at most
  ``[faults] server_loss`` servers, so a restart is not a model step: a
  client's history begins anew after one (`checkers.certify`).
* ``"hung"``: at ``fault_at`` a share ``hung_share`` of the running clients
  stop answering (no heartbeat, no reply) for ``fault_for`` seconds while
  their sockets stay open: a frozen process, a suspended laptop. They are the
  model's cut-off clients, not valid: a reaper or a proxy that destroys
  their sessions is right to, and it is counted as a dead session's reap
  (``meta["reaped_hung"]`` says how many). Their own judges are frozen with
  them. When the hang ends each one finds its socket silent and reconnects
  at once, as a reloaded page does; a session no reaper destroyed is
  abandoned (a shared one lingers, dead). The burst of those reconnects,
  and any storm it starts, is counted like any other.
* ``"capacity"``: server ``loss_servers[0]`` (or 0) keeps only
  ``capacity_left`` of its capacity for ``fault_for`` seconds. It stays up;
  the work queued on it takes ``1 / capacity_left`` as long, and its queue
  grows wherever the work arriving exceeds what is left.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .groups import HUNG, Group
from .state import HELD, RETRY, WAITING, Action

__all__ = ["Fault", "FAULTS", "FAULT_KEYS", "FaultRun", "least_hung_share"]

FAULTS = ("loss", "restart", "hung", "capacity")
# The [storm] keys each fault reads (a key of another fault is refused by the scenario format).
FAULT_KEYS = {"loss": (), "restart": ("restart_batch", "restart_pace", "restart_down"),
              "hung": ("hung_share", "fault_for"), "capacity": ("capacity_left", "fault_for")}


def least_hung_share(clients: int) -> str:
    """The smallest ``hung_share`` (a short decimal, rounded up) that hangs one client of a fleet of `clients`.

    The fluid run hangs ``hung_share`` x the running clients, at most
    `clients`; below one that is a fraction of a client, no whole one. A
    sampled run draws each client with that chance: whether one hangs at
    all would be its seed's.

    >>> least_hung_share(3), least_hung_share(100_000)
    ('0.334', '1e-05')
    """
    text = f"{1 / clients:.3g}"
    if float(text) * clients < 1:  # rounded down: the next value up, at the same precision
        text = f"{float(text) + 10 ** (math.floor(math.log10(float(text))) - 2):.3g}"
    return text


@dataclass(frozen=True)
class Fault:
    """The run's fault and its parameters (see the module docstring).

    Examples
    --------
    >>> Fault("restart", restart_batch=2, restart_pace=30).batches(300, servers=3)
    {300: (0, 1), 330: (2,)}
    """

    kind: str = "loss"
    fault_for: int = 60  # seconds: how long clients hang, or a server's capacity stays down
    restart_batch: int = 1  # servers restarted together
    restart_pace: int = 60  # seconds between two batches
    restart_down: int = 10  # seconds a restarting server refuses connections
    hung_share: float = 0.1  # of the running clients
    capacity_left: float = 0.25  # of the server's capacity

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"fault {self.kind!r}: must be one of {', '.join(FAULTS)}")
        if min(self.fault_for, self.restart_batch, self.restart_pace, self.restart_down) < 1:
            raise ValueError("fault_for, restart_batch, restart_pace and restart_down must be at least 1")
        if not (0 < self.hung_share <= 1 and 0 < self.capacity_left < 1):
            raise ValueError("hung_share must be in (0, 1], capacity_left in (0, 1)")

    def batches(self, start: int, servers: int) -> dict[int, tuple[int, ...]]:
        """A rolling restart's batches: the second each starts, and its servers."""
        size, pace = self.restart_batch, self.restart_pace
        return {start + k * pace: tuple(range(first, min(first + size, servers)))
                for k, first in enumerate(range(0, servers, size))}

    def most_down(self, servers: int) -> int:
        """The most servers a rolling restart has down at once.

        ``restart_batch`` while each batch is back before the next one starts;
        more when ``restart_pace`` is shorter than ``restart_down``, the
        batches then overlapping (each server keeps its own down time, so
        the simulation runs overlapping restarts as they are: the clients
        of a restarted server find only the servers up).

        >>> Fault("restart", restart_pace=5, restart_down=12).most_down(servers=4)
        3
        """
        starts = self.batches(0, servers)
        return max(sum(len(batch) for s, batch in starts.items() if t - self.restart_down < s <= t) for t in starts)

    def window(self, start: int, params) -> tuple[int, int, int]:
        """(start, end, server) of the fault in a run of `params`' fleet; server -1: none, or all of them."""
        f = params.faults
        server = f.loss_servers[0] if f.loss_servers else 0
        if self.kind == "loss":
            return start, start + f.loss_duration, server if f.server_loss else -1
        if self.kind == "restart":
            return start, max(self.batches(start, params.servers)) + self.restart_down, -1
        return start, start + self.fault_for, server if self.kind == "capacity" else -1

    def label(self, window: tuple[int, int, int]) -> str:
        """The fault in a few words, for a plot's legend; empty when the run has none."""
        server = window[2]
        if self.kind == "loss":
            return f"fault on s{server}" if server >= 0 else ""
        if self.kind == "restart":
            return "rolling restart"
        if self.kind == "hung":
            return f"{self.hung_share:.0%} of clients hung"
        return f"s{server} at {self.capacity_left:.0%} capacity"

    def describe(self, window: tuple[int, int, int], servers: int) -> str:
        """The fault of a run, for the storm table's header."""
        start, end, server = window
        if self.kind == "loss":
            if server < 0:
                return "no fault ([faults] server_loss = 0)"
            return f"server {server} loses connectivity at t={start} s for {end - start} s"
        if self.kind == "restart":
            n = len(self.batches(start, servers))
            most = self.most_down(servers)
            # Batches closer than a restart's down time overlap: say how many are down together.
            overlap = "" if most <= self.restart_batch else (
                f", so the restarts overlap: all {most} servers down at once, none taking connections"
                if most == servers else f", so the restarts overlap: up to {most} servers down at once")
            return (f"a rolling restart of {servers} servers, {self.restart_batch} at a time, {self.restart_pace} s "
                    f"apart from t={start} s, each down {self.restart_down} s{overlap} ({n} batch{'es' * (n > 1)}, "
                    f"over at t={end} s)")
        if self.kind == "hung":
            return f"{self.hung_share:.0%} of the clients hang (sockets open) at t={start} s for {end - start} s"
        return f"server {server} keeps {self.capacity_left:.0%} of its capacity at t={start} s for {end - start} s"


class FaultRun:
    """The fault of one simulation (`model.storm`'s ``_Sim``), applied at the start of each second."""

    def __init__(self, sim, fault: Fault, start: int) -> None:
        self.sim, self.f = sim, fault
        self.window = fault.window(start, sim.p)
        self.batches = fault.batches(start, sim.n_srv) if fault.kind == "restart" else {}
        self.reaped_hung = 0.0

    def at(self, t: int) -> None:
        start, end, server = self.window
        kind = self.f.kind
        if kind == "loss" and server >= 0:
            if t == start:
                self.lose(server, end, t)
            elif t == end:
                self.restore(server, t)
        elif kind == "restart":
            for s in self.batches.get(t, ()):
                self.restart(s, t)
        elif kind == "hung" and t == start:
            self.hang(end, t)
        elif kind == "capacity" and t in (start, end):
            self.capacity(server, self.f.capacity_left if t == start else 1.0)

    # ------------------------------------------------------------ connectivity

    def lose(self, s: int, until: int, t: int) -> None:
        """Server `s` loses connectivity: every socket on it drops at once (the model's ``lose``)."""
        sim = self.sim
        sim.down_until[s] = until
        action = Action("lose", server=s)
        if sim.rec:
            sim.rec.server_move(t, action, sim.servers)
        self.drop_all(s, t, "dropped")
        sim.servers = tuple(srv._replace(down=until - t) if i == s else srv for i, srv in enumerate(sim.servers))

    def restore(self, s: int, t: int) -> None:
        sim = self.sim
        sim.servers = tuple(srv._replace(down=0) if i == s else srv for i, srv in enumerate(sim.servers))
        if sim.rec:
            sim.rec.server_move(t, Action("restore", server=s), sim.servers)

    def restart(self, s: int, t: int) -> None:
        """Server `s` restarts: its sockets drop, its queue and samples are gone, it is down `restart_down`."""
        sim = self.sim
        sim.down_until[s] = t + self.f.restart_down
        sim.backlog[s] = 0.0
        sim.windows[s] = type(sim.windows[s])()  # a fresh sample window (`model.load`)
        self.drop_all(s, t, "restarted")

    def drop_all(self, s: int, t: int, kind: str) -> None:
        """Every running client on `s` loses its socket, as the model's ``lose`` drops it."""
        sim = self.sim
        action = Action("lose", server=s)
        for slot in list(sim.calendar.values()):
            for g in list(slot.values()):
                if g.alive and g.server == s and g.phase in (HELD, WAITING):
                    after, _ = sim.step(sim.client(g, t), action)
                    if sim.rec:
                        g.hist = sim.rec.note(g.hist, t, kind, s)
                    sim.drop(g, after, t)

    # ------------------------------------------------------------ hung clients

    def hang(self, until: int, t: int) -> None:
        """A share of every running group stops answering until `until`, its session and socket kept."""
        sim, share = self.sim, self.f.hung_share
        for slot in list(sim.calendar.values()):
            for g in list(slot.values()):
                if not g.alive or g.phase not in (HELD, WAITING):
                    continue
                hung = sum(n for n, h in sim.choose(g.n, ((share, True), (1 - share, False))) if h)
                if hung <= 0:
                    continue
                hist = sim.rec.note(g.hist, t, "hung", g.server) if sim.rec else None
                sim.schedule(until, Group(hung, HUNG, g.server, g.t_ref, g.stamp, g.hs, g.ref, wstart=g.wstart,
                                          used=g.used, hist=hist))
                if hung >= g.n:
                    g.alive = False
                else:
                    g.n -= hung

    def resume(self, g: Group, t: int, handshakes: list) -> None:
        """`g`'s hang is over: it abandons its session and reconnects at once, as a reload does."""
        self.sim.abandon(g)
        handshakes.append((Group(g.n, RETRY, attempt=0, wstart=g.wstart, used=g.used, hist=g.hist), -1))

    def hung_reaped(self, g: Group) -> None:
        """A reaper or proxy destroyed hung clients' sessions: correct; they reconnect when the hang ends."""
        self.reaped_hung += g.n
        self.sim.schedule(self.window[1], Group(g.n, RETRY, attempt=0, wstart=g.wstart, used=g.used, hist=g.hist))

    # ------------------------------------------------------------ capacity

    def capacity(self, s: int, share: float) -> None:
        """Server `s` runs at `share` of its capacity from now: its queued work takes longer in proportion."""
        sim = self.sim
        now = dataclasses.replace(sim.s.load, capacity=sim.s.load.capacity * share)
        sim.backlog[s] *= sim.loads[s].capacity / now.capacity
        sim.loads[s] = now
