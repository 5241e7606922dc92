"""The reapers, rule by rule (guard beside effect): the publish path and the GC sweep of a shared store, and
the extra judges (a client's own, a proxy) that close a connection silent past their cutoff.
"""

from __future__ import annotations

from .events import Dropped, QueueDropped, Reaped, Swept
from .judgement import _expired, cutoff_text, judges, recorded_level, would_reap
from .params import Params
from .rules_common import _detached
from .state import HELD, RETRY, WAITING, Action, Client, State, Step


def _reapers(params: Params, state: State, path: str) -> list[int]:
    """The up servers on which reaper `path` would destroy some session now.

    Equivalent to asking `would_reap` for every (server, session) pair, but
    linear: a session's margin ``age - stamp - threshold`` is compared once
    with each server's clock offset. This runs for every state searched.
    """
    if not params.heartbeat.faye:
        return _reapers_by_client(params, state, path)
    sessions = [cl.session for cl in state.clients if cl.session]
    if not sessions:
        return []
    ages = params.reap_ages[path]
    if params.design.judges_by_session(path):
        worst = max(x.age - x.stamp - ages[recorded_level(params, x)] for x in sessions)
        return [s for s, srv in enumerate(state.servers) if srv.down == 0 and worst + params.offset(s) >= 0]
    oldest = max(x.age - x.stamp for x in sessions)
    return [
        s for s, srv in enumerate(state.servers)
        if srv.down == 0 and oldest + params.offset(s) >= ages[srv.reap]
    ]


def _reapers_by_client(params: Params, state: State, path: str) -> list[int]:
    # The general case (local stores, client-set cutoffs): ask every judge.
    found = set()
    for c, cl in enumerate(state.clients):
        if cl.session:
            found.update(s for s in judges(params, state, c) if would_reap(params, state, s, cl.session, path, c))
    return sorted(found)


def _sweep(params: Params, state: State, s: int, path: str) -> list[Reaped]:
    victims = []
    local = params.heartbeat.store == "local"
    for c, cl in enumerate(state.clients):
        if cl.session and (not local or cl.server == s):
            ev = _expired(params, state, s, c, cl.session, path)
            if ev is not None:
                victims.append(ev)
    return victims


def _destroy(params: Params, state: State, victims: list[Reaped]) -> State:
    """Remove reaped sessions; the server holding a victim's socket closes it."""
    clients = list(state.clients)
    for ev in victims:
        cl = clients[ev.client]
        if cl.phase in (HELD, WAITING):
            clients[ev.client] = Client(RETRY, -1, params.retry_delay, _detached(params, cl))
        else:
            clients[ev.client] = cl._replace(session=_detached(params, cl), server=-1)
    return State(tuple(clients), *state[1:])


def _drops(params: Params, victims: list[Reaped], state: State) -> tuple:
    return tuple(
        Dropped(ev.client, state.clients[ev.client].server, "session reaped", params.retry_delay)
        for ev in victims
        if state.clients[ev.client].phase in (HELD, WAITING)
    )


# How a published engine's publish races the servers holding its expired
# subscribers' sockets (`Action.value` of a ``publish`` that has such a race).
FLUSH_FIRST, DELETE_FIRST = 0, 1


def _holder(state: State, c: int) -> int:
    """The server holding `c`'s socket, which flushes its queue down it; -1 for none."""
    cl = state.clients[c]
    return cl.server if cl.phase in (HELD, WAITING) else -1


def _when_publish(params: Params, state: State) -> list[Action]:
    # A server publishes when traffic comes: at any moment. Only a publish
    # that would reap (or drop a queue) is listed; any other changes nothing.
    if "publish" not in params.heartbeat.paths:
        return []
    return [a for s in _reapers(params, state, "publish") for a in _publishes(params, state, s)]


