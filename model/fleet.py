"""The reconnect / connect-loop / reaper protocol of a Bayeux fleet, as one pure function.

Design rules
------------
1. Everything that decides a transition lives in this module, or in
   `model.judgement` (who judges a session, by what cutoff, and who is
   valid: what the properties and the other engines read too), and reads as
   the protocol of ``docs/protocol.md``: one rule per action kind, its guard
   (``_when_KIND``: the actions of that kind enabled in a state) beside its
   effect (``_KIND``), and `RULES`, the table of them all (who acts, whether
   it is urgent, guard, effect). `ACTIONS`, the dispatch, the listing order
   and the engines' lists of kinds derive from the table.
2. `actions(params, state)` lists every enabled action in a fixed order, and
   `step(params, state, action)` is pure and deterministic. Every engine
   (exhaustive, Hypothesis, symbolic) consumes these two functions; none of
   them re-implements the protocol, and those that state rules again (the
   Z3 encoding, the storm simulation) name, kind by kind, what they cover
   and what they refuse.
3. An action that is not enabled raises `ProtocolError` naming the action, the
   client or server and its phase, and changes nothing.

Theory of operation: time
-------------------------
The clock is an integer number of time units (`Params.unit`: seconds, or
milliseconds where a scenario asks for them), but no state stores it. Each
client, each faulted server, a propagating fleet change (`State.tuner_timer`)
and a rollout's batch or release window (`State.rollout`) carry a
countdown; ``tick`` advances time by the smallest positive countdown in one
step ("time advances to the next deadline"), ageing every session by the same
amount. Events that fall due then fire one by one before time may move again
(they are urgent). Ages saturate at `Params.age_cap`, so the state space is
finite and unbounded runs become cycles in the state graph.

Between two deadlines nothing changes but ages, and every reaper test is
``age >= cutoff``, monotone in age: the latest instant of an interval is the
worst case for a session, and that instant is the state at the interval's
end, where the instantaneous actions below are all enabled. So the
abstraction loses no reap that the protocol allows.

The resolution does not grow the state space. A state holds countdowns and
ages, never the clock, and a tick jumps to the next deadline however far it
is: every value a countdown or an age takes is a sum of the fleet's own
durations. The same fleet stated in milliseconds (every duration a thousand
times its value in seconds) reaches the same states, each value scaled, and
no more (tests/test_time_unit.py pins the counts); one millisecond more or
less in one duration changes which deadline comes first, not how many there
are.

Nondeterminism is kept where the real system has it and nowhere else:

* the RTT of each connect round trip (`Params.rtt` lists the choices),
* the load balancer's choice of server for every new socket,
* which server publishes when (the publish path runs on traffic), and when
  a GC sweep runs and on which up server. Each server starts a sweep every
  60 s on its own timer, at a phase nobody controls, and the Redis lock only
  keeps two from overlapping; so a sweep may come at any moment. The model
  lets it (an over-approximation of *when*, never of *what* a sweep destroys),
  which keeps a 60-second countdown out of every state.
* when the adjuster's load input moves, within `Params.levels`,
* when faults strike (a server's connectivity loss, a client crash, a client's
  network cut), up to the counts in `Params.faults`.

Other stacks: one rule set as data
----------------------------------
Faye is one point of a wider space (`Params.heartbeat`, see
`stormcheck.model.params.Heartbeat`; its defaults are Faye's and leave every
step above as it was). A heartbeat is a connect held for T or a ping answered
at once; the next one follows after an interval set by the serving server,
by the handshake or by the client itself; a judge cuts a session off at
``m x T + k x I``, by its own server's level or by the client's; sessions live
in one shared store or with their socket (then only the server holding the
socket judges it, a crashed or cut-off client's half-open socket stays with
that server, and a new socket is a new session). A client's own level lives
in its session (`Session.hs_level`). A server that schedules and judges its
own pings adds the interval it uses now to its cutoff
(`Heartbeat.interval_term`). Other judges may stand beside the servers'
(`Params.judges`, action ``expire``): the client's own, by what its
handshake told it (Engine.IO 4), and proxies with an idle timeout.

The published Faye stack
------------------------
Three rules follow Gitter's fork and client by default and the published
packages on request (`Params.publish_expired`, `after_drop`, `after_401`;
docs/protocol.md, "The published stack"): the publish path drops an expired
subscriber's message queue instead of destroying it (`_publish`), a dropped
client retries on its old id with its session kept (`_drop_sockets`), and a
client refused with 401 waits the advised interval in `REJOIN` before it
re-handshakes (`_refused`).

Rollouts
--------
`Params.rollout` moves the fleet from level 0 (configuration A) to level 1
(B) in phases: servers restarted in batches at a pace (``restart``), clients
reached by a release (``upgrade``), at their next handshake or with the next
reply; a phase may instead change a live server's settings (``reconfigure``:
no restart, nothing drops). The operator may ``launch`` it at any moment; a due batch or the end of
a release window is urgent. `stormcheck.model.rollout` says how the state
records where a rollout stands.

Two simplifications, each safe for the properties checked:

* A handshake and the first connect that follows it are one step. The connect
  follows the handshake by one RTT, when the new session is at most RTT old:
  far below every cutoff, so no reaper can tell the difference.
* A session its client has abandoned (it re-handshook under a new id) is
  dropped from the state: reaping it is always correct and nothing else
  reads it.
"""

