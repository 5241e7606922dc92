"""A configuration rollout: how a change from configuration A to B reaches a fleet.

Most outages of heartbeat protocols are not caused by an adaptive tuner but by
a configuration change rolled out server by server while clients pick up
their side of it at their own pace. A rollout here is data:

* two configurations, A (level 0 of `Params.levels`) and B (level 1), each a
  heartbeat timeout T and interval I;
* an ordered list of `Phase`s. A *servers* phase restarts servers in
  batches at a stated pace; each restart drops the server's sockets and brings
  it back running B for its judge (reapers' cutoff), its advice (what it holds
  and advises, the beats it sends), or both. A *clients* phase moves the
  clients to B by one pick-up rule: at their next ``reconnect`` (a handshake),
  with the next ``advice`` (a reply), or by a client ``release`` that reaches
  every client within `Phase.spread` (each client reloads: its socket
  closes and it reconnects running B).

Each side only moves forward (A to B), so where a rollout stands is a function
of the state: a phase is complete once its whole side runs B (a release, once
its window has also ended), and the current phase is the first incomplete one.
The only rollout bookkeeping the state carries is one marker,
`State.rollout`: `NOT_BEGUN` (0) before the rollout starts, which the
operator may do at any moment (action ``launch``), and again once it has
ended; a positive countdown to the next batch or to the end of a release
window; `DUE` (-1) when it has run out; `RUNNING` (-2) while a phase goes on
with nothing counting down. A client's own configuration
lives in its session (`Session.hs_level`). The transitions live in
`stormcheck.model.fleet`, with the rest of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Phase",
    "Rollout",
    "SIDES",
    "PARTS",
    "PICKUPS",
    "CHANGES",
    "NOT_BEGUN",
    "DUE",
    "RUNNING",
    "CONFIG_NAMES",
    "describe_phases",
]

SIDES = ("servers", "clients")
PARTS = ("both", "judge", "advice")  # what a server restart moves to B
PICKUPS = ("reconnect", "advice", "release")  # how a client picks B up
CHANGES = ("restart", "live")  # how a servers phase reaches a server

NOT_BEGUN = 0
DUE = -1
RUNNING = -2

# Level index -> the name timelines and plans use.
CONFIG_NAMES = ("A", "B")


@dataclass(frozen=True)
class Phase:
    """One step of a rollout: one side of the fleet moves to configuration B.

    Attributes
    ----------
    side : str
        ``servers`` or ``clients``.
    part : str
        Servers: what the restart moves to B, ``both``, ``judge`` (the
        reapers' cutoff only) or ``advice`` (what the server holds, advises
        and sends only).
    batch : int
        Servers restarted together.
    pace : int
        Time from one batch to the next (0: back to back).
    pickup : str
        Clients: ``reconnect``, ``advice`` or ``release``.
    spread : int
        Clients, ``release``: the time within which every client has it.
    change : str
        Servers: ``restart`` (the server is down for `Rollout.restart` s and
        its sockets drop) or ``live`` (its settings change in the running
        process: nothing drops, and every open socket keeps what its
        handshake told it; python-engineio reads ``ping_interval`` at each
        ping, so a live change reaches the next ping at once).
    """

    side: str
    part: str = "both"
    batch: int = 1
    pace: int = 0
    pickup: str = "release"
    spread: int = 0
    change: str = "restart"

    def __post_init__(self) -> None:
        for name, allowed in (("side", SIDES), ("part", PARTS), ("pickup", PICKUPS), ("change", CHANGES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Phase.{name} = {getattr(self, name)!r}: must be one of {', '.join(allowed)}")
        if self.batch < 1 or self.pace < 0 or self.spread < 0:
            raise ValueError(f"{self}: batch must be >= 1, pace and spread >= 0")

    def label(self, unit: str = "s") -> str:
        """The phase in a few words, as plans and timelines print it (durations in `unit`)."""
        if self.side == "servers":
            what = {"both": "", "judge": " (judge only)", "advice": " (advice only)"}[self.part]
            pace = f" every {self.pace}{unit}" if self.pace else " back to back"
            live = " live (no restart)" if self.change == "live" else ""
            return f"servers to B{what}{live}, {self.batch} at a time{pace}"
        if self.pickup == "release":
            return f"clients to B by a release over {self.spread}{unit}"
        return f"clients to B on their next {self.pickup}"


@dataclass(frozen=True)
class Rollout:
    """A change from level 0 (A) to level 1 (B), phase by phase.

    ``restart`` is how long a restarted server stays unreachable.
    """

    phases: tuple[Phase, ...]
    restart: int = 0

    def __post_init__(self) -> None:
        if not self.phases or self.restart < 0:
            raise ValueError(f"{self}: a rollout needs at least one phase and a restart of >= 0")


def describe_phases(phases: tuple[Phase, ...], unit: str = "s") -> str:
    """``1. servers to B ...; 2. clients to B ...`` (durations in `unit`)."""
    return "; ".join(f"{i}. {p.label(unit)}" for i, p in enumerate(phases, start=1))
