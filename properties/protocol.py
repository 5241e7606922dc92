"""The properties of the reconnect / connect-loop / reaper protocol.

Each is a plain predicate over the model's states or steps; the engines
evaluate them and nothing else. Definitions follow ``docs/protocol.md``
("Validity: what 'a valid socket was reaped' means").
"""

from __future__ import annotations

from stormcheck.model.events import Fault, Handshake, QueueDropped, Reaped
from stormcheck.model.fleet import cutoff_age, is_valid, judges, perceived_age, reply_level
from stormcheck.model.params import Params
from stormcheck.model.state import CRASHED, CUT, HELD, NO_PING, RETRY, WAITING, State

from .core import ALWAYS, EVENTUALLY_ALWAYS, SOMETIMES, STATE, STEP, Property

__all__ = [
    "no_valid_reap",
    "no_message_loss",
    "parameter_agreement",
    "dead_session_reaped",
    "rehandshake_reachable",
    "storm_subsides",
    "PROPERTIES",
    "LIVENESS",
    "DELIVERY",
    "by_name",
    "next_refresh_age",
    "reap_margin",
    "client_margin",
]


def _no_valid_reap(params: Params, pre: State, action, step) -> bool:
    return not any(isinstance(e, Reaped) and is_valid(pre, e.client) for e in step.events)


def _no_message_loss(params: Params, pre: State, action, step) -> bool:
    # Every client is subscribed to the channels the model publishes to. The
    # published engine deletes the queue of a subscriber its publisher calls
    # expired (QueueDropped): the message is lost unless the server holding
    # the subscriber's socket flushed it first. The destroying engine destroys
    # the subscriber, and the message just queued for it goes with the session.
    return not any(
        ((isinstance(e, QueueDropped) and e.lost) or (isinstance(e, Reaped) and e.path == "publish"))
        and is_valid(pre, e.client)
        for e in step.events
    )


def next_refresh_age(params: Params, state: State, client: int) -> int | None:
    """The session age at which `client`'s next refresh lands, if it stays valid.

    A held client is answered when its hold runs out, waits the interval of
    the advice it is answered with and sends its next connect, which takes up
    to the largest RTT; a waiting client's connect arrives when its timer runs
    out. ``None`` for a client with no session or no refresh to come.
    """
    cl = state.clients[client]
    if not cl.session or cl.phase not in (HELD, WAITING):
        return None
    if cl.phase == WAITING:
        return cl.session.age + cl.timer
    level = reply_level(params, state, client)
    return cl.session.age + cl.timer + params.levels[level].interval + params.rtt_max


def reap_margin(params: Params, state: State) -> int | None:
    """How close the fleet is to reaping a valid client, in the fleet's time unit.

    For each valid client with a session: the age at which its next refresh
    lands (`next_refresh_age`), against the cutoff age of the publish and GC
    paths (those the stack has) of every up server that may judge it
    (`stormcheck.model.fleet.judges`), judged as the design says. The smallest ``cutoff -
    age at refresh``; zero or less means the refresh comes too late. ``None``
    when no valid client has a session.

    Where the server holding a connection enforces a minimum spacing between
    heartbeats (`Heartbeat.min_spacing`), the earliest the next one can come
    counts too: ``earliest - minimum + 1``, so zero or less means it may come
    too soon (a strike). The first heartbeat of a connection is never early.
    Where a session outlives its socket (`Heartbeat.resume_window`), a client
    retrying with its detached session counts ``window - age at the reconnect``.
    """
    best = None
    for c in range(len(state.clients)):
        margin = client_margin(params, state, c)
        if margin is not None and (best is None or margin < best):
            best = margin
    return best


_MARGINS: tuple = (None, {})  # the fleet `client_margin` last answered for, and its answers


def client_margin(params: Params, state: State, client: int) -> int | None:
    """`reap_margin` for one client: a function of its own entry and the servers alone.

    That is what makes `parameter_agreement` client-local (`Property.local`),
    and lets the answers be kept per fleet, keyed by the entry and the
    servers: a search meets the same client beside the same servers in many
    states (one dict, replaced whole when the fleet changes: threads checking
    other fleets at the same time at worst recompute).
    """
    global _MARGINS
    memo = _MARGINS
    if memo[0] is not params:
        memo = _MARGINS = (params, {})
    key = (state.clients[client], state.servers)
    try:
        return memo[1][key]
    except KeyError:
        margin = memo[1][key] = _client_margin(params, state, client)
        return margin


