"""Faults and time, rule by rule (guard beside effect): a server's connectivity lost and restored, a client
crashed or cut off, and time jumping to the next deadline.
"""

from __future__ import annotations

from .events import Dropped, Fault, Recovered
from .judgement import _up_servers
from .params import Params
from .rules_common import _detached, _replace_client, _replace_server
from .state import CRASHED, CUT, HELD, RETRY, WAITING, Action, Client, Session, State, Step


def _when_lose(params: Params, state: State) -> list[Action]:
    if not state.losses_left:
        return []
    ups = _up_servers(state)
    # A fleet that loses every server at once is a different outage.
    return [Action("lose", server=s) for s in ups if params.can_lose(s)] if len(ups) > 1 else []


def _lose(params: Params, state: State, a: Action) -> Step:
    duration = params.faults.loss_duration
    nxt = _replace_server(state, a.server, state.servers[a.server]._replace(down=duration))
    nxt = nxt._replace(losses_left=state.losses_left - 1)
    nxt, dropped = _drop_sockets(params, nxt, a.server, "server lost connectivity")
    return Step(nxt, (Fault("server-loss", a.server, duration),) + dropped)


def _drop_sockets(params: Params, state: State, server: int, reason: str) -> tuple[State, tuple]:
    """Every socket on `server` drops at once; the clients on them retry.

    Gitter's client re-handshakes on a new socket; the old session is
    abandoned. The stock Faye client (`after_drop = "same-id"`) retries its
    pending connect on the same client id: the session survives, and ages
    until the retry refreshes it. With sessions local to their socket, the
    half-open sockets of crashed or cut-off clients go too, and their
    sessions with them.
    """
    clients = list(state.clients)
    retry = params.retry_delay
    keep = params.after_drop == "same-id"
    events = []
    for c, cl in enumerate(clients):
        if cl.server != server:
            continue
        if cl.phase in (HELD, WAITING):
            clients[c] = Client(RETRY, -1, retry, cl.session if keep else _detached(params, cl))
            events.append(Dropped(c, server, reason, retry))
        else:
            clients[c] = cl._replace(server=-1, session=_detached(params, cl))
    return state._replace(clients=tuple(clients)), tuple(events)


def _when_crash(params: Params, state: State) -> list[Action]:
    if not state.crashes_left:
        return []
    return [Action("crash", client=c) for c, cl in enumerate(state.clients) if cl.phase in (HELD, WAITING)]


def _crash(params: Params, state: State, a: Action) -> Step:
    cl = state.clients[a.client]
    # A socket's server keeps a crashed or cut-off client's half-open socket;
    # it matters only where the session lives with the socket.
    server = cl.server if params.heartbeat.store == "local" else -1
    nxt = _replace_client(state, a.client, cl._replace(phase=CRASHED, server=server, timer=0))
    return Step(nxt._replace(crashes_left=state.crashes_left - 1), (Fault("client-crash", a.client, 0),))


def _when_cut(params: Params, state: State) -> list[Action]:
    if not state.cuts_left:
        return []
    return [Action("cut", client=c) for c, cl in enumerate(state.clients) if cl.phase in (HELD, WAITING)]


def _cut(params: Params, state: State, a: Action) -> Step:
    cl = state.clients[a.client]
    duration = params.faults.cut_duration
    server = cl.server if params.heartbeat.store == "local" else -1
    nxt = _replace_client(state, a.client, cl._replace(phase=CUT, server=server, timer=duration))
    return Step(nxt._replace(cuts_left=state.cuts_left - 1), (Fault("client-cut", a.client, duration),))


def _when_restore(params: Params, state: State) -> list[Action]:
    # A lost server's connectivity comes back when its loss runs out.
    return [Action("restore", server=s) for s, srv in enumerate(state.servers) if srv.down == -1]


def _restore(params: Params, state: State, a: Action) -> Step:
    srv = state.servers[a.server]
    return Step(_replace_server(state, a.server, srv._replace(down=0)), (Recovered("server-loss", a.server),))


# -- time ------------------------------------------------------------------


def _when_tick(params: Params, state: State) -> list[Action]:
    # Time jumps to the next deadline. `actions` lists it only when nothing
    # is due: the one guard that reads the other rules.
    return [Action("tick", value=_next_deadline(params, state))]


def _next_deadline(params: Params, state: State) -> int:
    # Nothing scheduled (every client crashed, every server up): time passes
    # by the longest hold, enough for any lingering session to age.
    due = next_deadline(state)
    return max(level.timeout for level in params.levels) if due is None else due


def next_deadline(state: State) -> int | None:
    """The smallest running countdown of `state`: a client's, a lost server's, the tuner's or the rollout's.

    None when nothing counts down. Time may pass by any amount up to it with
    no event falling due on the way.
    """
    timers = [cl.timer for cl in state.clients if cl.phase != CRASHED and cl.timer > 0]
    timers += [srv.down for srv in state.servers if srv.down > 0]
    timers += [t for t in (state.tuner_timer, state.rollout) if t > 0]
    return min(timers, default=None)


def _tick(params: Params, state: State, a: Action) -> Step:
    delta = a.value
    cap = params.age_cap
    clients = []
    for phase, server, timer, session in state.clients:
        if session:
            age, stamp, hs, ref, strikes = session
            session = Session(min(age + delta, cap), stamp, hs, ref, strikes)
        clients.append(Client(phase, server, timer - delta if phase != CRASHED else 0, session))
    # A countdown that reaches zero marks its event due: a server whose loss
    # ends is marked -1 until `restore` fires, a fleet change's deadline -1,
    # a rollout's batch or release window `DUE` (-1).
    servers = tuple(srv._replace(down=_count_down(srv.down, delta)) if srv.down > 0 else srv for srv in state.servers)
    tuner = _count_down(state.tuner_timer, delta) if state.tuner_timer > 0 else state.tuner_timer
    rollout = _count_down(state.rollout, delta) if state.rollout > 0 else state.rollout
    return Step(
        State(tuple(clients), servers, tuner, rollout, *state[4:]),
        (),
    )


def _count_down(timer: int, delta: int) -> int:
    """A positive countdown after `delta` seconds; -1 once it is due."""
    return timer - delta if timer > delta else -1
