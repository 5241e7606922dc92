"""The heartbeat rules of a stack and the judges beside its servers' reapers, as data.

`Heartbeat` says how a stack's heartbeat cycle runs and who judges it; `Judge`
is a client's or a proxy's own cutoff. They stand apart from `Params` because
they describe the protocol stack, whatever fleet runs it; `Params` holds one of
each (`stormcheck.model.params` re-exports every name here).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction

__all__ = [
    "HOLDS",
    "INTERVAL_FROM",
    "CUTOFF_FROM",
    "STORES",
    "REAPER_PATHS",
    "INTERVAL_TERMS",
    "JUDGE_SIDES",
    "JUDGE_SOURCES",
    "Heartbeat",
    "Judge",
]

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
