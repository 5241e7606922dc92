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

* a re-handshake on an up server marks it ``hot`` (`rules_clients._handshake`), so
  its load may rise: see "Load", below;
* a crash of another client uses up the shared crash budget: see "Crashes";
* a cut-off of another client uses up the shared cut budget: the
  environment may use up one;
* their countdowns split time: where the fleet's clock jumps to the next
  deadline of *any* client, time here may stop at any instant before this
  client's, the servers', the tuner's and the rollout's next deadline: see
  "Time";
* their sessions make reaper sweeps happen; a sweep destroys this client's
  session only if it is expired anyway, which the one-client fleet's own
  sweep rule already lists (and a sweep that destroys nothing changes no
  state).

Everything else is the model's own rule table, applied to a one-client
fleet (`fleet.successors`): no rule is stated again here.

Three abstractions keep the one-client system small (`one_client`, `project`)
-------------------------------------------------------------------------------
Measured on the 3 x 3 fleet under ``per-session``, before them: seven in ten
states were of a crashed client, the ``hot`` flags and budgets multiplied the
rest by four, and nine in ten transitions were ticks of every length.

* Load. ``hot`` is read by one guard only, a rising load's
  (`rules_tuner._may_move`), and the environment could set it on any up server at
  any instant. The system drops the flags instead: its load moves freely
  (``load_trigger = "free"``), and `project` clears them. Every load step of
  a fleet is then a step here; the system may also raise a load no fleet
  would (on a lost server under a fleet-wide tuner, say): more behaviour,
  so a pass still covers every fleet, and its violations are only
  candidates anyway.
* Crashes. Every composable property judges valid clients only (a crashed
  client is not valid, `fleet.is_valid`), and no rule leaves ``crashed``: from
  a client's crash on, nothing can violate them for it. So the system has
  no crash (its crash budget is 0, which `project` reads off every fleet):
  it drops only runs on which nothing can go wrong. The shared crash budget
  is read by the crash guard alone, so other clients' crashes change nothing
  left to see. `tests/test_compose.py` checks the premise: over random runs
  of one client with crashes, no composable property is violated from its
  crash on.
* Time. A tick of ``d`` units that ends no later than the next deadline
  (`fleet.next_deadline`; any ``d`` when nothing counts down) reaches the same
  state as ``d`` ticks of one unit, and nothing falls due on the way:
  countdowns and ages add, and ages saturate at `Params.age_cap`. So the
  system ticks one unit at a time: the states a tick of any length reaches,
  with one tick successor each instead of one per length.

