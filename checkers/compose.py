"""The compositional exhaustive mode: one client against every fleet it could be part of.

The exhaustive engine (`checkers.bfs`) searches a fleet of a fixed number of
clients, and its state space grows with that number. This mode searches one
client against an *environment* that can do, at any moment, whatever any
number of other clients could do to what this client sees. A property that
holds for that system holds for every fleet of any size; a violation found
there is only a candidate, and is reported only once a concrete fleet
reproduces it.

What other clients can do to one client
---------------------------------------
A client sees the servers, the fleet tuner's countdown, the rollout's state,
the shared fault budgets and its own record. Other clients reach it only
through these (the same argument as the symbolic engine's ``env=True``,
`checkers.z3_encoding`, "Two modes"):

* a re-handshake on an up server marks it ``hot`` (`fleet._handshake`), so
  its load may rise: the environment may mark any up server hot;
* a crash or a cut-off of another client uses up the shared budget: the
  environment may use up one;
* their countdowns split time: where the fleet's clock jumps to the next
  deadline of *any* client, a tick here may be any length from one unit up
  to this client's, the servers', the tuner's and the rollout's next
  deadline;
* their sessions make reaper sweeps happen; a sweep destroys this client's
  session only if it is expired anyway, which the one-client fleet's own
  sweep rule already lists (and a sweep that destroys nothing changes no
  state).

Everything else is the model's own rule table, applied to a one-client
fleet (`fleet.successors`): no rule is stated again here.

Why a pass covers any number of clients
---------------------------------------
Every step of a fleet, seen from one of its clients (the fleet with every
other client removed, `project`), either changes nothing that client sees or
is a step of this system (`tests/test_compose.py` checks it over random runs
of every preset, stack and design, for fleets of 1 to 3 clients). So the
projection of every reachable fleet state onto any of its clients is
reachable here; ``no_valid_reap`` and ``parameter_agreement`` judge one
client at a time, so a state or step of a fleet that violates them has a
projection that violates them here (the test checks that too: a violating
fleet step is, seen from its client, a violating step here). The converse is not true: the
environment can do things no particular fleet does (mark a server hot with
no client to reconnect). So the scenario's own fleet is searched first (the
exhaustive engine): a violation there is reported with its run, and only
what it does not find violated is generalised. A violation that only the
compositional search reaches is inconclusive (a larger fleet may show it),
never "violated".

What it answers
---------------
``always`` properties whose check reads one client at a time
(`composable`: ``no_valid_reap``, ``parameter_agreement``, ``no_message_loss``),
for any number of clients. A ``sometimes`` property asks for
a witness, which only a concrete fleet gives: it is answered in the
scenario's own fleet, and its basis says so.
Rollouts are refused by name:
their release reaches clients one by one, which the projection argument
above does not cover (`unsupported`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Callable

from stormcheck.model.fleet import RULE, canonical, initial_states, successors
from stormcheck.model.params import Bounds, Params
from stormcheck.model.state import CRASHED, Action, State, Step
from stormcheck.properties.core import ALWAYS, STATE, Property, Verdict

from .result import CheckResult, PropertyResult

__all__ = ["composable", "ENV", "project", "one_client", "env_successors", "env_step", "unsupported",
           "check_compositional"]

# The environment's moves: not a rule of the model, so not a kind of `fleet.RULES`.
ENV = "env"
MARK_HOT, USE_CRASH, USE_CUT = 0, 1, 2

def composable(prop: Property) -> bool:
    """An ``always`` property judged one client at a time (`Property.local`): its verdict on a fleet is the
    conjunction of its verdicts on each client's view, so one client against the environment decides it."""
    return prop.modality == ALWAYS and prop.local


def project(state: State, client: int) -> State:
    """What client `client` of `state` sees: its own record, the servers, timers and budgets."""
    return state._replace(clients=(state.clients[client],))


def one_client(params: Params) -> Params:
    """The fleet with one client: the system the environment's moves are added to."""
    return dataclasses.replace(params, clients=1)


def unsupported(params: Params) -> str | None:
    """Why this mode cannot answer for `params` (None: it can)."""
    if params.rollout is not None:
        return ("a configuration rollout ([rollout]): its release reaches clients one at a time, which one client "
                "against an environment does not cover")
    return None


def env_successors(params: Params, state: State):
    """Every step of the one-client system from `state`: the model's, with time split and the environment's moves.

    `params` is the one-client fleet (`one_client`). Ticks: the model lists
    one only when nothing is due, to the next deadline; here any length up to
    it (another client's deadline may come first).
    """
    for action, st in successors(params, state):
        if action.kind != "tick":
            yield action, st
            continue
        for d in range(1, _longest(params, state, action.value) + 1):
            shorter = Action("tick", value=d)
            yield shorter, RULE["tick"].apply(params, state, shorter)
    yield from _moves(params, state)