from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

from .events import (
    Adjusted,
    Began,
    Dropped,
    Reconfigured,
    Fault,
    Struck,
    Resumed,
    Handshake,
    QueueDropped,
    Reaped,
    Recovered,
    Refreshed,
    Refused,
    Replied,
    Restarted,
    Swept,
    Upgraded,
)
from .judgement import (  # noqa: F401 (re-exported: `model.judgement` is where they are stated)
    _expired,
    _up_servers,
    cutoff_age,
    cutoff_text,
    interval_level,
    interval_level_of,
    is_valid,
    judge_source,
    judged_level,
    judged_level_of,
    judged_timeout,
    judges,
    judges_of,
    perceived_age,
    reap_age,
    recorded_level,
    reply_level,
    reply_level_of,
    would_reap,
)
from .params import Params
from .rollout import DUE, NOT_BEGUN, RUNNING, Phase
from .state import (
    CRASHED,
    CUT,
    HELD,
    NO_PING,
    REJOIN,
    RETRY,
    WAITING,
    Action,
    Client,
    Server,
    Session,
    State,
    Step,
)

__all__ = [
    "ACTIONS",
    "RULES",
    "Rule",
    "ProtocolError",
    "FLUSH_FIRST",
    "DELETE_FIRST",
    "actions",
    "step",
    "initial_states",
    "is_valid",
    "canonical",
    "judged_level",
    "judged_level_of",
    "judge_source",
    "judges_of",
    "interval_level_of",
    "reap_age",
    "reply_level_of",
    "judged_timeout",
    "recorded_level",
    "would_reap",
    "reply_level",
    "perceived_age",
    "cutoff_text",
    "new_session",
    "successors",
    "next_deadline",
    "judges",
    "current_phase",
    "client_level",
    "interval_level",
    "expired_judges",
    "cutoff_age",
]

# `Session.ref_level` of a session whose client follows advice it was not
# refreshed under (staged designs only; see `_reply`).
STALE = -1


class ProtocolError(ValueError):
    """An action that the protocol does not allow in this state."""


# ---------------------------------------------------------------- helpers


def _level(params: Params, index: int):
    return params.levels[index]


def _replace_client(state: State, index: int, client: Client) -> State:
    clients = list(state.clients)
    clients[index] = client
    # Positional, not `_replace`: every step builds a state, and this is how it builds most.
    return State(tuple(clients), *state[1:])


def _replace_server(state: State, index: int, server: Server) -> State:
    servers = list(state.servers)
    servers[index] = server
    return State(state.clients, tuple(servers), *state[2:])


def new_session(params: Params, server: int, hs_level: int, ref_level: int) -> Session:
    """A session just stamped by `server`, recording what the design reads.

    A level the design never reads is stored as 0: otherwise two states that
    behave identically would differ in a dead field and double the search.
    """
    keep_hs, keep_ref = params.session_levels_kept
    return Session(0, params.offset(server), hs_level if keep_hs else 0, ref_level if keep_ref else 0)


# ---------------------------------------------------------------- initial states


def initial_states(params: Params) -> list[State]:
    """The fleet in its steady state at t = 0, one state per socket placement.

    Every client has just had its connect arrive on the server the load
    balancer gave it: a fresh session, held for T0. Every server is up at the
    base level.
    """
    servers = tuple(Server(0, 0, 0, 0, False) for _ in range(params.servers))
    hold = params.hold(0)
    states = []
    for placement in _placements(params.clients, params.servers):
        # Each connection just opened: under a minimum spacing, its first
        # heartbeat is still to come.
        strikes = NO_PING if params.heartbeat.min_spacing else 0
        clients = tuple(
            Client(HELD, s, hold, new_session(params, s, 0, 0)._replace(strikes=strikes)) for s in placement
        )
        f = params.faults
        states.append(State(clients, servers, tuner_timer=0, rollout=NOT_BEGUN, losses_left=f.server_loss,
                            crashes_left=f.client_crash, cuts_left=f.client_cut))
    return states


