"""The client's connect loop, rule by rule (guard ``_when_KIND`` beside effect ``_KIND``): a held connect
answered, the next connect arriving, a reconnect through the load balancer, and what a server does with a
connect (refresh, refusal, handshake). `stormcheck.model.fleet` gathers the rules into its table.
"""

from __future__ import annotations

from .events import Dropped, Handshake, Reaped, Recovered, Refreshed, Refused, Replied, Resumed, Struck
from .judgement import _expired, _up_servers, perceived_age, reply_level
from .params import Params
from .rules_common import STALE, _level, _replace_client, _replace_server, new_session
from .rules_reapers import _destroy
from .rules_rollout import _pick_up, _release_open, client_level
from .state import CUT, HELD, NO_PING, REJOIN, RETRY, WAITING, Action, Client, Session, State, Step


def _due(state: State, phases: tuple) -> list[int]:
    """The clients whose timer ran out in one of `phases`: their next event is due."""
    return [c for c, cl in enumerate(state.clients) if cl.timer == 0 and cl.phase in phases]


def _when_reply(params: Params, state: State) -> list[Action]:
    # A held connect is answered when its hold runs out, one action per RTT.
    return [Action("reply", client=c, value=rtt) for c in _due(state, (HELD,)) for rtt in params.rtt]


def _reply(params: Params, state: State, a: Action) -> Step:
    state, picked = _pick_up(params, state, a.client) if params.rollout else (state, ())
    cl = state.clients[a.client]
    level = reply_level(params, state, a.client)
    adv = _level(params, level)
    session = cl.session
    if params.design.tuner == "fleet-staged" and session.ref_level != level:
        # A staged lowering moves reapers only once every session has been
        # refreshed under the new advice. A reply carrying other advice than
        # the one the session was refreshed under leaves the client between
        # two schedules (an old hold, new interval, or the reverse), so it
        # counts as refreshed under no level until its next connect arrives.
        # (Staged designs judge by server, so ref_level is free to mean this;
        # scenario_checks.py enforces it.)
        session = session._replace(ref_level=STALE)
    nxt = _replace_client(state, a.client, Client(WAITING, cl.server, adv.interval + a.value, session))
    return Step(nxt, picked + (Replied(a.client, cl.server, adv.timeout, adv.interval),))


def _when_arrive(params: Params, state: State) -> list[Action]:
    # The next connect reaches the server once the interval (and RTT) ran out.
    return [Action("arrive", client=c) for c in _due(state, (WAITING,))]


def _arrive(params: Params, state: State, a: Action) -> Step:
    cl = state.clients[a.client]
    return _connect(params, state, a.client, cl.server, ())


def _when_reconnect(params: Params, state: State) -> list[Action]:
    # A client that lost its socket, was cut off, or was refused connects
    # again when its wait runs out: through the load balancer, to any up server.
    return [a for c in _due(state, (RETRY, CUT, REJOIN)) for a in _reconnects(params, state, c)]


def _reconnects(params: Params, state: State, c: int) -> list[Action]:
    cl = state.clients[c]
    ups = _up_servers(state)
    if not ups:
        # Nowhere to connect: the attempt fails and is retried later.
        return [Action("reconnect", client=c)]
    if _release_open(params, state) and (params.heartbeat.store == "local" or not cl.session):
        # During a client release a client that reconnects may run either
        # release: the model does not remember which one it ran before it
        # lost its session (value = the level its new session declares).
        return [Action("reconnect", client=c, server=s, value=v) for s in ups for v in (0, 1)]
    return [Action("reconnect", client=c, server=s) for s in ups]


def _reconnect(params: Params, state: State, a: Action) -> Step:
    cl = state.clients[a.client]
    if a.server == -1:
        retry = params.retry_delay
        # A client about to re-handshake keeps that plan; it only tries later.
        phase = REJOIN if cl.phase == REJOIN else RETRY
        nxt = _replace_client(state, a.client, cl._replace(phase=phase, server=-1, timer=retry))
        return Step(nxt, (Dropped(a.client, -1, "no server reachable", retry),))
    events = (Recovered("client-cut", a.client),) if cl.phase == CUT else ()
    if params.heartbeat.store == "local" and cl.session:
        # A session lives with its socket: a new socket is a new session,
        # unless it resumes one that outlives its socket.
        window = params.heartbeat.resume_window
        if window and cl.session.age < window:
            return _resume(params, state, a.client, a.server, events)
        if window:
            events += (Reaped(a.client, a.server, "resume", cl.session.age, window, str(window), "server"),)
        state = _replace_client(state, a.client, cl._replace(session=()))
        return _handshake(params, state, a.client, a.server, events, a.value)
    return _connect(params, state, a.client, a.server, events, a.value)


def _resume(params: Params, state: State, c: int, s: int, events: tuple) -> Step:
    """A reconnect within `Heartbeat.resume_window` of the close: the session carries over to the new socket."""
    cl = state.clients[c]
    srv = state.servers[s]
    session = new_session(params, s, cl.session.hs_level, srv.adv)
    if params.heartbeat.min_spacing:
        session = session._replace(strikes=NO_PING)  # a new connection's count starts afresh
    nxt = _replace_client(state, c, Client(HELD, s, params.hold(srv.adv), session))
    return Step(nxt, events + (Resumed(c, s, cl.session.age),))