def _publishes(params: Params, state: State, s: int) -> list[Action]:
    # faye-redis 0.2.0 queues the message for every subscriber and tells each
    # subscriber's server at once, then checks the subscriber and deletes the
    # queue of one it calls expired. A server holding that subscriber's socket
    # flushes the queue when told: whichever comes first decides whether the
    # message is lost. Both orders are possible (the holder loses when its
    # event loop lags, as a loaded server's does), so both are actions; where
    # no expired subscriber has a socket the loss is certain and there is one.
    if params.publish_expired == "drop-queue" and any(
            _holder(state, ev.client) >= 0 for ev in _sweep(params, state, s, "publish")):
        return [Action("publish", server=s, value=v) for v in (FLUSH_FIRST, DELETE_FIRST)]
    return [Action("publish", server=s)]


def _publish(params: Params, state: State, a: Action) -> Step:
    victims = _sweep(params, state, a.server, "publish")
    if params.publish_expired == "drop-queue":
        # Nothing changes but the message's fate: the session lives on.
        return Step(state, tuple(
            QueueDropped(*ev[:2], *ev[3:], holder=_holder(state, ev.client),
                         lost=a.value == DELETE_FIRST or _holder(state, ev.client) < 0)
            for ev in victims))
    return Step(_destroy(params, state, victims), tuple(victims) + _drops(params, victims, state))


def _when_gc(params: Params, state: State) -> list[Action]:
    # A GC sweep may come at any moment on any up server (module docstring);
    # listed only where it would destroy something.
    if "gc" not in params.heartbeat.paths:
        return []
    return [Action("gc", server=s) for s in _reapers(params, state, "gc")]


_GC_TEXTS: tuple = (None, {})  # the fleet `_gc_cutoff_text` last answered for, and its answers


def _gc_cutoff_text(params: Params, level: int) -> str:
    """The GC cutoff of `level` as people write it; kept per fleet (the arithmetic is over fractions)."""
    global _GC_TEXTS
    memo = _GC_TEXTS
    if memo[0] is not params:
        memo = _GC_TEXTS = (params, {})
    text = memo[1].get(level)
    if text is None:
        text = memo[1][level] = cutoff_text(params.cutoff("gc", level))
    return text


def _gc(params: Params, state: State, a: Action) -> Step:
    victims = _sweep(params, state, a.server, "gc")
    level = state.servers[a.server].reap
    swept = Swept(a.server, params.levels[level].timeout, _gc_cutoff_text(params, level))
    return Step(_destroy(params, state, victims), (swept,) + tuple(victims) + _drops(params, victims, state))


def expired_judges(params: Params, state: State) -> list[tuple[int, int]]:
    """(client, judge index) for every extra judge whose cutoff a connection has reached.

    The client judges while it runs (held or waiting for its next heartbeat);
    a proxy judges every connection through it, a crashed or cut-off
    client's half-open one too. The silence a judge sees is the session's
    age: the time since the last heartbeat, which went through the proxy
    (a proxy that does not count heartbeats is refused by the scenario
    format). A judge may fire at any moment once its cutoff has passed.
    """
    out = []
    for c, cl in enumerate(state.clients):
        if not cl.session or cl.server < 0:
            continue
        for j, judge in enumerate(params.judges):
            if judge.side == "client" and cl.phase not in (HELD, WAITING):
                continue
            if cl.session.age >= params.judge_age(judge, cl.session.hs_level):
                out.append((c, j))
    return out


def _when_expire(params: Params, state: State) -> list[Action]:
    return [Action("expire", client=c, value=j) for c, j in expired_judges(params, state)] if params.judges else []


def _expire(params: Params, state: State, a: Action) -> Step:
    """An extra judge closes `a.client`'s connection: its session goes with it.

    The client's own judge gives up on a server it thinks silent; a proxy
    closes an idle connection. Either way the socket closes at both ends
    and a running client reconnects after its retry delay (a new session).
    """
    judge = params.judges[a.value]
    cl = state.clients[a.client]
    level = cl.session.hs_level
    source = "handshake" if judge.source == "handshake" else "proxy"
    ev = Reaped(a.client, cl.server, judge.side, cl.session.age, params.levels[level].timeout,
                cutoff_text(params.judge_cutoff(judge, level)), source)
    nxt = _destroy(params, state, [ev])
    return Step(nxt, (ev,) + _drops(params, [ev], state))