def _placements(clients: int, servers: int):
    # Non-decreasing server sequences: every placement up to client symmetry.
    if clients == 0:
        yield ()
        return
    for first in range(servers):
        for rest in _placements(clients - 1, servers):
            if not rest or rest[0] >= first:
                yield (first,) + rest


def canonical(params: Params, state: State) -> State:
    """The representative of `state` under the fleet's symmetries.

    Clients are interchangeable: every one runs the same code with the same
    parameters, and properties quantify over all of them; so the clients are
    sorted. Servers are interchangeable too when nothing singles one out (no
    clock skew, every server's load may move and every server may fail);
    then servers are ordered by what they are and which clients they hold,
    and the clients' server numbers follow. Servers that tie are identical,
    so the order among them does not matter: the form is canonical.
    """
    ordered = tuple(sorted(state.clients))
    if params.servers_symmetric and len(state.servers) > 1:
        order = _server_order(ordered, state.servers)
        if order is not None:
            return _renumbered(state, ordered, order)
    if ordered == state.clients:
        return state
    return State(ordered, *state[1:])


def _server_order(clients: tuple[Client, ...], servers: tuple[Server, ...]) -> list[int] | None:
    """The servers' canonical order (None: as they are), `clients` being sorted.

    A server's key is its entry and what its clients are (phase, timer,
    session), in order; sorted clients list each server's in that order
    already, so one sort of the clients serves both.
    """
    held: list[list] = [[] for _ in servers]
    for phase, server, timer, session in clients:
        if server >= 0:
            held[server].append((phase, timer, session))
    keys = list(zip(servers, held))
    # Sorting is stable: keys already in order leave the servers as they are
    # (the common case, and cheaper to see than to sort).
    if all(keys[i] <= keys[i + 1] for i in range(len(keys) - 1)):
        return None
    return sorted(range(len(keys)), key=keys.__getitem__)


def _renumbered(state: State, clients: tuple[Client, ...], order: list[int]) -> State:
    """`state` with its servers in `order`, the clients' server numbers following, clients sorted again."""
    new_index = [0] * len(order)
    for new, old in enumerate(order):
        new_index[old] = new
    renumbered = sorted(
        Client(phase, new_index[server] if server >= 0 else server, timer, session)
        for phase, server, timer, session in clients
    )
    return State(tuple(renumbered), tuple(state.servers[i] for i in order), *state[2:])


# ---------------------------------------------------------------- the rules
# Each rule is a guard, `_when_KIND(params, state)`: the actions of that kind
# enabled in `state`, and beside it an effect, `_KIND(params, state, action)`:
# the step it makes. They come in the order a reader meets the protocol: the
# client's connect loop, the reapers, the tuner, faults, time, rollouts.
# `RULES` at the end is the table; `ACTIONS`, `actions`, the dispatch and the
# engines' lists of kinds are derived from it.


# -- the client's connect loop --------------------------------------------


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


def _detached(params: Params, cl: Client) -> Session | tuple:
    """What is left of `cl`'s session once its socket closed: kept for the resume window, age counting from now."""
    if not params.heartbeat.resume_window or not cl.session or cl.phase == CRASHED:
        return ()
    return cl.session._replace(age=0, strikes=0)


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


# -- the reapers --------------------------------------------------------


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


# -- the tuner -----------------------------------------------------------


def _settled(state: State) -> bool:
    """Every server runs the fleet's target level, for its advice and its reaper."""
    return all(srv.adv == srv.target and srv.reap == srv.target for srv in state.servers)


def _when_load(params: Params, state: State) -> list[Action]:
    # The load input moves, within `Params.levels`: one server's (the 2015
    # adjuster) or, for a fleet-wide tuner, the fleet's once the last change
    # settled.
    if not params.load_moves:
        return []
    if params.design.tuner == "per-server":
        return [
            Action("load", server=s, value=level)
            for s, srv in enumerate(state.servers)
            if params.can_load_move(s) and not srv.down
            for level in range(len(params.levels))
            if level != srv.target and _may_move(params, srv.target, level, srv.hot)
        ]
    if not _settled(state):
        return []
    target, hot = state.servers[0].target, any(srv.hot for srv in state.servers)
    return [Action("load", value=level) for level in range(len(params.levels))
            if level != target and _may_move(params, target, level, hot)]


def _may_move(params: Params, current: int, level: int, hot: bool) -> bool:
    rising = params.levels[level].avg_ms > params.levels[current].avg_ms
    return not rising or params.load_trigger == "free" or hot


