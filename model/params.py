"""Parameters of a fleet: everything that is fixed for one run of a checker.

Parameters are kept apart from state (`stormcheck.model.state`): a state says
where every client and server *is*; parameters say what the protocol and the
fleet *are*. Both are immutable. All durations are whole numbers of one time
unit, `Params.unit`: seconds, or milliseconds where a scenario asks for them
(`TIME_UNITS`). The model's clock is an integer in that unit and nothing in
the model depends on which unit it is (see the time abstraction in
`stormcheck.model.fleet`); only the adjuster, whose input is a latency in
milliseconds, converts (`adjuster_advice`).

This module holds `Params`, the fleet record, and the tables derived from it
(cutoffs, reap ages, the age cap). Its parts live beside it and are
re-exported here: the stack's heartbeat rules and judges
(`stormcheck.model.heartbeat`), the design space (`stormcheck.model.design`),
load levels and the adjuster (`stormcheck.model.adjuster`), and the fault and
search bounds (`stormcheck.model.bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from fractions import Fraction

from .adjuster import TIME_UNITS, Level, adjuster_advice
from .bounds import Bounds, Faults
from .design import DESIGNS, JUDGES, RECORDS, REPLIES, SESSION_PATHS, TUNERS, Design
from .heartbeat import (
    CUTOFF_FROM,
    HOLDS,
    INTERVAL_FROM,
    INTERVAL_TERMS,
    JUDGE_SIDES,
    JUDGE_SOURCES,
    REAPER_PATHS,
    STORES,
    Heartbeat,
    Judge,
)
from .rollout import Rollout

__all__ = [
    "Bounds",
    "Heartbeat",
    "Judge",
    "JUDGE_SIDES",
    "JUDGE_SOURCES",
    "INTERVAL_TERMS",
    "HOLDS",
    "INTERVAL_FROM",
    "CUTOFF_FROM",
    "STORES",
    "REAPER_PATHS",
    "Design",
    "DESIGNS",
    "Faults",
    "Level",
    "Params",
    "TIME_UNITS",
    "adjuster_advice",
    "TUNERS",
    "JUDGES",
    "RECORDS",
    "REPLIES",
    "SESSION_PATHS",
    "LOAD_TRIGGERS",
    "PUBLISH_EXPIRED",
    "AFTER_DROP",
    "AFTER_401",
]

# Allowed values of `Params.load_trigger`.
LOAD_TRIGGERS = ("free", "reconnects")

# Faye's engine and client, as published or as Gitter ran them in 2015 (the
# first value of each is Gitter's, the model's default; see `Params`).
PUBLISH_EXPIRED = ("destroy", "drop-queue")
AFTER_DROP = ("rehandshake", "same-id")
AFTER_401 = ("at-once", "interval")


@dataclass(frozen=True)
class Params:
    """A fleet: topology, protocol constants, design, load bounds and faults.

    Attributes
    ----------
    servers, clients : int
        Fleet size.
    t0, i0 : int
        Base Bayeux timeout and interval (in `unit`, as every duration here).
    levels : tuple of Level
        The load levels the adjuster input moves between; level 0 is the
        base level and must advise exactly (t0, i0).
    load_servers : tuple of int
        Servers whose load may move (per-server tuner). Empty: all.
    load_trigger : str
        ``free``: load moves whenever the adversary likes. ``reconnects``: a
        rise needs reconnects absorbed since the last rise (the 2015 story:
        the server that takes the reconnect burst is the one that slows down).
    rtt : tuple of int
        The round-trip times a message exchange may take (sorted choices).
    skew : tuple of int
        Each server's clock offset against the store's reference.
    retry : int
        Faye's fixed retry delay after a failed send.
    publish_mult, gc_mult : Fraction
        Cutoff multipliers of the publish/existence paths and of GC.
    heartbeat : Heartbeat
        The stack's heartbeat rules (default: Faye's).
    rollout : Rollout or None
        A change from level 0 (configuration A) to level 1 (B) and how it
        reaches the fleet (`stormcheck.model.rollout`); None: no rollout.
    publish_expired : str
        What the publish path does to a subscriber its server calls expired:
        ``destroy`` it (Gitter's fork, faye-redis 0.4.4) or ``drop-queue``,
        delete its message queue only (the published faye-redis 0.2.0: the
        session survives and the message is lost).
    after_drop : str
        What a client does when its socket drops: ``rehandshake`` on a new
        socket (Gitter's 2015 client) or retry its pending connect on the
        ``same-id`` after `retry` s (the stock Faye 1.4.3 client; the session
        survives).
    after_401 : str
        When a client refused with 401 re-handshakes: ``at-once`` (Gitter's
        2015 client) or after the advised ``interval`` (the stock client).
    judges : tuple of Judge
        Judges of every connection beside the servers' reapers (the
        client's own, proxies); empty: the servers alone judge.
    unit : str
        The unit of every duration above, and of the model's clock: ``s``
        (seconds) or ``ms`` (milliseconds; `TIME_UNITS`). The model is the
        same integer arithmetic in either; outputs label times with it.
    """

    servers: int = 3
    clients: int = 1
    t0: int = 45
    i0: int = 1
    levels: tuple[Level, ...] = (Level(0, 45, 1),)
    load_servers: tuple[int, ...] = ()
    load_trigger: str = "reconnects"
    rtt: tuple[int, ...] = (0, 2)
    skew: tuple[int, ...] = ()
    retry: int = 5
    publish_mult: Fraction = Fraction(8, 5)
    gc_mult: Fraction = Fraction(2)
    design: Design = DESIGNS["per-server"]
    faults: Faults = field(default_factory=Faults)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    rollout: Rollout | None = None
    publish_expired: str = "destroy"
    after_drop: str = "rehandshake"
    after_401: str = "at-once"
    judges: tuple[Judge, ...] = ()
    unit: str = "s"

    def __post_init__(self) -> None:
        for name, allowed in (("publish_expired", PUBLISH_EXPIRED), ("after_drop", AFTER_DROP),
                              ("after_401", AFTER_401), ("unit", tuple(TIME_UNITS))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Params.{name} = {getattr(self, name)!r}: must be one of {', '.join(allowed)}")

    def extensions(self) -> tuple[str, ...]:
        """The generalisations beyond Faye's model this fleet uses (empty: none).

        An engine that encodes only Faye's rules refuses a fleet for which
        this is not empty, naming what it does not encode.
        """
        out = []
        if not self.heartbeat.faye:
            out.append("heartbeat rules other than Faye's ([heartbeat])")
        if self.rollout is not None:
            out.append("a configuration rollout ([rollout])")
        for name, allowed, section in (("publish_expired", PUBLISH_EXPIRED, "protocol"),
                                       ("after_drop", AFTER_DROP, "client"), ("after_401", AFTER_401, "client")):
            if getattr(self, name) != allowed[0]:
                out.append(f"[{section}] {name} = {getattr(self, name)!r} (the published Faye stack)")
        if self.unit != "s":
            # The storm simulation steps a whole second at a time; the symbolic
            # encoding counts in either unit (`z3_coverage._ENCODED_FEATURES`).
            out.append(f'time in milliseconds ([scenario] time_unit = "{self.unit}")')
        return tuple(out) + self.judge_rules()

    def judge_rules(self) -> tuple[str, ...]:
        """The judging rules the real libraries showed, named one by one (empty: none used).

        Neither the Z3 encoding nor the storm simulator encodes them; both
        refuse a fleet that uses one, naming it.
        """
        out = []
        if self.heartbeat.interval_term != "judged":
            out.append('the interval in use as the cutoff\'s I term ([heartbeat] interval_term = "in-use")')
        if self.heartbeat.min_spacing:
            out.append("a minimum heartbeat spacing with strikes ([heartbeat] min_spacing)")
        if self.heartbeat.resume_window:
            out.append("session resumption after a reconnect ([heartbeat] resume_window)")
        if self.rollout is not None and any(p.change == "live" for p in self.rollout.phases):
            out.append('a live settings change without a restart ([[rollout.phases]] change = "live")')
        for side, what in (("client", "a client-side judge ([[judge]])"), ("proxy", "a proxy idle timeout ([[proxy]])")):
            if any(j.side == side for j in self.judges):
                out.append(what)
        return tuple(out)

    def with_design(self, design: Design) -> "Params":
        """The same fleet under another design."""
        return replace(self, design=design)

    @property
    def rtt_max(self) -> int:
        return max(self.rtt)

    @property
    def retry_delay(self) -> int:
        """Time from a dropped socket to the retry's arrival (worst-case RTT)."""
        return self.retry + self.rtt_max

    def offset(self, server: int) -> int:
        """Clock offset of `server` (0 when the scenario gives no skew)."""
        return self.skew[server] if self.skew else 0

    @property
    def max_skew_gap(self) -> int:
        """The largest disagreement between two servers' clocks."""
        return (max(self.skew) - min(self.skew)) if self.skew else 0

    def can_load_move(self, server: int) -> bool:
        return not self.load_servers or server in self.load_servers

    def can_lose(self, server: int) -> bool:
        return not self.faults.loss_servers or server in self.faults.loss_servers

    @cached_property
    def reap_ages(self) -> dict[str, tuple[int, ...]]:
        """Per reaper path, per level: the smallest whole age that is reaped.

        Ages are whole time units, so ``age >= cutoff`` is ``age >= ceil(cutoff)``;
        the engines compare integers instead of fractions.
        """
        return {path: tuple(self.reap_age(path, i) for i in range(len(self.levels))) for path in REAPER_PATHS}

    def reap_age(self, path: str, level: int, interval_level: int | None = None) -> int:
        """The smallest whole age reaper `path` reaps judging by `level`: `cutoff`, rounded up.

        `reap_ages` and `reap_ages_in_use` are this, tabulated for every level.
        """
        return -((-self.cutoff(path, level, interval_level)) // 1)

    def multiplier(self, path: str) -> Fraction:
        """The cutoff multiplier of a reaper path (publish, existence or gc)."""
        return self.gc_mult if path == "gc" else self.publish_mult

    def cutoff(self, path: str, level: int, interval_level: int | None = None) -> Fraction:
        """The cutoff (in `unit`) of reaper `path` judging by `level`: ``m x T + k x I``.

        I is `interval_level`'s when given (`Heartbeat.interval_term` "in-use"),
        else `level`'s.
        """
        lvl = self.levels[level]
        interval = self.levels[level if interval_level is None else interval_level].interval
        return self.multiplier(path) * lvl.timeout + self.heartbeat.interval_multiplier * interval

    @cached_property
    def reap_ages_in_use(self) -> dict[str, tuple[tuple[int, ...], ...]]:
        """`reap_ages` by (judged level, interval level in use): for ``interval_term = "in-use"``."""
        n = range(len(self.levels))
        return {path: tuple(tuple(self.reap_age(path, i, j) for j in n) for i in n) for path in REAPER_PATHS}

    def judge_cutoff(self, judge: Judge, level: int) -> Fraction:
        """The cutoff (in `unit`) of an extra judge, for a session told `level` at its handshake."""
        if judge.source == "fixed":
            return Fraction(judge.timeout)
        lvl = self.levels[level]
        return judge.multiplier * lvl.timeout + judge.interval_multiplier * lvl.interval

    def judge_age(self, judge: Judge, level: int) -> int:
        """The smallest whole silence (seconds) at which `judge` closes a connection told `level`."""
        return -((-self.judge_cutoff(judge, level)) // 1)

    def hold(self, level: int) -> int:
        """How long a server holds a heartbeat when it advises `level` (0: answered at once)."""
        return self.levels[level].timeout if self.heartbeat.hold == "timeout" else 0

    @cached_property
    def load_moves(self) -> bool:
        """True when some server's T/I can change: an adjusting design and two levels."""
        return self.design.adjusts() and len(self.levels) > 1

    @cached_property  # read at every new session, by the model and by the symbolic encoding
    def session_levels_kept(self) -> tuple[bool, bool]:
        """Whether a session records (its handshake level, its last refresh level): what something reads.

        A level nothing reads is stored as 0: otherwise two states that behave
        identically would differ in a dead field and double the search. The
        handshake level is read by a per-session judge that records it, by
        stacks that take the interval from the handshake or let the client set
        its own, and by judges whose cutoff comes from the handshake; the
        refresh level by a reply with the advice of the connect's arrival, a
        staged fleet-wide change, and a per-session judge that records refreshes.
        """
        design, heartbeat = self.design, self.heartbeat
        by_session = design.judge == "session"
        keep_hs = (by_session and design.record == "handshake") or heartbeat.interval_from == "handshake" or (
            heartbeat.client_owned or any(j.source == "handshake" for j in self.judges))
        keep_ref = design.reply_advice == "arrival" or design.tuner == "fleet-staged" or (
            by_session and design.record == "refresh")
        return keep_hs, keep_ref

    @cached_property  # read at every state's canonical form
    def servers_symmetric(self) -> bool:
        """True when no server is singled out, so servers may be permuted."""
        return (
            len(set(self.skew)) <= 1
            and not self.load_servers
            and not self.faults.loss_servers
        )

    @cached_property  # read at every tick; computed over fractions once per fleet
    def age_cap(self) -> int:
        """Ages saturate here: past every cutoff, an older age changes nothing.

        Every reaper test is ``age >= cutoff``; once a session is older than
        the largest cutoff any server can use (plus the clock gap), all tests
        give the same answer, so older ages are folded into this one and the
        state space stays finite.
        """
        n = range(len(self.levels))
        biggest = max(self.cutoff(path, i) for path in self.heartbeat.paths for i in n)
        # The rules below exist only where a scenario asks for them, so a
        # fleet without them keeps its cap (and its pinned state count).
        if self.heartbeat.interval_term == "in-use":
            biggest = max(biggest, *(self.cutoff(p, i, j) for p in self.heartbeat.paths for i in n for j in n))
        if self.judges:
            biggest = max(biggest, *(self.judge_cutoff(jd, i) for jd in self.judges for i in n))
        biggest = max(biggest, self.heartbeat.min_spacing, self.heartbeat.resume_window)
        return int(biggest.__ceil__()) + self.max_skew_gap + 1