def _moves(params: Params, state: State):
    """The environment's own moves from `state`: a server marked hot, a fault budget used up."""
    if params.load_trigger == "reconnects" and params.load_moves:
        for s, srv in enumerate(state.servers):
            if srv.down == 0 and not srv.hot:
                servers = state.servers[:s] + (srv._replace(hot=True),) + state.servers[s + 1:]
                yield Action(ENV, server=s, value=MARK_HOT), Step(state._replace(servers=servers), ())
    if state.crashes_left > 0:
        yield Action(ENV, value=USE_CRASH), Step(state._replace(crashes_left=state.crashes_left - 1), ())
    if state.cuts_left > 0:
        yield Action(ENV, value=USE_CUT), Step(state._replace(cuts_left=state.cuts_left - 1), ())


def env_step(params: Params, state: State, target: State) -> Action | None:
    """The step of the one-client system from `state` to `target`, if there is one (None: there is none).

    The same steps as `env_successors`, without listing every tick length:
    a tick's length is read off a countdown or an age that moved, then
    checked by applying it.
    """
    longest = 0
    for action, st in successors(params, state):
        if action.kind == "tick":
            longest = _longest(params, state, action.value)
        elif st.state == target:
            return action
    if longest:
        deltas = {a - b for a, b in _clocks(state, target)} | {a for a, b in _clocks(state, target) if b == -1}
        for d in sorted(x for x in deltas if 1 <= x <= longest):
            tick = Action("tick", value=d)
            if RULE["tick"].apply(params, state, tick).state == target:
                return tick
    for action, st in _moves(params, state):
        if st.state == target:
            return action
    return None


def _longest(params: Params, state: State, listed: int) -> int:
    """The longest tick from `state`: the model's next deadline, or, with no countdown running, any length.

    With nothing scheduled the model lets time pass by its longest hold; in a
    fleet another client's deadline may be further off than that. Past
    `Params.age_cap` every age is saturated, so a longer tick reaches no new state.
    """
    running = (any(cl.timer > 0 for cl in state.clients if cl.phase != CRASHED)
               or any(srv.down > 0 for srv in state.servers) or state.tuner_timer > 0 or state.rollout > 0)
    return listed if running else max(listed, params.age_cap)


def _clocks(state: State, target: State):
    """(before, after) of every countdown and age the two states share."""
    for a, b in zip(state.clients, target.clients):
        yield a.timer, b.timer
        if a.session and b.session:
            yield b.session.age, a.session.age  # ages count up: the pair is reversed
    for a, b in zip(state.servers, target.servers):
        yield a.down, b.down
    yield state.tuner_timer, target.tuner_timer
    yield state.rollout, target.rollout


# States of the scenario's own fleet searched before generalising: enough for
# every preset's shortest violation (the 2015 one needs 258), a fraction of a
# large fleet's whole space. A state budget, not a time one, so that what this
# first look finds does not depend on the machine.
FIRST_LOOK = 20_000