def _load(params: Params, state: State, a: Action) -> Step:
    lvl = _level(params, a.value)
    design = params.design
    if design.tuner == "per-server":
        srv = state.servers[a.server]
        rising = lvl.avg_ms > _level(params, srv.target).avg_ms
        new = srv._replace(target=a.value, adv=a.value, reap=a.value, hot=srv.hot and not rising)
        nxt = _replace_server(state, a.server, new)
        return Step(nxt, (Adjusted(a.server, "both", lvl.timeout, lvl.interval, lvl.avg_ms),))
    rising = lvl.avg_ms > _level(params, state.servers[0].target).avg_ms
    immediate = design.tuner == "fleet" and design.propagation_delay == 0
    servers = []
    for srv in state.servers:
        srv = srv._replace(target=a.value, hot=srv.hot and not rising)
        if immediate:
            srv = srv._replace(adv=a.value, reap=a.value)
        servers.append(srv)
    timer = design.propagation_delay if design.tuner == "fleet" and not immediate else 0
    nxt = state._replace(servers=tuple(servers), tuner_timer=timer)
    if immediate:
        events = tuple(Adjusted(s, "both", lvl.timeout, lvl.interval, lvl.avg_ms) for s in range(len(servers)))
    else:
        # The fleet's target moved; servers adopt it by later steps. Server
        # -1 stands for the fleet, so timelines show where the change began.
        events = (Adjusted(-1, "target", lvl.timeout, lvl.interval, lvl.avg_ms),)
    return Step(nxt, events)


def _when_adopt(params: Params, state: State) -> list[Action]:
    # A fleet-wide change reaches each server in its own time (bounded by the
    # propagation delay: see `deadline`), advice and reaper at once.
    if not params.load_moves or params.design.tuner != "fleet" or _settled(state):
        return []
    target = state.servers[0].target
    return [Action("adopt", server=s) for s, srv in enumerate(state.servers) if srv.adv != target]


_STAGED_MEMO: tuple = (None, None, ("", []))  # the last (params, state, answer): both halves' guards ask in turn


def _staged(params: Params, state: State) -> tuple[str, list[int]]:
    """Which half a staged change moves next, and on which servers ("", [] when none)."""
    global _STAGED_MEMO
    if _STAGED_MEMO[0] is params and _STAGED_MEMO[1] is state:
        return _STAGED_MEMO[2]
    answer = _staged_now(params, state)
    _STAGED_MEMO = (params, state, answer)
    return answer


def _staged_now(params: Params, state: State) -> tuple[str, list[int]]:
    if not params.load_moves or params.design.tuner != "fleet-staged" or _settled(state):
        return "", []
    servers = state.servers
    target = servers[0].target
    # Raising moves every reaper before any advice; lowering moves every
    # advice, then reapers once every session refreshed under it. A change
    # starts only when the last one settled, so the level a server has not
    # adopted yet is the previous one: it tells the direction.
    pending = next(srv for srv in servers if srv.adv != target or srv.reap != target)
    previous = pending.reap if pending.reap != target else pending.adv
    reapers = [s for s, srv in enumerate(servers) if srv.reap != target]
    advice = [s for s, srv in enumerate(servers) if srv.adv != target]
    if params.levels[target].avg_ms > params.levels[previous].avg_ms:
        return ("adopt_reaper", reapers) if reapers else ("adopt_advice", advice)
    if advice:
        return "adopt_advice", advice
    if all(not cl.session or cl.session.ref_level == target for cl in state.clients):
        return "adopt_reaper", reapers
    return "", []


def _when_adopt_reaper(params: Params, state: State) -> list[Action]:
    kind, servers = _staged(params, state)
    return [Action(kind, server=s) for s in servers] if kind == "adopt_reaper" else []


def _when_adopt_advice(params: Params, state: State) -> list[Action]:
    kind, servers = _staged(params, state)
    return [Action(kind, server=s) for s in servers] if kind == "adopt_advice" else []


def _adopt(params: Params, state: State, a: Action) -> Step:
    what = {"adopt": "both", "adopt_reaper": "reaper", "adopt_advice": "advice"}[a.kind]
    srv = state.servers[a.server]
    lvl = _level(params, srv.target)
    new = srv._replace(
        adv=srv.target if what != "reaper" else srv.adv,
        reap=srv.target if what != "advice" else srv.reap,
    )
    nxt = _replace_server(state, a.server, new)
    if all(x.adv == x.target and x.reap == x.target for x in nxt.servers):
        nxt = nxt._replace(tuner_timer=0)
    return Step(nxt, (Adjusted(a.server, what, lvl.timeout, lvl.interval, lvl.avg_ms),))


