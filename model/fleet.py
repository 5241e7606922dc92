"""The reconnect / connect-loop / reaper protocol of a Bayeux fleet, as one pure function.

Design rules
------------
1. Everything that decides a transition lives in the rule modules this one
   gathers, or in `model.judgement` (who judges a session, by what cutoff,
   and who is valid: what the properties and the other engines read too),
   and reads as the protocol of ``docs/protocol.md``: one rule per action
   kind, its guard (``_when_KIND``: the actions of that kind enabled in a
   state) beside its effect (``_KIND``), and here `RULES`, the table of them
   all (who acts, whether it is urgent, guard, effect). `ACTIONS`, the
   dispatch, the listing order and the engines' lists of kinds derive from
   the table. The rule modules follow the protocol's parts:
   `model.rules_clients` (the connect loop), `model.rules_reapers`,
   `model.rules_tuner`, `model.rules_faults` (faults and time) and
   `model.rules_rollout`, with `model.rules_common`'s helpers;
   `model.fleet_states` holds the initial states and the canonical form.
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
`stormcheck.model.heartbeat.Heartbeat`; its defaults are Faye's and leave every
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
subscriber's message queue instead of destroying it
(`rules_reapers._publish`), a dropped client retries on its old id with its
session kept (`rules_faults._drop_sockets`), and a client refused with 401
waits the advised interval in `REJOIN` before it re-handshakes
(`rules_clients._refused`).

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

# The rule modules, one per part of the protocol; this module gathers their
# guards and effects into the table.
from .fleet_states import canonical, initial_states
from .judgement import (  # noqa: F401 (re-exported: `model.judgement` is where they are stated)
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
from .rollout import DUE
from .rules_clients import _arrive, _reconnect, _reply, _when_arrive, _when_reconnect, _when_reply
from .rules_common import STALE, new_session  # noqa: F401 (re-exported)
from .rules_faults import (  # noqa: F401 (next_deadline re-exported)
    _crash,
    _cut,
    _lose,
    _restore,
    _tick,
    _when_crash,
    _when_cut,
    _when_lose,
    _when_restore,
    _when_tick,
    next_deadline,
)
from .rules_reapers import (  # noqa: F401 (the publish race's values and expired_judges re-exported)
    DELETE_FIRST,
    FLUSH_FIRST,
    _expire,
    _gc,
    _publish,
    _when_expire,
    _when_gc,
    _when_publish,
    expired_judges,
)
from .rules_rollout import (  # noqa: F401 (where a rollout stands re-exported)
    _launch,
    _reconfigure,
    _restart,
    _settle,
    _upgrade,
    _when_launch,
    _when_reconfigure,
    _when_restart,
    _when_upgrade,
    client_level,
    current_phase,
)
from .rules_tuner import (
    _adopt,
    _deadline,
    _load,
    _when_adopt,
    _when_adopt_advice,
    _when_adopt_reaper,
    _when_deadline,
    _when_load,
)
from .state import Action, State, Step

__all__ = [
    "ACTIONS",
    "STALE",
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


class ProtocolError(ValueError):
    """An action that the protocol does not allow in this state."""


# ---------------------------------------------------------------- the rules
# Each rule is a guard, `_when_KIND(params, state)`: the actions of that kind
# enabled in `state`, and beside it an effect, `_KIND(params, state, action)`:
# the step it makes. They live in the modules of the protocol's parts, in
# the order a reader meets it: the client's connect loop (`rules_clients`),
# the reapers, the tuner, faults and time, rollouts. `RULES` below is the
# table; `ACTIONS`, `actions`, the dispatch and the engines' lists of kinds
# are derived from it.


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
