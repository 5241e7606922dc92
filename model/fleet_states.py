"""Where a search starts and what it compares: the fleet's initial states, and a state's canonical form under
the symmetries of its clients and servers.
"""

from __future__ import annotations

from .params import Params
from .rollout import NOT_BEGUN
from .rules_common import new_session
from .state import HELD, NO_PING, Client, Server, State


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