def _when_deadline(params: Params, state: State) -> list[Action]:
    # A fleet change's propagation delay ran out: every server adopts it now.
    return [Action("deadline")] if state.tuner_timer == -1 else []


def _deadline(params: Params, state: State, a: Action) -> Step:
    events = []
    for s, srv in enumerate(state.servers):
        if srv.adv != srv.target or srv.reap != srv.target:
            lvl = _level(params, srv.target)
            events.append(Adjusted(s, "both", lvl.timeout, lvl.interval, lvl.avg_ms))
    servers = tuple(srv._replace(adv=srv.target, reap=srv.target) for srv in state.servers)
    return Step(state._replace(servers=servers, tuner_timer=0), tuple(events))


# -- faults ----------------------------------------------------------------


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


# -- rollouts --------------------------------------------------------------
# A change from configuration A (level 0) to B (level 1), phase by phase
# (model/rollout.py says what the phases are and how the state records them).


def _server_done(srv: Server, phase: Phase) -> bool:
    if phase.part == "judge":
        return srv.reap >= 1
    if phase.part == "advice":
        return srv.adv >= 1
    return srv.adv >= 1 and srv.reap >= 1


def _phase_done(state: State, phase: Phase) -> bool:
    if phase.side == "servers":
        return all(_server_done(srv, phase) for srv in state.servers)
    # A crashed client never picks anything up; the rollout does not wait for
    # it. A client without a session runs what the rollout gives a new
    # session (`client_level`): B once its phase began.
    return all(not cl.session or cl.session.hs_level >= 1 or cl.phase == CRASHED for cl in state.clients)


def _release_open(params: Params, state: State) -> bool:
    """True while a client release's window runs."""
    k = current_phase(params, state)
    if k is None or state.rollout <= 0:
        return False
    phase = params.rollout.phases[k]
    return phase.side == "clients" and phase.pickup == "release"


def client_level(params: Params, state: State) -> int:
    """The level a client without a session runs: B (1) once a clients phase of the rollout began.

    A client's own level lives in its session (`Session.hs_level`); one that
    has none starts its next session with this, except while a release's
    window runs, when its reconnect chooses either level (`_reconnects`).
    """
    ro = params.rollout
    if ro is None:
        return 0
    k = current_phase(params, state)
    if k is None:
        return 1 if any(p.side == "clients" for p in ro.phases) else 0
    if any(p.side == "clients" for p in ro.phases[:k]):
        return 1
    return 1 if ro.phases[k].side == "clients" and state.rollout != NOT_BEGUN else 0


def current_phase(params: Params, state: State) -> int | None:
    """The index of the rollout phase under way (or next to begin); None when done or no rollout."""
    if params.rollout is None:
        return None
    phases = params.rollout.phases
    k = next((k for k, phase in enumerate(phases) if not _phase_done(state, phase)), None)
    # A release is over when its window is, not when the clients the model
    # follows happen to have it: they stand for many. While its countdown
    # runs, the next phase (servers, whose first batch is urgent, so none
    # has moved yet) waits.
    last = len(phases) if k is None else k
    if last > 0 and state.rollout > 0:
        prev = phases[last - 1]
        if prev.side == "clients" and prev.pickup == "release" and (
            k is None or not any(_server_done(srv, phases[k]) for srv in state.servers)
        ):
            return last - 1
    return k


def _start_timer(phase: Phase) -> int:
    if phase.side == "clients" and phase.pickup == "release":
        return phase.spread if phase.spread > 0 else DUE
    return RUNNING


_PHASED: tuple = (None, None, None)  # the last (params, state, phase) `_rollout_phase` answered


def _rollout_phase(params: Params, state: State) -> Phase | None:
    """The phase under way, once the rollout was launched (None before, after, or with no rollout).

    Four guards ask it of each state; the last answer is kept, by identity.
    """
    global _PHASED
    if params.rollout is None or state.rollout == NOT_BEGUN:
        return None
    last = _PHASED
    if last[0] is params and last[1] is state:
        return last[2]
    k = current_phase(params, state)
    phase = None if k is None else params.rollout.phases[k]
    _PHASED = (params, state, phase)
    return phase


def _when_launch(params: Params, state: State) -> list[Action]:
    # The operator may begin the rollout (or its next phase) at any moment.
    if params.rollout is None or state.rollout != NOT_BEGUN or current_phase(params, state) is None:
        return []
    return [Action("launch")]


def _launch(params: Params, state: State, a: Action) -> Step:
    k = current_phase(params, state)
    phase = params.rollout.phases[k]
    return Step(state._replace(rollout=_start_timer(phase)), (Began(k + 1, phase.label(params.unit)),))


