"""What every engine reports: a verdict per property, the runs behind them, and counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from stormcheck import count
from stormcheck.properties.core import Verdict
from stormcheck.traces.run import Run

__all__ = ["PropertyResult", "CheckResult", "EXIT_CODES", "examples_of", "examples_searched"]

# Exit codes of `stormcheck check`: 0 everything holds, 1 a property is
# violated, 3 inconclusive (2 is reserved for bad input).
EXIT_CODES = {Verdict.HOLDS: 0, Verdict.VIOLATED: 1, Verdict.INCONCLUSIVE: 3}


@dataclass(frozen=True)
class PropertyResult:
    """One property's verdict, the run behind it and what the verdict rests on.

    `run` is the counterexample of a violated ``always`` property or the
    witness of a ``sometimes`` property that holds; `basis` says in words what
    was searched ("complete search of 12,345 states", "budget of ... spent").

    An engine that draws parameters from a scenario's ``[ranges]`` sets
    `config` to the concrete config the run was computed under (the drawn
    values substituted, what a trace must store to replay) and `drawn` to
    the values it drew. `repro` is the source of a runnable test reproducing
    the run, when the engine writes one.

    `within` is the bound a "holds" rests on when the search was bounded:
    every run of at most that many steps was searched, and none longer
    (None: the verdict needs no bound, or is not "holds").

    `checked` is False when the engine does not check this property at all
    (the symbolic engine and liveness, a fleet its encoding does not cover):
    the verdict is then inconclusive, as for any undecided property, and
    `basis` says why; a report shows such a cell as "not checked by this
    engine", apart from a search that ran and could not decide.
    """

    name: str
    modality: str
    verdict: Verdict
    basis: str
    run: Run | None = None
    config: dict | None = field(default=None, compare=False, repr=False)
    drawn: dict | None = None
    repro: str | None = field(default=None, compare=False, repr=False)
    checked: bool = True
    within: int | None = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one engine on one scenario under one design."""

    engine: str
    scenario: str
    design: str
    properties: tuple[PropertyResult, ...]
    stats: dict = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        """Violated if any property is; else inconclusive if any is; else holds."""
        verdicts = {p.verdict for p in self.properties}
        for v in (Verdict.VIOLATED, Verdict.INCONCLUSIVE):
            if v in verdicts:
                return v
        return Verdict.HOLDS

    @property
    def within(self) -> int | None:
        """The step bound an overall "holds" rests on (`PropertyResult.within`); None if none or not "holds"."""
        bounds = [p.within for p in self.properties if p.within is not None]
        return min(bounds) if bounds and self.verdict == Verdict.HOLDS else None

    def get(self, name: str) -> PropertyResult:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(name)


def examples_of(examples: int, steps: int, *, cut_short: int = 0, shrinking: int = 0) -> str:
    """``N examples of <= S steps``, with the examples past the budget said apart: the one wording.

    A Hypothesis basis ("no counterexample found in ...") and a run's
    summary (`examples_searched`: ``check``'s line, the report's cell, the
    sweep's column) both say it here. The extra examples are runs Hypothesis
    stopped part way and made again (`checkers.hypo.beyond_budget`), and runs
    replayed while shrinking a counterexample.
    """
    extra = [f"{n:,} {what}" for n, what in ((cut_short, "beyond the budget of whole runs"),
                                             (shrinking, "shrinking a counterexample")) if n]
    extra_text = f" ({'; '.join(extra)})" if extra else ""
    return f"{count(examples, 'example')} of <= {count(steps, 'step')}{extra_text}"


def examples_searched(stats: dict) -> str:
    """A randomised run's examples in words (`examples_of`), from its result's stats."""
    return examples_of(stats.get("examples", 0), stats.get("max_steps", 0), cut_short=stats.get("cut_short", 0),
                       shrinking=stats.get("shrinking", 0))
