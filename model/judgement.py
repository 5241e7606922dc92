"""Who judges a session, by what cutoff, and whether its client is valid.

The decisions every reaper, every extra judge's neighbour, every property and
every engine reads: the age a server sees (its own clock), the level a reaper
path judges by (the server's, the session's record or the client's own), the
servers that may judge a session (shared or local store), the cutoff age of a
server judge with its interval term (`cutoff_age`), the level whose interval
a held client waits after its answer, and what makes a client valid. The rule
table (`model.fleet`) applies them; `properties.protocol`, `model.storm` and
the symbolic encoding read them; none states them again. `model.fleet`
re-exports every public name here, so both import paths work.
"""

from __future__ import annotations

from fractions import Fraction

from .events import Reaped
from .params import Params
from .state import HELD, REJOIN, RETRY, WAITING, Server, Session, State

__all__ = [
    "perceived_age",
    "judged_level",
    "judge_source",
    "judged_level_of",
    "judges",
    "judges_of",
    "recorded_level",
    "judged_timeout",
    "interval_level",
    "interval_level_of",
    "reap_age",
    "cutoff_age",
    "would_reap",
    "reply_level",
    "reply_level_of",
    "cutoff_text",
    "is_valid",
]


def perceived_age(params: Params, session: Session, server: int) -> int:
    """The age of `session` as `server` sees it, with its own clock."""
    return session.age + params.offset(server) - session.stamp


def judged_level(
    params: Params, state: State, server: int, session: Session, path: str, client: int = -1
) -> tuple[int, str]:
    """The level whose timeout a reaper path on `server` judges `session` by.

    Returns the level index and its source, ``server``, ``session`` or
    ``client``. A stack whose cutoff is the client's own setting
    (`Heartbeat.cutoff_from`) judges by the level of `client`, the session's
    owner. Otherwise a design that judges by the session uses the recorded
    level (at handshake or at the last refresh); GC keeps its server's own
    timeout when the design says ``all-but-gc``.
    """
    return judged_level_of(params, path, session, state.servers[server].reap)


def judge_source(params: Params, path: str) -> str:
    """Whose level reaper `path` judges a session by: ``client``, ``session`` or ``server`` (see `judged_level`)."""
    if params.heartbeat.cutoff_from == "client":
        return "client"
    if params.design.judges_by_session(path):
        return "session"
    return "server"


def judged_level_of(params: Params, path: str, session: Session, reap: int) -> tuple[int, str]:
    """`judged_level` for a judging server whose reaper runs level `reap`."""
    source = judge_source(params, path)
    if source == "client":
        return session.hs_level, source
    if source == "session":
        return recorded_level(params, session), source
    return reap, source


def judges(params: Params, state: State, client: int) -> list[int]:
    """The up servers whose reapers may judge `client`'s session.

    Every one with a shared store; with sessions local to their socket, only
    the server holding it.
    """
    return judges_of(params, state.clients[client].server, _up_servers(state))


def judges_of(params: Params, holder: int, ups: list[int]) -> list[int]:
    """`judges` for a session whose socket is on `holder` (-1: none), `ups` being the up servers."""
    if params.heartbeat.store == "local":
        return [holder] if holder in ups else []
    return ups


def recorded_level(params: Params, session: Session) -> int:
    """The level a session-judging design recorded: at handshake or at the last refresh."""
    return session.hs_level if params.design.record == "handshake" else session.ref_level


def judged_timeout(
    params: Params, state: State, server: int, session: Session, path: str, client: int = -1
) -> tuple[int, str]:
    """The timeout (seconds) a reaper path on `server` judges `session` by, and its source."""
    level, source = judged_level(params, state, server, session, path, client)
    return params.levels[level].timeout, source


def interval_level(params: Params, state: State, server: int, level: int) -> int:
    """The level whose I a judge on `server` adds to its cutoff, judging by `level`.

    A process that schedules its own pings and judges them
    (`Heartbeat.interval_term` "in-use") waits for the interval it uses now,
    its advice level; otherwise the judged level's own I.
    """
    return interval_level_of(params, level, state.servers[server].adv)