def _moving(params: Params, state: State, live: bool) -> list[int]:
    """The servers a servers phase (a `live` change, or restarts) moves now: due or running, up, not yet moved."""
    phase = _rollout_phase(params, state)
    if phase is None or phase.side != "servers" or (phase.change == "live") != live \
            or state.rollout not in (DUE, RUNNING):
        return []
    return [s for s, srv in enumerate(state.servers) if srv.down == 0 and not _server_done(srv, phase)]


def _when_restart(params: Params, state: State) -> list[Action]:
    return [Action("restart", server=s) for s in _moving(params, state, live=False)]


def _restart(params: Params, state: State, a: Action) -> Step:
    phase = _rollout_phase(params, state)  # the guard just asked it of this state
    srv = state.servers[a.server]
    down = params.rollout.restart
    new = srv._replace(
        adv=1 if phase.part != "judge" else srv.adv,
        reap=1 if phase.part != "advice" else srv.reap,
        down=down,
    )
    nxt, dropped = _drop_sockets(params, _replace_server(state, a.server, new), a.server, "server restarted")
    return Step(_next_batch(nxt, phase), (Restarted(a.server, phase.part, 1, down),) + dropped)


def _next_batch(state: State, phase: Phase) -> State:
    """After one server of a servers phase moved: the batch goes on, or the next one comes after the pace."""
    done = sum(_server_done(x, phase) for x in state.servers)
    if done < len(state.servers):
        timer = RUNNING if done % phase.batch or phase.pace == 0 else phase.pace
        state = state._replace(rollout=timer)
    return state


def _when_reconfigure(params: Params, state: State) -> list[Action]:
    return [Action("reconfigure", server=s) for s in _moving(params, state, live=True)]


def _reconfigure(params: Params, state: State, a: Action) -> Step:
    """A live server takes B's settings for the phase's part: nothing drops.

    Open sockets keep their sessions and what their handshakes told them;
    the server's own schedule and judge read the new values from now on.
    """
    phase = _rollout_phase(params, state)  # the guard just asked it of this state
    srv = state.servers[a.server]
    new = srv._replace(
        adv=1 if phase.part != "judge" else srv.adv,
        reap=1 if phase.part != "advice" else srv.reap,
    )
    nxt = _next_batch(_replace_server(state, a.server, new), phase)
    return Step(nxt, (Reconfigured(a.server, phase.part, 1),))


def _when_upgrade(params: Params, state: State) -> list[Action]:
    # A client release reaches every client that runs A, during its window;
    # those it has not reached when the window ends are due at once.
    phase = _rollout_phase(params, state)
    if phase is None or phase.side != "clients" or phase.pickup != "release":
        return []
    return [Action("upgrade", client=c) for c, cl in enumerate(state.clients)
            if cl.session and cl.session.hs_level < 1 and cl.phase != CRASHED]


def _upgrade(params: Params, state: State, a: Action) -> Step:
    cl = state.clients[a.client]
    if cl.phase in (HELD, WAITING):
        # A new client release runs after a reload: the old page's socket
        # closes and the new one connects after the retry delay.
        retry = params.retry_delay
        nxt = _replace_client(state, a.client, Client(RETRY, -1, retry, ()))
        return Step(nxt, (Upgraded(a.client, 1, "release"), Dropped(a.client, cl.server, "client reloaded", retry)))
    session = cl.session._replace(hs_level=1)
    return Step(_replace_client(state, a.client, cl._replace(session=session)), (Upgraded(a.client, 1, "release"),))


def _pick_up(params: Params, state: State, c: int) -> tuple[State, tuple]:
    """A client running A picks B up from a reply, if the clients' phase under way says so.

    (At a handshake every rule gives a new session `client_level`.)
    """
    k = current_phase(params, state)
    if k is None or state.rollout == NOT_BEGUN:
        return state, ()
    phase = params.rollout.phases[k]
    cl = state.clients[c]
    if phase.side != "clients" or phase.pickup != "advice" or cl.session.hs_level >= 1:
        return state, ()
    return _replace_client(state, c, cl._replace(session=cl.session._replace(hs_level=1))), (Upgraded(c, 1, "advice"),)


def _settle(params: Params, pre: State, st: Step) -> Step:
    """After a step that completed a rollout phase, start the next one (or mark the rollout done)."""
    if pre.rollout == NOT_BEGUN:
        return st
    before, after = current_phase(params, pre), current_phase(params, st.state)
    if after == before or before is None:
        return st
    # Phases follow one another: the next one begins now, even one that looks
    # complete already (a release that finds no client with a session still
    # runs its window: clients that reconnect during it may run either side).
    following = before + 1
    if following == len(params.rollout.phases):
        return Step(st.state._replace(rollout=NOT_BEGUN), st.events)
    phase = params.rollout.phases[following]
    timer = _start_timer(phase)
    return Step(st.state._replace(rollout=timer), st.events + (Began(following + 1, phase.label(params.unit)),))


