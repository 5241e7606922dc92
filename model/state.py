"""The state of a fleet: immutable, hashable, ordered, free of absolute time.

Every record here is a `typing.NamedTuple`: a tuple underneath, so hashing
and comparison are fast (the exhaustive checker hashes millions of them) and
a sorted tuple of clients is a canonical form under client symmetry.

No field holds the absolute time. Timers count down to the next event and
session ages count up, saturating at `Params.age_cap`; so the reachable state
space is finite even though runs are unbounded, and a state graph with a
cycle is a behaviour that goes on forever. Traces recompute the clock by
adding up the ``tick`` actions they replay.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "Session",
    "Client",
    "Server",
    "State",
    "Action",
    "Step",
    "HELD",
    "WAITING",
    "RETRY",
    "CUT",
    "CRASHED",
    "REJOIN",
    "PHASES",
    "NO_PING",
]

# Client phases.
HELD = "held"  # a server holds its /meta/connect; `timer` = hold left
WAITING = "waiting"  # answered; its next connect arrives in `timer`
RETRY = "retry"  # its socket dropped; it tries again in `timer`
CUT = "cut"  # the client's own network is cut off for `timer` more time units
CRASHED = "crashed"  # gone for good; its session lingers until reaped
REJOIN = "rejoin"  # refused with 401; it re-handshakes in `timer` (the stock client waits the interval)
PHASES = (HELD, WAITING, RETRY, CUT, CRASHED, REJOIN)  # appended in order: engines index this tuple
NO_PING = -1  # `Session.strikes` of a connection whose first heartbeat has not arrived


class Session(NamedTuple):
    """A client's session in the shared store.

    ``age`` is the time since the last refresh by the store's reference clock
    *minus* ``stamp``, the clock offset of the server that stamped it: a reaper
    with offset ``o`` sees the age as ``age + o - stamp``. ``hs_level`` and
    ``ref_level`` index `Params.levels`: the advice level when the session was
    created, and when it was last refreshed (what a per-session design records).
    Where the stack lets the client set its own heartbeat interval or cutoff
    (`Heartbeat.client_owned`), ``hs_level`` is the level of the client's own
    configuration, declared with its session.
    ``strikes`` counts the early heartbeats of a connection judged by a
    minimum spacing (`Heartbeat.min_spacing`); `NO_PING` before its first
    heartbeat, which has nothing to be early against. Elsewhere always 0.
    """

    age: int
    stamp: int
    hs_level: int
    ref_level: int
    strikes: int = 0


class Client(NamedTuple):
    """One browser. ``server`` is the server holding its socket (-1: none)."""

    phase: str
    server: int
    timer: int
    session: Session | tuple  # () when the client has no session


class Server(NamedTuple):
    """One app server process.

    ``down`` is the time left of a connectivity loss (0: up). ``target``
    is the load level the adjuster wants, ``adv`` the level whose (T, I) this
    server advises and holds connects for, ``reap`` the level whose T its
    reapers judge by; the three differ only while a change propagates.
    ``hot`` records reconnects absorbed since the load last rose.
    """

    down: int
    target: int
    adv: int
    reap: int
    hot: bool


class State(NamedTuple):
    """The whole fleet at one instant.

    ``tuner_timer`` counts down to the deadline of a fleet-wide change still
    propagating (design ``fleet`` with a propagation delay): 0 when none is
    pending, -1 when its deadline is due. ``rollout`` is where a
    configuration rollout stands (`stormcheck.model.rollout`): `NOT_BEGUN`
    (0) before it starts and after it ends, a positive countdown to its next
    batch or to the end of a release window, `DUE` (-1) when that ran out,
    `RUNNING` (-2) while a phase goes on with nothing counting down; always
    0 in a fleet without a rollout. The ``*_left`` fields are the faults the
    adversary may still inject.
    """

    clients: tuple[Client, ...]
    servers: tuple[Server, ...]
    tuner_timer: int
    rollout: int
    losses_left: int
    crashes_left: int
    cuts_left: int


class Action(NamedTuple):
    """One labelled transition. Unused fields are -1.

    ``kind`` names the protocol step (see `stormcheck.model.fleet.ACTIONS`);
    ``value`` is the RTT, load level or time step the action chose.
    """

    kind: str
    client: int = -1
    server: int = -1
    value: int = -1

    def __str__(self) -> str:
        parts = [f"{name}={v}" for name, v in zip(("client", "server", "value"), self[1:]) if v != -1]
        return f"{self.kind}({', '.join(parts)})"


class Step(NamedTuple):
    """The result of one transition: the next state and what happened."""

    state: State
    events: tuple
