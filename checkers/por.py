"""Partial-order reduction for the exhaustive engine: one due client at a time.

When several clients fall due at the same instant, the full search explores
every order of their events, and every free event (a GC sweep, a publish)
between any two of them. In a state where a due client ``c`` is *isolated*
(below), the reduced search expands only ``c``'s enabled events (its
*ample set*): the events of the others, and the free events, are explored
from the states after it. Symmetry reduction stays: the ample set is chosen
on the canonical state the search expands, by rules that do not depend on
which client is which, so it commutes with the client permutations.

Where it applies
----------------
A fleet whose servers cannot change while time stands still: no rollout,
no moving load (so no ``load``, ``adopt``, ``deadline``, ``restart``,
``reconfigure``, ``launch``, ``upgrade``), and per state no server loss left
and no ``restore`` due. Then, as long as no time passes, every server's
levels, up-ness and clock are frozen. A due client ``c`` is isolated when

(I1) every action of ``c`` enabled now is a due event (``reply``, ``arrive``,
     ``reconnect``): no crash, cut or judge's ``expire`` of ``c`` is enabled;
(I2) no GC or publish path of any server (up or not) would reap ``c``'s
     session now; and
(I3) after each of ``c``'s events, ``c``'s timer is positive and still no GC
     or publish path of any server would reap ``c``'s session.

The properties must be *client-local* (`Property.local`): a step is
interesting by its events and the pre-state's entries of the clients they
name; a state is interesting when one client's entry, with the servers,
makes it so. Every property of `stormcheck.properties.protocol` but the
liveness one is. Liveness needs the whole graph (a lasso); the engine does
not reduce then, nor under a depth bound (a reduced search to depth k does
not cover every run of k steps), nor when it keeps the graph.

Why it is exact (the ample-set conditions)
------------------------------------------
C0 (non-empty): ``c`` is due, so one of its events is enabled.

C1 (no dependent event first): along any run from the state that has not
fired an event of ``c``, no time passes (``tick`` is enabled only when
nothing is due, and only ``c``'s events, or events that touch ``c``, end its
being due). So the servers stay frozen, ``c``'s entry is unchanged, and what
can happen is: other clients' due events, which read the frozen servers and
write only their own entry (a handshake marks its server hot only where
load moves, excluded); GC sweeps and publishes, which write only their
victims, never ``c`` (I2, with ``c``'s session and every server's levels
frozen; checked on every server, so no later ``restore`` changes it);
crashes, cuts and expiries of other clients, which write those clients and
the crash/cut counters, which ``c``'s events do not read. ``c`` is not
crashed or cut later either: its phase is frozen and a crash needs a held or
waiting client, so (I1) now means never before ``c`` fires. Each of these
commutes with each event of ``c``: it stays enabled, its effect and its
events are the same either way (a sweep's victims exclude ``c`` before and,
by I3, after ``c``'s event), and ``c``'s event is likewise unchanged.

C2 (visibility), for client-local properties: commuting an event of ``c``
to the front of a run leaves every step's events, and the pre-state entries
of the clients they name, unchanged; so each interesting step of the run is
an interesting step of the commuted run. A state ``x`` on the run before
``c`` fires differs from its commuted image ``t(x)`` only in ``c``'s entry;
``c``'s entry in ``x`` is that of the state the search expanded (already
checked) and every other client's entry and the servers are those of
``t(x)``. A client-local bad state is bad through one client, so ``x`` bad
means the expanded state or ``t(x)`` is bad. Hence (induction on the length
of the run to the finding, then on the number of due clients, which drops by
one when a finding comes before ``c`` fires and ``c``'s event is put in
front): whatever the full search finds, the reduced search finds too.
The reduced graph is a subgraph of the full one, so it finds nothing more.

C3 (no event ignored forever): by (I3) an ample event leaves its client
with a positive timer, and only a tick counts it down; so along ample edges
the number of due clients falls strictly, no cycle of the reduced graph is
made of reduced states only, and every cycle passes through a fully
expanded state.

Shortest counterexamples: commuting keeps a run's length, but a finding
that comes before ``c``'s event moves one step later in the reduced graph,
so the reduced search may find a longer run than the shortest. The engine
therefore takes verdicts from the reduced search and, for every property it
found something for, runs the full search (no reduction) with a depth bound
of the longest run found: breadth-first, that finds a shortest one.
"""

from __future__ import annotations

from stormcheck.model.fleet import would_reap
from stormcheck.model.params import Params
from stormcheck.model.state import Action, State

__all__ = ["applies", "ample", "isolated_after", "DUE_EVENTS"]

# A client's due events: the connect loop's three steps (one enabled at a time).
DUE_EVENTS = frozenset({"reply", "arrive", "reconnect"})
_SHARED_DUE = frozenset({"restore"})


def applies(params: Params, properties) -> bool:
    """Can the reduction be used for this fleet and these properties at all?"""
    return params.rollout is None and not params.load_moves and all(p.local for p in properties)


def _reapable(params: Params, state: State, c: int) -> bool:
    """Would a GC or publish path of any server reap client `c`'s session now?"""
    session = state.clients[c].session
    if not session:
        return False
    paths = [p for p in ("gc", "publish") if p in params.heartbeat.paths]
    return any(would_reap(params, state, s, session, p, c) for s in range(len(state.servers)) for p in paths)


def ample(params: Params, state: State, listed: list[Action]) -> list[Action] | None:
    """The events of the first isolated due client (I1, I2), in `listed` order; None: expand everything.

    `listed` is what `actions` returned for `state`; the caller checks (I3)
    on the successors with `isolated_after` and expands everything if it fails.
    """
    if state.losses_left or any(a.kind in _SHARED_DUE for a in listed):
        return None
    by_client: dict[int, list[Action]] = {}
    other: set[int] = set()
    for a in listed:
        if a.client < 0:
            continue
        if a.kind in DUE_EVENTS:
            by_client.setdefault(a.client, []).append(a)
        else:
            other.add(a.client)
    for c, events in by_client.items():
        if c not in other and not _reapable(params, state, c):
            return events
    return None


def isolated_after(params: Params, state: State, c: int) -> bool:
    """(I3) on one successor: `c` is no longer due and no GC or publish path would reap it."""
    return state.clients[c].timer > 0 and not _reapable(params, state, c)