# ---------------------------------------------------------------- the table


class Rule(NamedTuple):
    """One protocol step: who takes it, when it is enabled, what it does.

    ``has`` says whether a fleet has the rule at all (one without a rollout
    has no ``launch``): where it is false the guard never enables anything,
    and `actions` does not ask it. ``due`` says whether an enabled action of this kind is urgent (time may
    not advance past it) or may happen at any moment: a bool, or a function
    of the parameters and state where that depends on the state (a release's
    upgrades are urgent once its window ran out). ``adversary`` marks the
    moves the environment makes at will (traffic, timers nobody controls,
    load, faults); the Hypothesis engine may mute them in a run.
    """

    kind: str
    actor: str
    has: Callable[[Params], bool]
    due: bool | Callable[[Params, State], bool]
    enabled: Callable[[Params, State], list[Action]]
    apply: Callable[[Params, State, Action], Step]
    adversary: bool
    text: str


def _ALWAYS(params: Params) -> bool:
    return True


def _ROLLOUT(params: Params) -> bool:
    return params.rollout is not None


def _FLEET(params: Params) -> bool:
    return params.load_moves and params.design.tuner == "fleet"


def _STAGED(params: Params) -> bool:
    return params.load_moves and params.design.tuner == "fleet-staged"


# The table, in the order of `ACTIONS` (the symbolic engine numbers the kinds
# by it, so a new kind goes at the end).
RULES: tuple[Rule, ...] = (
    Rule("reply", "the server holding the connect", _ALWAYS, True, _when_reply, _reply, False,
         "a held connect is answered with the server's advice; the client waits the interval + RTT"),
    Rule("arrive", "client", _ALWAYS, True, _when_arrive, _arrive, False,
         "the next connect reaches its server: existence check, refresh, hold"),
    Rule("reconnect", "client", _ALWAYS, True, _when_reconnect, _reconnect, False,
         "a client without a socket connects again through the load balancer (handshake or same-id connect)"),
    Rule("restore", "environment", _ALWAYS, True, _when_restore, _restore, False,
         "a lost server's connectivity comes back"),
    Rule("deadline", "fleet tuner", _FLEET, True, _when_deadline, _deadline, False,
         "a fleet-wide change's propagation delay ran out: every server adopts it"),
    Rule("publish", "traffic", lambda p: "publish" in p.heartbeat.paths, False, _when_publish, _publish, True,
         "a server publishes: its publish path judges every subscriber by its own cutoff"),
    Rule("gc", "a server's GC timer", lambda p: "gc" in p.heartbeat.paths, False, _when_gc, _gc, True,
         "a GC sweep on one server destroys every session past that server's GC cutoff"),
    Rule("load", "environment", lambda p: p.load_moves, False, _when_load, _load, True,
         "the load input moves: a server's (its adjuster) or the fleet's (a fleet-wide tuner)"),
    Rule("adopt", "fleet tuner", _FLEET, False, _when_adopt, _adopt, True,
         "one server adopts a fleet-wide change, advice and reaper at once"),
    Rule("adopt_reaper", "fleet tuner", _STAGED, False, _when_adopt_reaper, _adopt, True,
         "one server's reaper adopts a staged change"),
    Rule("adopt_advice", "fleet tuner", _STAGED, False, _when_adopt_advice, _adopt, True,
         "one server's advice adopts a staged change"),
    Rule("lose", "environment", lambda p: p.faults.server_loss > 0, False, _when_lose, _lose, True,
         "a server loses connectivity for a while: every socket on it drops"),
    Rule("crash", "environment", lambda p: p.faults.client_crash > 0, False, _when_crash, _crash, True,
         "a client crashes: its session is left to the reapers"),
    Rule("cut", "environment", lambda p: p.faults.client_cut > 0, False, _when_cut, _cut, True,
         "a client's network is cut for a while; it reconnects when it returns"),
    Rule("tick", "time", _ALWAYS, False, _when_tick, _tick, False,
         "time jumps to the next deadline, ageing every session (only when nothing is due)"),
    Rule("launch", "operator", _ROLLOUT, False, _when_launch, _launch, False,
         "the operator begins the rollout's next phase"),
    Rule("restart", "operator", _ROLLOUT, True, _when_restart, _restart, False,
         "a server of the batch under way restarts with the phase's part at B: its sockets drop"),
    Rule("upgrade", "operator", _ROLLOUT, lambda params, state: state.rollout == DUE,
         _when_upgrade, _upgrade, False,
         "a client release reaches a client: its page reloads (a new socket) or its session takes B"),
    Rule("expire", "an extra judge", lambda p: bool(p.judges), False, _when_expire, _expire, False,
         "a client's own judge or a proxy closes a connection silent past its cutoff"),
    Rule("reconfigure", "operator", _ROLLOUT, True, _when_reconfigure, _reconfigure, False,
         "a live server takes B's settings for the phase's part: nothing drops"),
)

