"""Parameters of a fleet: everything that is fixed for one run of a checker.

Parameters are kept apart from state (`stormcheck.model.state`): a state says
where every client and server *is*; parameters say what the protocol and the
fleet *are*. Both are immutable. All durations are whole numbers of one time
unit, `Params.unit`: seconds, or milliseconds where a scenario asks for them
(`TIME_UNITS`). The model's clock is an integer in that unit and nothing in
the model depends on which unit it is (see the time abstraction in
`stormcheck.model.fleet`); only the adjuster, whose input is a latency in
milliseconds, converts (`adjuster_advice`).

The design space of ``docs/protocol.md`` ("Designs to compare") is the
`Design` record: who changes T/I, what a reaper judges a session by, and which
reaper paths follow that rule. The six designs the suite ships are in
`DESIGNS`; a scenario file may describe any other combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from fractions import Fraction

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

# The time units a fleet may count in, and how many of each make a second.
TIME_UNITS = {"s": 1, "ms": 1000}

# Allowed values of each design axis, in the order the docs list them.
TUNERS = ("static", "per-server", "fleet", "fleet-staged")
JUDGES = ("server", "session")
RECORDS = ("handshake", "refresh")
REPLIES = ("reply", "arrival")
SESSION_PATHS = ("all", "all-but-gc")
LOAD_TRIGGERS = ("free", "reconnects")

# Faye's engine and client, as published or as Gitter ran them in 2015 (the
# first value of each is Gitter's, the model's default; see `Params`).
PUBLISH_EXPIRED = ("destroy", "drop-queue")
AFTER_DROP = ("rehandshake", "same-id")
AFTER_401 = ("at-once", "interval")

# Allowed values of each heartbeat axis (see `Heartbeat`).
HOLDS = ("timeout", "none")
INTERVAL_FROM = ("server", "handshake", "client")
CUTOFF_FROM = ("server", "client")
STORES = ("shared", "local")
REAPER_PATHS = ("publish", "existence", "gc")
# Whose interval a server judge's ``k x I`` term reads (see `Heartbeat.interval_term`).
INTERVAL_TERMS = ("judged", "in-use")
# Judges beside the servers' reapers (see `Judge`).
JUDGE_SIDES = ("client", "proxy")
JUDGE_SOURCES = ("handshake", "fixed")


@dataclass(frozen=True)
class Heartbeat:
    """The heartbeat rules of a stack, as data; the defaults are Faye's (Bayeux).

    Every stack of ``docs/protocol.md`` ("Other stacks") is one cycle: a
    heartbeat (a connect, a ping, a keep-alive) refreshes the session, is
    answered after a hold, and the next one follows after an interval and a
    round trip. A judge declares the session dead at a cutoff
    ``multiplier x T + interval_multiplier x I`` (T and I of the judged
    level; the multipliers are `Params.publish_mult`/`gc_mult` per path).

    Attributes
    ----------
    hold : str
        ``timeout``: the server holds each heartbeat for T before answering
        (Bayeux long-poll). ``none``: it is answered at once (ping/pong).
    interval_from : str
        Whose level sets the interval between heartbeats: ``server``, the
        serving server's current advice (Faye's reply advice; a beat the
        server sends on its own schedule); ``handshake``, the server's advice
        at the handshake, kept for the socket's life (Engine.IO's open
        packet); ``client``, the client's own configuration.
    cutoff_from : str
        Whose level sets the judge's cutoff: ``server`` (the judging server's
        own configuration) or ``client`` (the client's: a client-side stale
        threshold, or a keep-alive the client declares and the broker obeys).
        With ``server``, the design's ``judge`` axis still applies; with
        ``client`` it does not (the client's own level is the judged one).
    store : str
        ``shared``: every server's reapers judge every session (Faye's Redis
        engine). ``local``: a session lives with its socket; only the server
        holding it judges it, and a new socket always starts a new session.
    paths : tuple of str
        The reaper paths that exist: Faye's ``publish``, ``existence`` and
        ``gc``; a stack with one liveness timer per socket has ``gc`` alone
        (a timer that may fire at any moment, like a GC sweep).
    interval_multiplier : Fraction
        Added ``x I`` term of every cutoff (Engine.IO: pingInterval +
        pingTimeout has 1).
    interval_term : str
        Whose I that term reads. ``judged``: the judged level's (the
        cutoff's T and I move together). ``in-use``: the judging server's
        own interval setting now (its advice level: the interval it pings at
        or hands out), for a process whose judge reads the same setting
        (websockets' keepalive, python-engineio's ping task, engine.io 3's
        ``pingInterval + pingTimeout`` timer): raising its interval also
        lengthens how long it waits, whatever its timeout says.
    min_spacing : int
        A lower bound beside the cutoff: the server holding a connection
        counts a heartbeat that arrives less than `min_spacing` seconds after
        the previous one as a strike, and closes the connection on the strike
        after `strikes` (gRPC's keepalive enforcement: ``min_time`` /
        ``min_recv_ping_interval_without_data``, ``max_ping_strikes``, a
        GOAWAY "too_many_pings"). 0: no lower bound. The first heartbeat of a
        connection has no previous one and is never early; nothing resets the
        count on an idle connection (the model has no other traffic).
    strikes : int
        Early heartbeats a connection may send before the next early one
        closes it.
    resume_window : int
        With a local store: how long a session outlives its socket, in a
        store every server reaches. A running client whose socket closes
        keeps its session; its reconnect within the window, to any server,
        resumes it (Socket.IO 4's connection state recovery,
        ``maxDisconnectionDuration``; an MQTT 5 session expiry interval on a
        clustered broker). Past it the session is gone and the reconnect
        starts a new one: the client lost its session, though it did as
        told. 0: a new socket is always a new session.
    """

    hold: str = "timeout"
    interval_from: str = "server"
    cutoff_from: str = "server"
    store: str = "shared"
    paths: tuple[str, ...] = REAPER_PATHS
    interval_multiplier: Fraction = Fraction(0)
    interval_term: str = "judged"
    min_spacing: int = 0
    strikes: int = 2
    resume_window: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("hold", HOLDS), ("interval_from", INTERVAL_FROM), ("cutoff_from", CUTOFF_FROM),
                              ("store", STORES), ("interval_term", INTERVAL_TERMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Heartbeat.{name} = {getattr(self, name)!r}: must be one of {', '.join(allowed)}")
        if not self.paths or not set(self.paths) <= set(REAPER_PATHS):
            raise ValueError(f"Heartbeat.paths = {self.paths!r}: must be a non-empty subset of {', '.join(REAPER_PATHS)}")
        if self.interval_multiplier < 0:
            raise ValueError(f"Heartbeat.interval_multiplier = {self.interval_multiplier}: must be >= 0")
        if self.min_spacing < 0 or self.strikes < 0:
            raise ValueError(f"Heartbeat.min_spacing = {self.min_spacing}, strikes = {self.strikes}: must be >= 0")
        if self.resume_window < 0 or (self.resume_window and self.store != "local"):
            raise ValueError(f"Heartbeat.resume_window = {self.resume_window}: must be >= 0, and needs store = 'local'")
        if self.min_spacing and (self.hold, self.store) != ("none", "local"):
            # The count belongs to one connection, and spacing is only
            # defined between pings a server answers at once.
            raise ValueError(f"Heartbeat.min_spacing = {self.min_spacing}: needs hold = 'none' and store = 'local'")

    @property
    def client_owned(self) -> bool:
        """True when the client sets its own interval or cutoff (then a session records its level)."""
        return self.interval_from == "client" or self.cutoff_from == "client"

    @cached_property  # read at every step's reap; a record is immutable
    def faye(self) -> bool:
        """True for Faye's own rules (every default): what the original model encodes."""
        return self == Heartbeat()