def check_compositional(
    params: Params,
    properties: tuple[Property, ...],
    *,
    scenario: str = "",
    budget: Bounds = Bounds(),
    progress: Callable[[dict], None] | None = None,
    concrete: Callable[..., CheckResult] | None = None,
) -> CheckResult:
    """Check `properties`; each `composable` one for any number of clients.

    `concrete(properties, max_states)` searches the scenario's own fleet (the
    engine passes the exhaustive engine; ``max_states`` None: the scenario's
    budget). A first look of `FIRST_LOOK` states goes first: a violation there
    is certain and short, and a witness can only come from a concrete fleet.
    What it does not find violated, the compositional search covers for any
    number of clients. The whole concrete search runs only for what is still
    open: a witness not yet found, a property that does not compose, and a
    violation only the compositional search reached, which is reported only
    if the fleet reproduces it (module docstring).
    """
    t0 = time.perf_counter()
    why = unsupported(params)
    if why is not None:
        refused = tuple(PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, f"not covered: {why}")
                        for p in properties)
        return CheckResult("compositional", scenario, params.design.name, refused,
                           {"states": 0, "transitions": 0, "seconds": round(time.perf_counter() - t0, 3)})
    if concrete is None:
        concrete = lambda props, max_states=None: _no_fleet(props)  # noqa: E731
    fleet = f"the scenario's own fleet of {params.clients} client{'s' if params.clients != 1 else ''}"
    first = concrete(properties, FIRST_LOOK)
    answered = {p.name: first.get(p.name) for p in properties
                if first.get(p.name).verdict is Verdict.VIOLATED
                or (not composable(p) and first.get(p.name).verdict is not Verdict.INCONCLUSIVE)}
    general = [p for p in properties if composable(p) and p.name not in answered]
    stats: dict = {**first.stats, "first_look": dict(first.stats)}
    found: dict[str, int] = {}
    if general:
        found, search = _search(one_client(params), tuple(general), budget, progress)
        stats.update(search, states_per_second=None)
    results: dict[str, PropertyResult] = {}
    for prop in general:
        if prop.name in found:
            continue
        if search["complete"]:
            basis = (f"compositional search complete: {search['states']:,} states of one client against any "
                     f"number of others ({search['transitions']:,} transitions): holds for any number of clients")
            results[prop.name] = PropertyResult(prop.name, prop.modality, Verdict.HOLDS, basis)
        elif first.stats.get("complete") and first.get(prop.name).verdict is Verdict.HOLDS:
            # Not for any number of clients, but for the fleet the scenario states, whose whole space the
            # first look covered: the exhaustive engine's verdict, no weaker.
            results[prop.name] = PropertyResult(
                prop.name, prop.modality, Verdict.HOLDS,
                f"complete search of {fleet} ({first.stats['states']:,} states); for any number of clients not "
                f"decided: compositional search stopped ({search['stopped']}) after {search['states']:,} states")
        else:
            results[prop.name] = PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE,
                                                f"compositional search stopped ({search['stopped']}) after "
                                                f"{search['states']:,} states")
    still = tuple(p for p in properties if p.name not in answered and p.name not in results)
    whole = concrete(still) if still else None
    if whole is not None:
        stats["concrete"] = dict(whole.stats)
    for prop in properties:
        got = answered.get(prop.name) or (whole.get(prop.name) if whole is not None and prop in still else None)
        if prop.name in results:
            continue
        if prop.name in found and got.verdict is not Verdict.VIOLATED:
            results[prop.name] = PropertyResult(
                prop.name, prop.modality, Verdict.INCONCLUSIVE,
                f"one client against any number of others reaches a violation at depth {found[prop.name]}, which "
                f"{fleet} does not ({got.basis}); a larger fleet may: check it with more clients")
        else:
            results[prop.name] = dataclasses.replace(got, basis=f"{got.basis} (in {fleet})")
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    ordered = tuple(results[p.name] for p in properties)
    return CheckResult("compositional", scenario, params.design.name, ordered, stats)


def _no_fleet(properties) -> CheckResult:
    return CheckResult("exhaustive", "", "", tuple(
        PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, "no concrete fleet was searched")
        for p in properties), {"states": 0, "transitions": 0})


def _search(params: Params, properties: tuple[Property, ...], budget: Bounds, progress) -> tuple[dict, dict]:
    """Breadth-first over the one-client system; the depth of each property's first violation, and stats."""
    by_state = [p for p in properties if p.over == STATE]
    by_step = [p for p in properties if p.over != STATE]
    roots = list(dict.fromkeys(canonical(params, s) for s in initial_states(params)))
    seen = set(roots)
    queue = deque((r, 0) for r in roots)
    found: dict[str, int] = {}
    transitions, start, last = 0, time.perf_counter(), time.perf_counter()
    stopped = ""
    while queue:
        state, depth = queue.popleft()
        for prop in by_state:
            if prop.name not in found and prop.interesting(params, state):
                found[prop.name] = depth
        for action, st in env_successors(params, state):
            transitions += 1
            # A tick may be split a million ways (a long countdown in milliseconds):
            # the time budget holds inside one expansion too.
            if not transitions % 4096 and time.perf_counter() - start >= budget.max_seconds:
                stopped = f"time budget of {budget.max_seconds:g} s spent"
                break
            if action.kind != ENV:
                for prop in by_step:
                    if prop.name not in found and prop.interesting(params, state, action, st):
                        found[prop.name] = depth + 1
            nxt = canonical(params, st.state)
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, depth + 1))
        if stopped:
            break
        if len(found) == len(properties):
            stopped = "every property decided"
            break
        now = time.perf_counter()
        if len(seen) >= budget.max_states:
            stopped = f"state budget of {budget.max_states:,} spent"
            break
        if now - start >= budget.max_seconds:
            stopped = f"time budget of {budget.max_seconds:g} s spent"
            break
        if progress is not None and now - last >= 1.0:
            last = now
            progress({"states": len(seen), "transitions": transitions, "depth": depth, "seconds": now - start,
                      "queued": len(queue)})
    complete = not queue and not stopped
    return found, {"states": len(seen), "transitions": transitions, "complete": complete,
                   "stopped": stopped or "complete", "clients": "any number"}