ACTIONS = tuple(rule.kind for rule in RULES)
RULE = {rule.kind: rule for rule in RULES}
_APPLY = {rule.kind: rule.apply for rule in RULES}

# The order `actions` lists enabled actions in, due ones first (a search's
# order, hence its shortest counterexamples, follow it). Kinds grouped in one
# tuple are listed client by client: a due client has one event enabled at a
# time, and crash comes before cut for each client.
_LISTING = (
    ("reply", "arrive", "reconnect"), ("restore",), ("deadline",), ("restart",), ("reconfigure",),
    ("publish",), ("gc",), ("expire",), ("load",), ("adopt",), ("adopt_reaper",), ("adopt_advice",),
    ("launch",), ("upgrade",), ("lose",), ("crash", "cut"),
)
assert sorted(k for group in _LISTING for k in group) == sorted(set(ACTIONS) - {"tick"}), "_LISTING misses a kind"
assert all(len(g) == 1 or {RULE[k].due for k in g} in ({True}, {False}) for g in _LISTING), "a group's urgency varies"


def _client_of(action: Action) -> int:
    return action.client


_LISTED: tuple = (None, ())  # the fleet `_listing` was last asked for, and its answer


def _listing(params: Params) -> tuple[tuple[Rule, ...], ...]:
    """`_LISTING`'s groups as rules, without the rules `params`' fleet does not have.

    Asked once per state searched, so the last answer is kept, by identity
    (one tuple, replaced whole: threads searching other fleets at the same
    time at worst recompute it).
    """
    global _LISTED
    last = _LISTED
    if last[0] is params:
        return last[1]
    groups = (tuple(RULE[k] for k in group if RULE[k].has(params)) for group in _LISTING)
    listing = tuple(g for g in groups if g)
    _LISTED = (params, listing)
    return listing


def actions(params: Params, state: State) -> list[Action]:
    """Every action enabled in `state`, in a fixed, documented order (`_LISTING`).

    Due events come first; time may only advance (``tick``) when none is due.
    """
    due: list[Action] = []
    free: list[Action] = []
    for group in _listing(params):
        rule = group[0]
        if len(group) == 1:
            enabled = rule.enabled(params, state)
            if enabled:
                urgent = rule.due(params, state) if callable(rule.due) else rule.due
                (due if urgent else free).extend(enabled)
        else:
            # Client by client, each client's in table order (a stable sort);
            # a group's kinds share one fixed urgency.
            enabled = sorted((a for r in group for a in r.enabled(params, state)), key=_client_of)
            (due if rule.due else free).extend(enabled)
    if not due:
        free.extend(_when_tick(params, state))
    return due + free


def step(params: Params, state: State, action: Action) -> Step:
    """Apply `action` to `state`; raise `ProtocolError` if it is not enabled."""
    if action not in actions(params, state):
        raise ProtocolError(_why_not(params, state, action))
    return _apply(params, state, action)


def _why_not(params: Params, state: State, action: Action) -> str:
    where = ""
    if 0 <= action.client < len(state.clients):
        cl = state.clients[action.client]
        where = f" client {action.client} is {cl.phase} (timer {cl.timer});"
    elif 0 <= action.server < len(state.servers):
        srv = state.servers[action.server]
        where = f" server {action.server} is {'down' if srv.down else 'up'} at level {srv.adv};"
    enabled = ", ".join(str(a) for a in actions(params, state))
    return f"action {action} is not enabled:{where} enabled here: {enabled}"


def _apply(params: Params, state: State, action: Action) -> Step:
    st = _APPLY[action.kind](params, state, action)
    return _settle(params, state, st) if params.rollout is not None else st


def successors(params: Params, state: State, listed: list[Action] | None = None) -> Iterator[tuple[Action, Step]]:
    """Every enabled action with its step, in `actions` order (no re-check).

    Engines that only ever apply actions `actions` just listed use this to
    skip `step`'s guard, which would list the enabled actions a second time;
    `listed`, if given, is such a list (or part of one) for `state`.
    Lazy, so that a search can keep to its time budget inside one state with
    very many successors (a long ``rtt`` list).
    """
    return ((a, _apply(params, state, a)) for a in (actions(params, state) if listed is None else listed))