@dataclass(frozen=True)
class Judge:
    """A judge of a connection beside the servers' reapers: the client itself, or a proxy.

    Each judge has its own cutoff source, so one session may have several
    (issue: Engine.IO 4's client gives up on a silent server while the server
    judges the client). A judge closes the connection once the silence since
    the last heartbeat reaches its cutoff; like a liveness timer it may fire
    at any moment from then on (any check period is covered).

    Attributes
    ----------
    name : str
        What timelines call it (``client``, ``nginx``...).
    side : str
        ``client``: the client judges its server (it closes its own socket
        and reconnects). ``proxy``: an intermediary between clients and
        servers closes an idle connection (both ends see it close).
    source : str
        ``handshake``: ``multiplier x T + interval_multiplier x I`` of the
        level the server told at the handshake (Engine.IO 4's pingTimeout and
        pingInterval, kept for the socket's life). ``fixed``: `timeout`
        time units, whatever the servers say (a proxy's idle timeout).
    """

    name: str
    side: str
    source: str
    multiplier: Fraction = Fraction(1)
    interval_multiplier: Fraction = Fraction(1)
    timeout: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("side", JUDGE_SIDES), ("source", JUDGE_SOURCES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Judge.{name} = {getattr(self, name)!r}: must be one of {', '.join(allowed)}")
        if self.source == "fixed" and self.timeout < 1:
            raise ValueError(f"Judge {self.name!r}: a fixed cutoff needs timeout >= 1 (got {self.timeout})")
        if self.multiplier < 0 or self.interval_multiplier < 0:
            raise ValueError(f"Judge {self.name!r}: multipliers must be >= 0")


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
        # level (see fleet._reply), which session-judging reapers would read.
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


def _round_half_up(x: Fraction) -> int:
    # Gitter's adjuster is JavaScript: Math.round rounds halves up, unlike
    # Python's round(), which rounds them to even.
    return int((x + Fraction(1, 2)).__floor__())


def adjuster_advice(avg_ms: int, t0: int, i0: int, threshold_ms: int = 5000, unit: str = "s") -> tuple[int, int]:
    """The (T, I) Gitter's advice adjuster chose for a mean subscribe latency.

    ``T = T0 + round(1.6 * max(0, avg - 5000) / 1000)`` and
    ``I = I0 + round(max(0, avg - 5000) / 2500)``, with JavaScript rounding.
    The latency is in milliseconds whatever the fleet's time unit; the
    adjuster moves T and I by whole seconds, so with ``unit = "ms"`` (T0, I0
    and the result in milliseconds) each step is 1000.

    Examples
    --------
    >>> adjuster_advice(10_000, 45, 1)
    (53, 3)
    >>> adjuster_advice(40_000, 45, 1)
    (101, 15)
    >>> adjuster_advice(160_000, 45, 1)
    (293, 63)
    >>> adjuster_advice(3_000, 45, 1)
    (45, 1)
    >>> adjuster_advice(40_000, 45_000, 1_000, unit="ms")
    (101000, 15000)
    """
    per = TIME_UNITS[unit]
    over = Fraction(max(0, avg_ms - threshold_ms))
    return t0 + per * _round_half_up(Fraction(8, 5) * over / 1000), i0 + per * _round_half_up(over / 2500)


@dataclass(frozen=True)
class Level:
    """One load level a server's adjuster can see, and the advice it gives."""

    avg_ms: int
    timeout: int
    interval: int


@dataclass(frozen=True)
class Faults:
    """Bounds on the faults the adversary may inject during one run.

    Each count is how many times the fault may happen in a run; each fault may
    strike at any moment. `loss_servers` names the servers that may lose
    connectivity (all when empty).
    """

    server_loss: int = 0
    loss_duration: int = 60
    loss_servers: tuple[int, ...] = ()
    client_crash: int = 0
    client_cut: int = 0
    cut_duration: int = 120


@dataclass(frozen=True)
class Bounds:
    """How far a search may go before it must stop and say so.

    ``max_depth`` (steps from an initial state; 0: none) is a *stated bound*:
    a search that explored every run up to it may report that an ``always``
    property holds within it. The state and time budgets are not: a search
    stopped by them is inconclusive.
    """

    max_states: int = 2_000_000
    max_seconds: float = 600.0
    max_depth: int = 0


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
