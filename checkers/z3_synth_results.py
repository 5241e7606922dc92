"""The answers of synthesis as records, and their wording for people.

`Threshold` (the 2015 question) and `Region` (the region over ``[ranges]``)
hold what `z3_synth` found and say it in text; `_cut_by` words how a certified
run ends a valid session. They stand apart from the search because they hold
no solver logic: the CLI, the report and tests read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

from stormcheck import count
from stormcheck.model.events import Reaped
from stormcheck.traces.run import Run

__all__ = ["Threshold", "Region"]


@dataclass(frozen=True)
class Threshold:
    """Where one reaper path starts reaping valid sessions.

    ``load_ms``: the smallest average subscribe latency at which it does
    (None: not at any load up to ``high_ms``, proved). Every load below it is
    proved safe for this path. ``certified`` holds the run found at
    ``load_ms`` (None: none within ``max_steps``, so ``load_ms`` is only a
    lower bound).
    """

    path: str
    load_ms: int | None
    timeout: int | None
    interval: int | None
    low_ms: int
    high_ms: int
    certified: Run | None
    max_steps: int
    seconds: float
    config: dict | None = field(default=None, repr=False)

    def text(self) -> str:
        if self.load_ms is None:
            return (f"{self.path} path: never reaps a valid session for avg subscribe latency in "
                    f"[{self.low_ms}, {self.high_ms}] ms (proved)")
        exact = (f"certified run of {count(len(self.certified), 'step')} at {self.load_ms} ms" if self.certified is not None
                 else f"no run found within {count(self.max_steps, 'step')} at {self.load_ms} ms: a lower bound only")
        return (f"{self.path} path: valid sessions reaped once avg subscribe latency >= {self.load_ms} ms "
                f"(T={self.timeout}, I={self.interval}); proved safe below it; {exact}")


@dataclass(frozen=True)
class Region:
    """The proved-safe region of a design over a scenario's ranges.

    ``constraint`` is the readable condition (None: no candidate is proved);
    ``covers`` what the proof covers; ``outside`` the parameter values of the
    checked point just outside (None: none in range), ``outside_run`` the
    certified run there (None: none within ``max_steps``).
    """

    scenario: str
    design: str
    ranges: dict
    constraint: str | None
    covers: str
    whole_range_safe: bool
    outside: dict | None
    outside_run: Run | None
    outside_config: dict | None
    max_steps: int
    seconds: float
    rejected: tuple[str, ...] = ()
    some_inside: bool = True  # False: no value in range satisfies the constraint
    inside: dict | None = None  # a point just inside, next to `outside` (for cross-checks)
    cti: tuple | None = None  # (run, config): where the invariant alone allows a reap, if it does
    cut: str | None = None  # how `outside_run` ends a valid session ("cut by the proxy nginx")
    # The proved constraint as a formula over the ranged parameters, for `contains`.
    formula: object = field(default=None, compare=False, repr=False)
    base: dict = field(default_factory=dict, compare=False, repr=False)

    def contains(self, values: dict) -> bool:
        """True when the point `values` (ranged key -> value) satisfies the proved constraint.

        Keys not given keep no value, so give every ranged key but ``skew``
        (a list) or fix it in the scenario. For plotting the region; the
        proof itself is over the whole range.
        """
        if self.formula is None:
            return False
        subs = [(v, z3.IntVal(values[k], v.ctx)) for k, terms in self.base.items() if k in values
                for v in terms[:1]]
        return z3.is_true(z3.simplify(z3.substitute(self.formula, *subs)))

    @property
    def conclusive(self) -> bool:
        """A region is proved and, unless it is the whole range, a run was found just outside."""
        return self.constraint is not None and (self.whole_range_safe or self.outside_run is not None)

    def text(self) -> str:
        lines = [f"scenario {self.scenario}, design {self.design}, over "
                 + (", ".join(f"{k} in [{lo}, {hi}]" for k, (lo, hi) in self.ranges.items()) or "point values")]
        if self.constraint is None:
            lines.append("  no candidate region is proved safe (see the rejected candidates)")
        else:
            lines.append(f"  safe (proved: {self.covers}) where")
            lines.append(f"    {self.constraint}")
            if self.whole_range_safe and not self.ranges:
                lines.append("  which holds at the scenario's values: safe")
            elif self.whole_range_safe:
                lines.append("  which holds for every value in range: the whole range is safe")
            elif not self.some_inside and not self.ranges:
                lines.append("  which the scenario's values do not satisfy")
            elif not self.some_inside:
                lines.append("  which no value in range satisfies: nothing in range is proved safe")
        for text in self.rejected:
            lines.append(f"  not sufficient: {text}")
        if self.outside is not None:
            at = ", ".join(f"{k} = {v}" for k, v in self.outside.items()) or "the scenario's values"
            if self.inside is not None:
                lines.append("  just inside, at " + ", ".join(f"{k} = {v}" for k, v in self.inside.items())
                             + ": proved safe")
            if self.outside_run is not None:
                lines.append(f"  outside, at {at}: a valid session is {self.cut or 'reaped'} "
                             f"(certified run of {count(len(self.outside_run), 'step')})")
            else:
                lines.append(f"  outside, at {at}: no run found within {count(self.max_steps, 'step')} "
                             "(the region may be larger)")
        return "\n".join(lines)


def _cut_by(params, run: Run | None) -> str | None:
    """How `run`'s last step ends a valid session: a server's reaper path, or an extra judge by name."""
    if run is None or not run.steps:
        return None
    action, last = run.steps[-1]
    for e in last.events:
        if isinstance(e, Reaped) and e.path in ("client", "proxy"):
            judge = params.judges[action.value]
            return f"cut by the proxy {judge.name}" if judge.side == "proxy" else f"cut by the {judge.name}'s own judge"
        if isinstance(e, Reaped) and e.path == "spacing":
            return "closed by its server: pings too close together"
        if isinstance(e, Reaped):
            return f"reaped by a server's {e.path} path"
    return None
