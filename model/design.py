"""The design space of ``docs/protocol.md`` ("Designs to compare") as a record.

`Design` answers who changes T/I, what a reaper judges a session by, and which
reaper paths follow that rule; the six designs the suite ships are in
`DESIGNS`, and a scenario file may describe any other combination. It stands
apart from `Params` because a design is compared across fleets
(`Params.with_design`); `stormcheck.model.params` re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "TUNERS",
    "JUDGES",
    "RECORDS",
    "REPLIES",
    "SESSION_PATHS",
    "Design",
    "DESIGNS",
]

# Allowed values of each design axis, in the order the docs list them.
TUNERS = ("static", "per-server", "fleet", "fleet-staged")
JUDGES = ("server", "session")
RECORDS = ("handshake", "refresh")
REPLIES = ("reply", "arrival")
SESSION_PATHS = ("all", "all-but-gc")


@dataclass(frozen=True)
class Design:
    """One answer to the three questions of "Designs to compare".

    Attributes
    ----------
    tuner : str
        Who changes T/I. ``static``: nobody. ``per-server``: each process from
        its own load (2015). ``fleet``: the whole fleet from one load value,
        every server adopting within `propagation_delay` (0: at once).
        ``fleet-staged``: the whole fleet, reapers first when raising and
        advice first when lowering.
    propagation_delay : int
        Time within which every server adopts a fleet-wide change.
    judge : str
        What a reaper judges a session by: ``server`` (its own server's
        current T) or ``session`` (a timeout recorded with the session).
    record : str
        With ``judge = "session"``: when the timeout is recorded, at
        ``handshake`` only (the unmerged 2015 branch) or at every ``refresh``.
    reply_advice : str
        Which advice a connect reply carries: the one current at ``reply``
        time (Faye 1.1) or the one fixed on ``arrival`` of the connect.
    session_paths : str
        With ``judge = "session"``: ``all`` reaper paths judge by the recorded
        timeout, or ``all-but-gc`` (GC keeps its server's own T).
    """

    name: str
    tuner: str = "static"
    propagation_delay: int = 0
    judge: str = "server"
    record: str = "refresh"
    reply_advice: str = "reply"
    session_paths: str = "all"

    def __post_init__(self) -> None:
        # A staged rollout keeps its bookkeeping in the session's refresh
        # level (see rules_clients._reply), which session-judging reapers would read.
        if self.tuner == "fleet-staged" and self.judge == "session":
            raise ValueError(f"design {self.name!r}: a fleet-staged tuner needs judge = 'server'")

    def gc_by_session(self) -> bool:
        """True when the GC path judges sessions by their recorded timeout."""
        return self.judge == "session" and self.session_paths == "all"

    def judges_by_session(self, path: str) -> bool:
        """True when reaper `path` judges a session by its recorded timeout."""
        return self.judge == "session" and (path != "gc" or self.gc_by_session())

    def adjusts(self) -> bool:
        """True when T/I can move at all (anything but a static fleet)."""
        return self.tuner != "static"


DESIGNS: dict[str, Design] = {
    d.name: d
    for d in (
        Design("off"),
        Design("per-server", tuner="per-server"),
        Design("fleet-wide", tuner="fleet"),
        Design("fleet-wide-staged", tuner="fleet-staged"),
        Design(
            "per-session-branch",
            tuner="per-server",
            judge="session",
            record="handshake",
            session_paths="all-but-gc",
        ),
        Design(
            "per-session",
            tuner="per-server",
            judge="session",
            record="refresh",
            reply_advice="arrival",
        ),
    )
}
