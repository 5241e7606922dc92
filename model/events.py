"""What a transition did, as data.

A step returns its events beside the next state. Properties over transitions
read them (`no_valid_reap` looks at `Reaped`), and the timeline renders them
for people, so each event carries the arithmetic that explains it: a `Reaped`
event says which reaper path ran on which server, the age it saw, the timeout
it judged by and the cutoff that age crossed.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "Reaped",
    "QueueDropped",
    "Refused",
    "Handshake",
    "Refreshed",
    "Replied",
    "Dropped",
    "Adjusted",
    "Fault",
    "Recovered",
    "Swept",
    "Began",
    "Restarted",
    "Reconfigured",
    "Upgraded",
    "Struck",
    "Resumed",
]


class Reaped(NamedTuple):
    """Reaper path `path` on `server` destroyed `client`'s session.

    ``age`` is the age the reaper saw (its own clock), ``timeout`` the T it
    judged by, ``cutoff`` = multiplier x timeout (a decimal string: 1.6 x 101
    is 161.6), ``judged_by`` either ``server`` or ``session``. A judge beside
    the servers' (`Params.judges`) has `path` ``client`` or ``proxy`` and
    `judged_by` ``handshake`` (the values told at the handshake) or ``proxy``
    (its fixed idle timeout); `server` is the server of the closed socket.
    """

    client: int
    server: int
    path: str
    age: int
    timeout: int
    cutoff: str
    judged_by: str


class QueueDropped(NamedTuple):
    """The publish path on `server` called `client` expired and deleted its message queue.

    The published faye-redis 0.2.0 does this instead of destroying the
    session: the session survives. The fields explain the judgement as
    `Reaped`'s do; the last two say what became of the message just queued.
    `holder` is the server holding the client's socket (-1: none), which is
    told of the message at the same moment and flushes the queue down the
    socket: the two race. `lost` says the delete came first (always so where
    nothing holds a socket to flush to).
    """

    client: int
    server: int
    age: int
    timeout: int
    cutoff: str
    judged_by: str
    holder: int = -1
    lost: bool = True


class Refused(NamedTuple):
    """`server` answered `client`'s connect with 401: unknown client."""

    client: int
    server: int


class Handshake(NamedTuple):
    """`client` handshook on `server` (new id, k re-subscribes) and was told (T, I)."""

    client: int
    server: int
    timeout: int
    interval: int


class Struck(NamedTuple):
    """`client`'s heartbeat reached `server` only `spacing` s after the previous one.

    Under `min_spacing` s, so it counts as a strike: the connection's
    `strikes`-th. One more than `Heartbeat.strikes` closes the connection,
    which is a `Reaped` event of path ``spacing`` (age: the spacing seen,
    timeout and cutoff: the minimum).
    """

    client: int
    server: int
    spacing: int
    min_spacing: int
    strikes: int


class Resumed(NamedTuple):
    """`client` reconnected to `server` `age` s after its socket closed and resumed its session.

    Within `Heartbeat.resume_window`: the session, its subscriptions and
    what was queued for it, carry over to the new socket (no re-subscribe).
    """

    client: int
    server: int
    age: int


class Refreshed(NamedTuple):
    """`server` refreshed `client`'s session and holds its connect for `hold` s."""

    client: int
    server: int
    age: int
    hold: int


class Replied(NamedTuple):
    """`server` answered `client`'s held connect with advice (T, I)."""

    client: int
    server: int
    timeout: int
    interval: int


class Dropped(NamedTuple):
    """`client`'s socket on `server` closed; it retries in `retry_in` s."""

    client: int
    server: int
    reason: str
    retry_in: int


class Adjusted(NamedTuple):
    """`server` now advises (T, I) (`what` = advice), judges by T (reaper), or both.

    ``server = -1, what = "target"``: the fleet's target moved (a staged or
    delayed fleet-wide change began); servers adopt it in later steps.
    """

    server: int
    what: str
    timeout: int
    interval: int
    load_ms: int


class Fault(NamedTuple):
    """A fault struck: `kind` is server-loss, client-crash or client-cut."""

    kind: str
    who: int
    duration: int


class Recovered(NamedTuple):
    """A timed fault ended: `kind` server-loss or client-cut."""

    kind: str
    who: int


class Swept(NamedTuple):
    """A GC round ran on `server` (the lock winner)."""

    server: int
    timeout: int
    cutoff: str


class Began(NamedTuple):
    """A configuration rollout began phase `phase` (numbered from 1): `label` says what it does."""

    phase: int
    label: str


class Restarted(NamedTuple):
    """`server` restarted into configuration `level` for `what` (both, judge or advice).

    It stays unreachable for `down`; its sockets dropped.
    """

    server: int
    what: str
    level: int
    down: int


class Reconfigured(NamedTuple):
    """`server` took configuration `level` for `what` (both, judge or advice) live: nothing dropped."""

    server: int
    what: str
    level: int


class Upgraded(NamedTuple):
    """`client` now runs configuration `level`, picked up by `how` (reconnect, advice or release)."""

    client: int
    level: int
    how: str
