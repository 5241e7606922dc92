"""What every rule module builds its steps with: a state with one client or server replaced, a new session, a
session detached from its socket.
"""

from __future__ import annotations

from .params import Params
from .state import CRASHED, Client, Server, Session, State

# `Session.ref_level` of a session whose client follows advice it was not
# refreshed under (staged designs only; see `rules_clients._reply`).
STALE = -1


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


def _detached(params: Params, cl: Client) -> Session | tuple:
    """What is left of `cl`'s session once its socket closed: kept for the resume window, age counting from now."""
    if not params.heartbeat.resume_window or not cl.session or cl.phase == CRASHED:
        return ()
    return cl.session._replace(age=0, strikes=0)