Losses of any length, searched first
------------------------------------
After those three, a lost server's countdown multiplies the rest most (its
60 values beside every record of the client). A coarser system forgets it
(``any_loss``): a lost server's ``down`` holds the loss's whole duration
(`project` with ``any_loss``), ticks do not run it down, and the
environment ends the loss at any instant (``END_LOSS``: the loss falls
due, and the model's ``restore`` fires). A loss of the stated length is one
of its runs (the environment ends it when the countdown would have), so a
pass there covers every fleet, for a loss of any length. Its violations
may need a loss of another length: where it finds one, the search starts
again on the system above, which keeps the countdown. Nothing else reads a
countdown's value, only whether a server is up, lost or due. The projection
test runs against both systems, and a seeded flaw (an environment that
never ends a loss) fails it. On the 3 x 3 fleet under ``per-session``: 5,392
states against 94,048.

Why a pass covers any number of clients
---------------------------------------
Every step of a fleet, seen from one of its clients that has not crashed
(the fleet with every other client removed, `project`), either changes
nothing that client sees or is a step of this system (`tests/test_compose.py` checks it over random runs
of every preset, stack and design, for fleets of 1 to 3 clients). So the
projection of every reachable fleet state onto any of its clients is
reachable here; ``no_valid_reap`` and ``parameter_agreement`` judge one
client at a time, so a state or step of a fleet that violates them has a
projection that violates them here (the test checks that too: a violating
fleet step is, seen from its client, a violating step here). A step seen
from a client that has crashed, or that crashes it, is not a step here, and
needs none: nothing after a crash violates these properties ("Crashes").
The converse is not true: the environment can do things no particular
fleet does (raise a server's load with no client to reconnect). So the
scenario's own fleet is searched first (the exhaustive engine): a violation there is reported with its run, and only
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

from stormcheck import count
from stormcheck.model.fleet import RULE, actions, canonical, initial_states, next_deadline, successors
from stormcheck.model.params import Bounds, Params
from stormcheck.model.state import Action, State, Step
from stormcheck.properties.core import ALWAYS, STATE, Property, Verdict

from .result import CheckResult, PropertyResult

__all__ = ["composable", "ENV", "UNIT_TICK", "project", "one_client", "env_successors", "env_step", "unsupported",
           "check_compositional"]

# The environment's moves: not a rule of the model, so not a kind of `fleet.RULES`.
ENV = "env"
USE_CUT, END_LOSS = 0, 1  # its moves: another client's cut-off uses up the shared budget; a loss ends
# The one-client system's only tick (module docstring, "Time").
UNIT_TICK = Action("tick", value=1)


def composable(prop: Property) -> bool:
    """An ``always`` property judged one client at a time (`Property.local`): its verdict on a fleet is the
    conjunction of its verdicts on each client's view, so one client against the environment decides it."""
    return prop.modality == ALWAYS and prop.local


def project(state: State, client: int, lost_for: int = 0) -> State:
    """What client `client` of `state` sees, as the one-client system states it: its own record, the servers,
    timers and the cut and loss budgets (no ``hot`` flag, no crash budget: module docstring, "Load", "Crashes").

    A state of that system unless `client` has crashed. `lost_for`: as the
    coarser system states it (module docstring, "Losses of any length"),
    every lost server's countdown at this duration (0: as it stands).
    """
    servers = state.servers
    if any(srv.hot for srv in servers):
        servers = tuple(srv._replace(hot=False) for srv in servers)
    if lost_for:
        servers = _lost_for(servers, lost_for)
    return state._replace(clients=(state.clients[client],), servers=servers, crashes_left=0)


def _lost_for(servers: tuple, duration: int) -> tuple:
    """`servers` with every running loss countdown at `duration`."""
    if any(srv.down > 0 and srv.down != duration for srv in servers):
        return tuple(srv._replace(down=duration) if srv.down > 0 else srv for srv in servers)
    return servers


def one_client(params: Params) -> Params:
    """The fleet with one client that never crashes and whose servers' load moves freely: the system the
    environment's moves are added to (module docstring, "Three abstractions")."""
    trigger = "free" if params.load_moves else params.load_trigger
    return dataclasses.replace(params, clients=1, load_trigger=trigger,
                               faults=dataclasses.replace(params.faults, client_crash=0))


def unsupported(params: Params) -> str | None:
    """Why this mode cannot answer for `params` (None: it can)."""
    if params.rollout is not None:
        # Not every rollout has a client release; every one has phases that end on a fact about the whole fleet.
        return ("a configuration rollout ([rollout]): each phase ends once every server or every client has "
                "moved, a fact about the whole fleet that one client against an environment does not cover")
    return None


def env_successors(params: Params, state: State, any_loss: bool = False):
    """Every step of the one-client system from `state`: the model's, with time split and the environment's moves.

    `params` is the one-client fleet (`one_client`). Ticks: the model lists
    one only when nothing is due, to the next deadline; here one unit (another
    client's deadline may come first; module docstring, "Time"). `any_loss`:
    the coarser system, whose losses end when the environment says
    (module docstring, "Losses of any length").
    """
    listed = [UNIT_TICK if a.kind == "tick" else a for a in actions(params, state)]
    if not any_loss:
        yield from successors(params, state, listed)
    else:
        duration = params.faults.loss_duration
        for action, st in successors(params, state, listed):
            yield action, st._replace(state=st.state._replace(servers=_lost_for(st.state.servers, duration)))
        for s, srv in enumerate(state.servers):
            if srv.down > 0:
                servers = state.servers[:s] + (srv._replace(down=-1),) + state.servers[s + 1:]
                yield Action(ENV, server=s, value=END_LOSS), Step(state._replace(servers=servers), ())
    if state.cuts_left > 0:
        yield Action(ENV, value=USE_CUT), Step(state._replace(cuts_left=state.cuts_left - 1), ())


def env_step(params: Params, state: State, target: State, any_loss: bool = False) -> Action | None:
    """The step of the one-client system from `state` to `target`, if there is one (None: there is none).

    The same steps as `env_successors`, and a ``tick`` of ``d`` units where
    ``d`` unit ticks lead there (module docstring, "Time"): its length is read
    off a countdown or an age that moved, then checked by applying it. With
    `any_loss`, such ticks may end with the environment ending a loss (a
    fleet's loss that ran out during the tick).
    """
    duration = params.faults.loss_duration if any_loss else 0
    ticks = False
    for action, st in successors(params, state):
        if action.kind == "tick":
            ticks = True
        elif (st.state._replace(servers=_lost_for(st.state.servers, duration)) if any_loss else st.state) == target:
            return action
    if ticks:
        # The next deadline bounds a tick (None: none does), but not a loss the coarser system forgot
        # (counted here as up: `_lost_for` 0).
        longest = next_deadline(state._replace(servers=_lost_for(state.servers, 0)) if any_loss else state)
        for d in sorted(_elapsed(state, target)):
            if d >= 1 and (longest is None or d <= longest):
                tick = Action("tick", value=d)
                after = RULE["tick"].apply(params, state, tick).state
                if any_loss:
                    after = after._replace(servers=tuple(
                        srv._replace(down=-1 if new.down == -1 else duration) if srv.down else srv
                        for srv, new in zip(after.servers, target.servers)))
                if after == target:
                    return tick
    for action, st in env_successors(params, state, any_loss):
        if action.kind == ENV and st.state == target:
            return action
    return None


def _elapsed(state: State, target: State) -> set[int]:
    """The time that passed from `state` to `target` if a tick led there, read off every countdown and age
    the two share: a countdown that fell by ``d`` or ran out (-1, due), an age that rose by ``d``."""
    deltas = set()
    for a, b in zip(state.clients, target.clients):
        deltas.add(a.timer - b.timer)
        if a.session and b.session:
            deltas.add(b.session.age - a.session.age)  # ages count up
    countdowns = [(a.down, b.down) for a, b in zip(state.servers, target.servers)]
    countdowns += [(state.tuner_timer, target.tuner_timer), (state.rollout, target.rollout)]
    deltas.update(before if after == -1 else before - after for before, after in countdowns)
    return deltas


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

    `concrete(properties, max_states, progress)` searches the scenario's own
    fleet (the engine passes the exhaustive engine; ``max_states`` None: the
    scenario's budget; `progress` as the exhaustive engine's). Every search
    reports to `progress`, naming its phase, on the whole run's clock. A first look of `FIRST_LOOK` states goes first: a violation there
    is certain and short, and a witness can only come from a concrete fleet.
    What it does not find violated, the compositional search covers for any
    number of clients (with losses of any length first, then, if that finds
    a violation, as stated). The whole concrete search runs only for what is
    still open: a witness not yet found, a property that does not compose, and a
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
        concrete = lambda props, max_states=None, progress=None: _no_fleet(props)  # noqa: E731
    fleet = f"the scenario's own fleet of {count(params.clients, 'client')}"
    report = _Progress(progress, t0)
    first = concrete(properties, FIRST_LOOK, progress=report.phase("first look at the own fleet"))
    answered = {p.name: first.get(p.name) for p in properties
                if first.get(p.name).verdict is Verdict.VIOLATED
                or (not composable(p) and first.get(p.name).verdict is not Verdict.INCONCLUSIVE)}
    general = [p for p in properties if composable(p) and p.name not in answered]
    stats: dict = {**first.stats, "first_look": dict(first.stats)}
    found: dict[str, int] = {}
    if general:
        system, started = one_client(params), time.perf_counter()
        any_loss = system.faults.server_loss > 0
        found, search = _search(system, tuple(general), budget,
                                report.phase("one client, any number of others" + (", losses of any length"
                                                                                    if any_loss else "")), any_loss)
        if any_loss and found:
            # Perhaps only a loss of another length than the stated one reaches them: the system that keeps
            # the countdown decides, in what is left of the time budget (module docstring).
            stats["any_loss"] = dict(search, found=dict(found))
            left = max(budget.max_seconds - (time.perf_counter() - started), 0)
            found, search = _search(system, tuple(general), dataclasses.replace(budget, max_seconds=left),
                                    report.phase("one client, any number of others"))
        stats.update(search, states_per_second=None)
    results: dict[str, PropertyResult] = {}
    for prop in general:
        if prop.name in found:
            continue
        if search["complete"]:
            lengths = ", a server's loss of any length" if search["losses"] == "any length" else ""
            basis = (f"compositional search complete: {search['states']:,} states of one client against any "
                     f"number of others{lengths} ({search['transitions']:,} transitions): holds for any number of "
                     "clients")
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
    whole = concrete(still, progress=report.phase("the own fleet")) if still else None
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


class _Progress:
    """The run's progress, over its searches: each phase's counts, on the run's clock, about once a second.

    A run of several searches, each under a second, still takes longer than
    one: the caller hears from it once the run (not a search) has taken a
    second, as from the exhaustive engine, and learns which search is on.
    """

    def __init__(self, progress: Callable[[dict], None] | None, t0: float) -> None:
        self.progress, self.t0, self.last = progress, t0, t0

    def phase(self, name: str) -> _Phase | None:
        """What a search of this phase reports to (None: nobody listens)."""
        return None if self.progress is None else _Phase(self, name)

    def due(self, now: float) -> bool:
        return now - self.last >= 1.0


class _Phase:
    """One search's progress callback: its counts, said with the phase's name and the run's seconds."""

    def __init__(self, run: _Progress, name: str) -> None:
        self.run, self.name, self.started = run, name, time.perf_counter()
        self.due = run.due

    def __call__(self, info: dict) -> None:
        now = time.perf_counter()
        self.run.last = now
        rate = info["states"] / (now - self.started) if now > self.started else 0
        self.run.progress({**info, "seconds": now - self.run.t0, "phase": self.name, "rate": rate})


def _no_fleet(properties) -> CheckResult:
    return CheckResult("exhaustive", "", "", tuple(
        PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, "no concrete fleet was searched")
        for p in properties), {"states": 0, "transitions": 0})


def _search(params: Params, properties: tuple[Property, ...], budget: Bounds, progress,
            any_loss: bool = False) -> tuple[dict, dict]:
    """Breadth-first over the one-client system (`any_loss`: the coarser one); the depth of each property's
    first violation, and stats."""
    by_state = [p for p in properties if p.over == STATE]
    by_step = [p for p in properties if p.over != STATE]
    roots = list(dict.fromkeys(canonical(params, s) for s in initial_states(params)))
    seen = set(roots)
    queue = deque((r, 0) for r in roots)
    found: dict[str, int] = {}
    transitions, start = 0, time.perf_counter()
    stopped = ""
    while queue:
        state, depth = queue.popleft()
        for prop in by_state:
            if prop.name not in found and prop.interesting(params, state):
                found[prop.name] = depth
        for action, st in env_successors(params, state, any_loss):
            transitions += 1
            if action.kind != ENV:
                for prop in by_step:
                    if prop.name not in found and prop.interesting(params, state, action, st):
                        found[prop.name] = depth + 1
            nxt = canonical(params, st.state)
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, depth + 1))
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
        if progress is not None and progress.due(now):  # on the whole run's clock: `_Progress`
            progress({"states": len(seen), "transitions": transitions, "depth": depth, "seconds": now - start,
                      "queued": len(queue)})
    complete = not queue and not stopped
    return found, {"states": len(seen), "transitions": transitions, "complete": complete,
                   "stopped": stopped or "complete", "clients": "any number",
                   "losses": "any length" if any_loss else "as stated"}
