"""A run through the model, as data: an initial state and the steps taken.

Every engine reports counterexamples and witnesses as a `Run`; the ITF
writer, the timeline and the replayer read nothing else. A run knows no
absolute time either: `Run.times` recomputes the clock from its ``tick``
actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from stormcheck.model.events import QueueDropped, Reaped, Refreshed
from stormcheck.model.fleet import ProtocolError, canonical, step
from stormcheck.model.params import Params
from stormcheck.model.state import Action, State, Step

__all__ = ["Run", "ReplayError", "replay", "concretize", "session_ages", "true_age"]


@dataclass(frozen=True)
class Run:
    """An initial state and the (action, step) pairs that follow it.

    ``loop``, when set, makes the run a lasso: the last state equals the
    state at index ``loop``, and the steps from there to the end repeat
    forever.
    """

    initial: State
    steps: tuple[tuple[Action, Step], ...]
    loop: int | None = None

    @property
    def states(self) -> list[State]:
        return [self.initial] + [st.state for _, st in self.steps]

    @property
    def actions(self) -> list[Action]:
        return [a for a, _ in self.steps]

    def times(self) -> list[int]:
        """The clock (time units since the run began, `Params.unit`) at each state."""
        now, out = 0, [0]
        for action, _ in self.steps:
            if action.kind == "tick":
                now += action.value
            out.append(now)
        return out

    def __len__(self) -> int:
        return len(self.steps)


def session_ages(run: Run, cap: int) -> list[tuple[int | None, ...]]:
    """Each client's true session age at each state of `run` (None: no session).

    The model folds every age past `cap` (`Params.age_cap`) into the cap, which
    changes no verdict but is not the age a reader should see: a session
    refreshed at t=0 and reaped at t=12 is 12 s old, whatever the cap. Ages
    grow only on ``tick`` steps and a refresh resets them to 0, so a
    saturated age is the previous true age plus the tick. A run whose initial
    state already holds a saturated age (no trace written by the engines does)
    gives that age as the cap, a lower bound: a negative value marks it,
    ``-age`` meaning "at least age".
    """
    def first(session) -> int | None:
        if not session:
            return None
        return -session.age if session.age >= cap else session.age

    ages = [tuple(first(cl.session) for cl in run.initial.clients)]
    for (action, st) in run.steps:
        prev, now = ages[-1], []
        for c, cl in enumerate(st.state.clients):
            if not cl.session:
                now.append(None)
            elif cl.session.age < cap or prev[c] is None:
                now.append(first(cl.session))
            elif action.kind == "tick":
                now.append(prev[c] + action.value if prev[c] >= 0 else prev[c] - action.value)
            else:
                now.append(prev[c])
        ages.append(tuple(now))
    return ages


def true_age(pre: State, ages: tuple, ev):
    """`ev` with the session's true age in place of the saturated one, and whether that age is exact.

    `pre` is the state before the step that made `ev`, `ages` the clients'
    true ages in it (`session_ages`). An event's age is the saturated age as
    its server sees it (offsets included), so the saturation is added back.
    Events without an age are returned as they are.
    """
    if not isinstance(ev, (Reaped, QueueDropped, Refreshed)):
        return ev, True
    cl, real = pre.clients[ev.client], ages[ev.client]
    if not cl.session or real is None:
        return ev, True
    return ev._replace(age=ev.age + abs(real) - cl.session.age), real >= 0


class ReplayError(ValueError):
    """A run no longer replays against the current model."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"step {index}: {message}")
        self.index = index


def replay(params: Params, initial: State, actions: list[Action], expected: list[State] | None = None) -> Run:
    """Re-apply `actions` from `initial` with the model's own `step`.

    Each action must be enabled where it is applied, and when `expected`
    states are given (as stored in a trace) each recomputed state must equal
    the stored one. The first step that fails raises `ReplayError` naming it.
    """
    if expected is not None and expected and expected[0] != initial:
        raise ReplayError(0, "the initial state differs from the stored one")
    state, steps = initial, []
    for i, action in enumerate(actions, start=1):
        try:
            st = step(params, state, action)
        except ProtocolError as err:
            raise ReplayError(i, str(err)) from None
        if expected is not None and i < len(expected) and st.state != expected[i]:
            raise ReplayError(i, f"{action} leads to\n  {st.state}\nbut the trace stores\n  {expected[i]}")
        steps.append((action, st))
        state = st.state
    return Run(initial, tuple(steps))


def concretize(params: Params, initial: State, canonical_path: list[State], last=None, accept=None) -> Run:
    """Turn a path through the symmetry-reduced graph into a concrete run.

    The exhaustive checker stores one representative per class of states
    that differ only by which client is which. Starting from a concrete
    `initial`, each step picks the first enabled action whose successor is in
    the next class; `last`, if given, must also accept the final step (the
    property's counterexample or witness, not merely some equivalent step);
    `accept(i, state, action, step)`, if given, must accept every step i
    (1-based), for a path whose steps must be of a kind (a lasso's cycle).
    """
    from stormcheck.model.fleet import successors

    state, steps = initial, []
    for i, target in enumerate(canonical_path, start=1):
        final = i == len(canonical_path)
        for action, st in successors(params, state):
            if canonical(params, st.state) != target:
                continue
            if final and last is not None and not last(state, action, st):
                continue
            if accept is not None and not accept(i, state, action, st):
                continue
            steps.append((action, st))
            state = st.state
            break
        else:
            raise ReplayError(i, "no action reaches the next state of the reduced path")
    return Run(initial, tuple(steps))
