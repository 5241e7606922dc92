"""The adaptive tuner, rule by rule (guard beside effect): the load input moving, and a fleet-wide change
adopted server by server, at once or staged, or at its propagation deadline.
"""

from __future__ import annotations

from .events import Adjusted
from .params import Params
from .rules_common import _level, _replace_server
from .state import Action, State, Step


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