def _client_margin(params: Params, state: State, c: int) -> int | None:
    cl = state.clients[c]
    window = params.heartbeat.resume_window
    if window and cl.phase == RETRY and cl.session:
        # A detached session (its age counts from the close): the reconnect
        # lands when the retry timer runs out, and must come inside the window.
        return window - (cl.session.age + cl.timer)
    due = next_refresh_age(params, state, c)
    if due is None or not is_valid(state, c):
        return None
    best = None
    if params.heartbeat.min_spacing and cl.session.strikes != NO_PING:
        earliest = due if cl.phase == WAITING else due - params.rtt_max + min(params.rtt)
        best = earliest - params.heartbeat.min_spacing + 1
    paths = [path for path in ("publish", "gc") if path in params.heartbeat.paths]
    at_refresh = cl.session._replace(age=due)
    for r in judges(params, state, c):
        age = perceived_age(params, at_refresh, r)
        for path in paths:
            margin = cutoff_age(params, state.servers[r], at_refresh, path) - age
            best = margin if best is None or margin < best else best
    return best


def _parameter_agreement(params: Params, state: State) -> bool:
    margin = reap_margin(params, state)
    return margin is None or margin > 0


def _dead_session_reaped(params: Params, pre: State, action, step) -> bool:
    return any(isinstance(e, Reaped) and pre.clients[e.client].phase == CRASHED for e in step.events)


def _rehandshake_reachable(params: Params, pre: State, action, step) -> bool:
    return any(isinstance(e, Handshake) for e in step.events)


no_valid_reap = Property(
    "no_valid_reap",
    ALWAYS,
    STEP,
    _no_valid_reap,
    "No reaper path ever destroys the session of a valid client.",
    local=True,
)
no_message_loss = Property(
    "no_message_loss",
    ALWAYS,
    STEP,
    _no_message_loss,
    "A valid client never loses a message published to a channel it is subscribed to.",
    local=True,
)
parameter_agreement = Property(
    "parameter_agreement",
    ALWAYS,
    STATE,
    _parameter_agreement,
    "Every up server's publish and GC cutoffs lie beyond the next refresh of every valid client "
    "(and no heartbeat comes sooner than a server's minimum spacing).",
    local=True,
)
dead_session_reaped = Property(
    "dead_session_reaped",
    SOMETIMES,
    STEP,
    _dead_session_reaped,
    "A crashed client's session does get reaped (the reapers are not vacuous).",
    local=True,
)
rehandshake_reachable = Property(
    "rehandshake_reachable",
    SOMETIMES,
    STEP,
    _rehandshake_reachable,
    "A client re-handshakes (new id, re-subscribes): after a drop, or a 401 for a reaped session.",
    local=True,
)



def _calm(params: Params, pre: State, action, step) -> bool:
    # A storm step is a reconnect: a handshake, which costs its server a
    # snapshot per channel (docs/protocol.md, "Client cycle" step 2).
    return not any(isinstance(e, Handshake) for e in step.events)


def _during_fault(params: Params, pre: State, action, step) -> bool:
    # The fault itself, or any step while one is still in progress: a server
    # away, or a client cut off. A crash is permanent and over at once: a
    # crashed client's lingering session is not a fault in progress.
    return (
        any(isinstance(e, Fault) for e in step.events)
        or any(srv.down != 0 for srv in pre.servers)
        or any(cl.phase == CUT for cl in pre.clients)
    )


storm_subsides = Property(
    "storm_subsides",
    EVENTUALLY_ALWAYS,
    STEP,
    _calm,
    "Once the last fault is over, reconnects stop: no cycle of fault-free steps keeps clients reconnecting.",
    exclude=_during_fault,
)

PROPERTIES: tuple[Property, ...] = (no_valid_reap, parameter_agreement, dead_session_reaped, rehandshake_reachable)
# Message delivery: checked on request (--property) and in the manifest
# entries that list it. Kept out of PROPERTIES so that adding it left every
# pinned search (which stops once each of its properties is decided) as it was.
DELIVERY: tuple[Property, ...] = (no_message_loss,)
# Liveness needs the whole state graph (a lasso), so it is checked on request
# and by `stormcheck check`'s default set, not in every pinned manifest entry.
LIVENESS: tuple[Property, ...] = (storm_subsides,)


def by_name(name: str) -> Property:
    """The property called `name`; the error lists the known ones."""
    for prop in PROPERTIES + DELIVERY + LIVENESS:
        if prop.name == name:
            return prop
    known = ", ".join(p.name for p in PROPERTIES + DELIVERY + LIVENESS)
    raise KeyError(f"no property named {name!r}; known properties: {known}")