def _connect(params: Params, state: State, c: int, s: int, events: tuple, declared: int = -1) -> Step:
    """A connect from client `c` reaches server `s`: existence check, then refresh."""
    cl = state.clients[c]
    session = cl.session
    if not session:
        # No session (it was reaped, or the client abandoned it): a new
        # socket handshakes; a connect on an old id gets 401 and re-handshakes.
        # A client that retries on its old id after a drop (`after_drop =
        # "same-id"`) sends a connect too, and is refused the same way.
        if cl.phase in (WAITING, CUT) or (cl.phase == RETRY and params.after_drop == "same-id"):
            return _refused(params, state, c, s, events + (Refused(c, s),), declared)
        return _handshake(params, state, c, s, events, declared)
    reaped = _expired(params, state, s, c, session, "existence") if "existence" in params.heartbeat.paths else None
    if reaped is not None:
        state = _replace_client(state, c, cl._replace(session=()))
        return _refused(params, state, c, s, events + (reaped, Refused(c, s)), declared)
    srv = state.servers[s]
    level = srv.adv
    new = new_session(params, s, session.hs_level, level)
    if params.heartbeat.min_spacing:
        new, early = _spacing(params, c, s, session, new)
        if early and early[-1].strikes > params.heartbeat.strikes:
            return _too_early(params, state, c, s, events + early)
        events += early
    hold = params.hold(level)
    nxt = _replace_client(state, c, Client(HELD, s, hold, new))
    return Step(nxt, events + (Refreshed(c, s, perceived_age(params, session, s), hold),))


def _spacing(params: Params, c: int, s: int, session: Session, new: Session) -> tuple[Session, tuple]:
    """A heartbeat under a minimum spacing: the refreshed session with its strike count, and a `Struck` if early.

    The spacing is the time since the previous heartbeat, which is the
    session's age on the server that stamped it (the socket's own, since the
    rule needs a local store).
    """
    if session.strikes == NO_PING:
        return new._replace(strikes=0), ()
    spacing = perceived_age(params, session, s)
    if spacing >= params.heartbeat.min_spacing:
        return new._replace(strikes=session.strikes), ()
    # Counts saturate one past the tolerance: the close comes then.
    strikes = min(session.strikes + 1, params.heartbeat.strikes + 1)
    return new._replace(strikes=strikes), (Struck(c, s, spacing, params.heartbeat.min_spacing, strikes),)


def _too_early(params: Params, state: State, c: int, s: int, events: tuple) -> Step:
    """One early heartbeat too many: the server closes the connection (gRPC's GOAWAY "too_many_pings")."""
    struck = events[-1]
    ev = Reaped(c, s, "spacing", struck.spacing, struck.min_spacing, str(struck.min_spacing), "server")
    nxt = _destroy(params, state, [ev])
    return Step(nxt, events + (ev, Dropped(c, s, "too many pings", params.retry_delay)))


def _refused(params: Params, state: State, c: int, s: int, events: tuple, declared: int) -> Step:
    """After a 401 the client re-handshakes: at once (Gitter's 2015 client), or
    after the advised interval (the stock client, `after_401 = "interval"`).

    The error reply carries no advice, so the stock client waits the interval
    it was last advised; the model takes the refusing server's current advice,
    the server whose reply the client last followed unless its level moved
    since (the state keeps no per-client copy of old advice).
    """
    wait = params.levels[state.servers[s].adv].interval if params.after_401 == "interval" else 0
    if wait == 0:
        return _handshake(params, state, c, s, events, declared)
    nxt = _replace_client(state, c, Client(REJOIN, -1, wait, ()))
    return Step(nxt, events)


def _handshake(params: Params, state: State, c: int, s: int, events: tuple, declared: int = -1) -> Step:
    srv = state.servers[s]
    # A client that sets its own interval or cutoff declares its level with
    # the new session (`declared`, when the reconnect chose it); otherwise
    # the session records the server's advice.
    if params.heartbeat.client_owned:
        hs = declared if declared >= 0 else client_level(params, state)
    else:
        hs = srv.adv
    session = new_session(params, s, hs, srv.adv)
    if params.heartbeat.min_spacing:
        session = session._replace(strikes=NO_PING)
    adv = _level(params, srv.adv)
    nxt = _replace_client(state, c, Client(HELD, s, params.hold(srv.adv), session))
    # The server absorbed a reconnect: a handshake plus k subscribes, each
    # building a room snapshot. This is what lets its load rise. (Where no
    # load can rise on it, the flag would only split states for nothing.)
    if params.load_trigger == "reconnects" and params.load_moves and not srv.hot:
        nxt = _replace_server(nxt, s, srv._replace(hot=True))
    return Step(nxt, events + (Handshake(c, s, adv.timeout, adv.interval),))
