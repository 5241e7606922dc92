"""What a property is, and what a verdict is.

A property is a named plain predicate with a modality:

* ``always`` over states: the predicate holds in every reachable state;
* ``always`` over steps: it holds for every transition (pre-state, action,
  step with its events) — needed where the thing forbidden is an *act*, such
  as destroying a session;
* ``sometimes``: some reachable state or step satisfies it. These exist so
  that a vacuous model fails: a model in which nothing is ever reaped would
  make every safety property hold and prove nothing.
* ``eventually-always`` over steps: every infinite run that avoids the
  property's ``exclude`` steps from some point on eventually takes only good
  steps. Violated by a lasso: a reachable cycle of non-excluded steps with a
  bad one in it. For `storm_subsides`, the bad steps are reconnects and the
  excluded ones are faults: a storm that outlives its trigger.

Verdicts have three values and are never optimistic: a search that did not
finish can say ``violated`` (with a trace) or ``inconclusive``, never
``holds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

__all__ = ["Property", "Verdict", "Inconclusive", "NotEncoded", "ALWAYS", "SOMETIMES", "EVENTUALLY_ALWAYS", "STATE", "STEP"]

ALWAYS = "always"
SOMETIMES = "sometimes"
EVENTUALLY_ALWAYS = "eventually-always"
STATE = "state"
STEP = "step"


class Inconclusive(Exception):
    """An engine could not decide: not the user's mistake, and never "holds".

    Deliberately not a `ValueError`: the command line reports bad input
    (exit 2) for those, and this is an inconclusive outcome (exit 3).
    """


class NotEncoded(Inconclusive):
    """An engine refuses, before it starts, a rule or feature it does not cover.

    ``engine`` names the engine ("symbolic engine"), ``feature`` what it does not cover, as the
    scenario states it; the message says which engine to use instead.
    """

    def __init__(self, engine: str, feature: str, instead: str = "") -> None:
        self.engine, self.feature = engine, feature
        super().__init__(f"not encoded: {feature} (not covered by the {engine}" + (f"; {instead})" if instead else ")"))


class Verdict(str, Enum):
    """The outcome of checking one property."""

    HOLDS = "holds"
    VIOLATED = "violated"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Property:
    """A named predicate over states or steps, with a modality.

    Attributes
    ----------
    name : str
        The name users and manifests refer to.
    modality : str
        ``always``, ``sometimes`` or ``eventually-always`` (over steps only).
    over : str
        ``state``: ``check(params, state)``; ``step``:
        ``check(params, pre_state, action, step)``.
    check : callable
        Returns True when the state/step is good (always) or is a witness
        (sometimes).
    description : str
        One sentence a reviewer reads in the report.
    exclude : callable, optional
        ``eventually-always`` only: ``exclude(params, pre_state, action,
        step)`` is True for steps a violating cycle may not take (for a storm:
        the faults, so that the cycle is one that outlives them).
    """

    name: str
    modality: str
    over: str
    check: Callable
    description: str
    exclude: Callable | None = None
    local: bool = False

    def __post_init__(self) -> None:
        if self.modality not in (ALWAYS, SOMETIMES, EVENTUALLY_ALWAYS):
            raise ValueError(
                f"property {self.name!r}: modality must be 'always', 'sometimes' or 'eventually-always', "
                f"not {self.modality!r}"
            )
        if self.over not in (STATE, STEP):
            raise ValueError(f"property {self.name!r}: 'over' must be 'state' or 'step', not {self.over!r}")
        if (self.modality == EVENTUALLY_ALWAYS) != (self.exclude is not None) or (
            self.modality == EVENTUALLY_ALWAYS and self.over != STEP
        ):
            raise ValueError(
                f"property {self.name!r}: an 'eventually-always' property is over steps and has an "
                "'exclude' predicate; other modalities have none"
            )

    @property
    def liveness(self) -> bool:
        """True for a property only an infinite run (a lasso) can violate."""
        return self.modality == EVENTUALLY_ALWAYS

    def verdict_when_found(self) -> Verdict:
        """The verdict once a state/step of interest was found.

        For ``always`` what is searched for is a counterexample; for
        ``sometimes``, a witness.
        """
        return Verdict.VIOLATED if self.modality == ALWAYS else Verdict.HOLDS

    def verdict_when_exhausted(self) -> Verdict:
        """The verdict when a complete search found nothing of interest."""
        return Verdict.HOLDS if self.modality == ALWAYS else Verdict.VIOLATED

    def interesting(self, *args) -> bool:
        """True when this state/step is a counterexample or a witness."""
        ok = self.check(*args)
        return not ok if self.modality == ALWAYS else ok
