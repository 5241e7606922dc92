"""What the examples of one Hypothesis engine run share, and the run an example found.

`_Search` is the state the examples of one `checkers.hypo.check_hypothesis`
call hold in common: the concrete fleet of each set of drawn ``[ranges]``
values and its initial states (built once), the strategies of the action
lists (built once each), the counters the progress line and the statistics
report, the first violation of each property's search and the shortest
witness of each ``sometimes`` property. `Found` is a run one example
produced, with the fleet it ran under, and `PropertyViolation` the failure
a derived machine raises with it (`checkers.hypo_machine`). They sit apart
from the machine so that the machine holds only what Hypothesis runs, and
the engine only what it decides.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from hypothesis import strategies as st

from stormcheck.model import fleet
from stormcheck.model.scenario import Scenario, concrete_config, scenario_from_dict
from stormcheck.model.state import Action, State
from stormcheck.properties.core import STATE, Property
from stormcheck.traces.run import Run
from stormcheck.traces.timeline import render_timeline

__all__ = ["Found", "PropertyViolation"]


# ---------------------------------------------------------------- runs found


@dataclass(frozen=True)
class Found:
    """A run one example produced: the run and what it ran under."""

    run: Run
    scenario: Scenario  # the concrete fleet (drawn values substituted)
    drawn: dict
    start: int  # index of the run's initial state in `initial_states`
    example: int


class PropertyViolation(AssertionError):
    """An ``always`` property failed in a run of the derived machine.

    The message names the property, the scenario, the drawn parameters and
    shows the run as a timeline; ``found`` holds the run itself.
    """

    def __init__(self, prop: Property, found: Found) -> None:
        super().__init__(prop.name)
        self.prop, self.found = prop, found

    def __str__(self) -> str:
        f, prop = self.found, self.prop
        sc = f.scenario
        what = "state" if prop.over == STATE else "step"
        lines = [
            f"{prop.name} violated by {what} {len(f.run)} of a run in {sc.name} / {sc.design.name}: "
            f"{prop.description}"
        ]
        if f.drawn:
            lines.append("drawn from [ranges]: " + _drawn_text(f.drawn))
        lines.append(render_timeline(f.run, sc.params, title=f"{sc.name} / {sc.design.name}"))
        return "\n".join(lines)


def _drawn_text(drawn: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in drawn.items())


# ---------------------------------------------------------------- the search


class _Search:
    """What the examples of one engine run share: counters, witnesses, fleets."""

    def __init__(self, scenario: Scenario, properties, progress: Callable | None = None) -> None:
        self.scenario = scenario
        self.ranges = scenario.ranges
        self.properties = tuple(properties)
        self.step_props = tuple(p for p in self.properties if p.over != STATE)
        self.progress = progress
        self.started = self.last_report = time.perf_counter()
        self.examples = 0  # every example, all searches
        # Runs beyond a search's budget of whole runs (`beyond_budget`): Hypothesis's
        # max_examples counts whole runs, not those it stops part way.
        self.cut_short = 0
        self.steps = 0
        self.witnesses: dict[str, Found] = {}
        self.first: tuple[float, int] | None = None  # (seconds, example) of this search's first violation
        self.search_examples = 0
        self.search_started = self.started
        self._fleets: dict[str, tuple[Scenario, list[State]]] = {}
        self._choices: dict[tuple, object] = {}

    def fleet(self, drawn: dict) -> tuple[Scenario, list[State]]:
        """The concrete scenario for `drawn` values, and its initial states (cached)."""
        key = json.dumps(drawn, sort_keys=True)
        if key not in self._fleets:
            if drawn:
                sc = scenario_from_dict(concrete_config(self.scenario.config, drawn), self.scenario.source)
            else:
                sc = self.scenario  # exactly the given params, even ones no file could state
            self._fleets[key] = (sc, fleet.initial_states(sc.params))
        return self._fleets[key]

    def choice(self, actions: list[Action]):
        """`st.sampled_from(actions)`, built once per list (building one costs more than drawing)."""
        key = tuple(actions)
        strategy = self._choices.get(key)
        if strategy is None:
            strategy = self._choices[key] = st.sampled_from(key)
        return strategy

    def begin_search(self) -> None:
        self.first, self.search_examples = None, 0
        self.search_started = time.perf_counter()

    def example_started(self) -> None:
        self.examples += 1
        self.search_examples += 1
        if self.progress is not None:
            now = time.perf_counter()
            if now - self.last_report >= 1.0:
                self.last_report = now
                self.progress({"examples": self.examples, "steps": self.steps, "seconds": now - self.started})

    def witness(self, prop: Property, found: Found) -> None:
        old = self.witnesses.get(prop.name)
        if old is None or len(found.run) < len(old.run):
            self.witnesses[prop.name] = found

    def violation(self) -> None:
        if self.first is None:
            self.first = (time.perf_counter() - self.search_started, self.search_examples)
