"""A configuration rollout, rule by rule (guard beside effect): the operator launching a phase, servers
restarted or reconfigured batch by batch, a client release, and where the rollout stands
(`current_phase`, `client_level`), which the connect loop reads too.
"""

from __future__ import annotations

from .events import Began, Dropped, Reconfigured, Restarted, Upgraded
from .params import Params
from .rollout import DUE, NOT_BEGUN, RUNNING, Phase
from .rules_common import _replace_client, _replace_server
from .rules_faults import _drop_sockets
from .state import CRASHED, HELD, RETRY, WAITING, Action, Client, Server, State, Step

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