def interval_level_of(params: Params, level: int, adv: int) -> int:
    """`interval_level` on a server that advises level `adv`."""
    return adv if params.heartbeat.interval_term == "in-use" else level


def reap_age(params: Params, path: str, level: int, in_use: int) -> int:
    """The smallest age reaper `path` reaps judging by `level`, its interval term read from level `in_use`."""
    if params.heartbeat.interval_term == "in-use":
        return params.reap_ages_in_use[path][level][in_use]
    return params.reap_ages[path][level]


def cutoff_age(params: Params, srv: Server, session: Session, path: str) -> int:
    """The age (as the judging server sees it) at which reaper `path` on a server with entry `srv` reaps `session`.

    The one statement of a server judge's cutoff: the level it judges by
    (`judged_level_of`) and, where the stack's judge adds the interval it
    uses now (`Heartbeat.interval_term` "in-use"), that interval. The reaper
    (`would_reap`) and the properties' margins (`properties.protocol`) read it.
    """
    level, _ = judged_level_of(params, path, session, srv.reap)
    return reap_age(params, path, level, interval_level_of(params, level, srv.adv))


def would_reap(params: Params, state: State, server: int, session: Session, path: str, client: int = -1) -> bool:
    """Would reaper `path` on `server` destroy `session` (of `client`) now?"""
    return perceived_age(params, session, server) >= cutoff_age(params, state.servers[server], session, path)


def reply_level(params: Params, state: State, client: int) -> int:
    """The level whose interval a held client waits after its answer (as things stand).

    Faye 1.1 answers with the advice current at reply time; a per-session
    design answers with the advice fixed when the connect arrived. Other
    stacks take the interval from the advice of the handshake, or from the
    client's own configuration (`Heartbeat.interval_from`).
    """
    cl = state.clients[client]
    return reply_level_of(params, cl.session, state.servers[cl.server].adv)


def reply_level_of(params: Params, session: Session, adv: int) -> int:
    """`reply_level` for a session held by a server that advises level `adv`."""
    source = params.heartbeat.interval_from
    if source in ("client", "handshake"):
        return session.hs_level
    if params.design.reply_advice == "arrival":
        return session.ref_level
    return adv


def cutoff_text(value: Fraction) -> str:
    """A cutoff as people write it: ``72`` or ``161.6``."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6g}"


_EXPIRED: tuple = (None, {})  # the fleet `_expired` last answered for, and its answers


def _expired(params: Params, state: State, server: int, client: int, session: Session, path: str) -> Reaped | None:
    """The `Reaped` event if `path` on `server` would destroy this session.

    A function of the path, the server (its index and entry), the client's
    index and its session alone; every state a search expands asks it for
    every session on every server, so the answers are kept per fleet (one
    dict, replaced whole when the fleet changes).
    """
    global _EXPIRED
    memo = _EXPIRED
    if memo[0] is not params:
        memo = _EXPIRED = (params, {})
    key = (path, server, state.servers[server], client, session)
    try:
        return memo[1][key]
    except KeyError:
        event = memo[1][key] = _expired_now(params, state, server, client, session, path)
        return event


def _expired_now(params: Params, state: State, server: int, client: int, session: Session, path: str) -> Reaped | None:
    if not would_reap(params, state, server, session, path, client):
        return None
    level, source = judged_level(params, state, server, session, path, client)
    age = perceived_age(params, session, server)
    cutoff = params.cutoff(path, level, interval_level(params, state, server, level))
    return Reaped(client, server, path, age, params.levels[level].timeout, cutoff_text(cutoff), source)


def _up_servers(state: State) -> list[int]:
    return [s for s, srv in enumerate(state.servers) if srv.down == 0]


def is_valid(state: State, client: int) -> bool:
    """Has `client` done everything the protocol asked of it, on time?

    A held connect, a connect the client was told to send and is sending on
    schedule, and a retry the protocol ordered after its socket dropped are
    all valid; a crashed client or one whose own network is cut off is not.
    A client refused with 401 and waiting the advised interval before it
    re-handshakes (`REJOIN`) does as told too.
    The model's clients are never late: lateness is what crashes and cuts are.
    """
    return state.clients[client].phase in (HELD, WAITING, RETRY, REJOIN)

