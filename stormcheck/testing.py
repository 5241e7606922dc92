"""A scenario in your own test suite, in one line.

`scenario_test_case` returns the `unittest.TestCase` of the Hypothesis state
machine derived from a scenario (`stormcheck.checkers.hypo.fleet_machine`):
pytest and unittest collect it like any test class. It fails when a random run
violates an ``always`` property, with a message that names the property and
shows the run as a timeline; it passes when none was found in its examples
(which, as with any random test, is not a proof: use ``stormcheck check`` with
the exhaustive engine for that).

Examples
--------
In ``tests/test_fleet.py``::

    from stormcheck.testing import scenario_test_case

    TestOurFleet = scenario_test_case("fleet.toml", design="per-session", max_examples=50)
"""

from __future__ import annotations

import sys
import unittest

import hypothesis

from stormcheck.checkers.hypo import DEFAULT_STEPS, fleet_machine, machine_settings
from stormcheck.model.scenario import Scenario, load_scenario
from stormcheck.properties.core import ALWAYS
from stormcheck.properties.protocol import PROPERTIES, by_name

__all__ = ["scenario_test_case"]

_PROFILE_DATABASE = object()  # "whatever the active Hypothesis profile says"


def scenario_test_case(
    scenario: str | Scenario,
    *,
    design: str | None = None,
    properties=None,
    max_examples: int = 100,
    steps: int = DEFAULT_STEPS,
    seed: int | None = None,
    database=_PROFILE_DATABASE,
) -> type[unittest.TestCase]:
    """A `unittest.TestCase` class that runs `scenario` as a Hypothesis state machine.

    Parameters
    ----------
    scenario : str or Scenario
        A preset name, a ``.toml`` path, or a loaded `Scenario` (its
        ``[ranges]`` are drawn per example).
    design : str, optional
        A named design replacing the scenario's own.
    properties : iterable of str or Property, optional
        What to check (default: all). The test fails on the ``always`` ones;
        ``sometimes`` ones cannot fail a random test and are only observed.
    max_examples, steps : int
        Runs, and model steps per run at most.
    seed : int, optional
        Makes the test derandomized (Hypothesis's `seed`); a seeded test uses
        no example database.
    database : optional
        A Hypothesis example database, or None; by default the active
        Hypothesis profile's (``.hypothesis/`` in the current directory).

    Raises
    ------
    stormcheck.model.scenario.ScenarioError
        For a scenario that does not load (when the class is made, at import).
    """
    if isinstance(scenario, Scenario):
        sc = scenario.with_design(design) if design is not None else scenario
    else:
        sc = load_scenario(scenario, design=design)
    props = PROPERTIES if properties is None else tuple(
        by_name(p) if isinstance(p, str) else p for p in properties
    )
    fail_on = [p.name for p in props if p.modality == ALWAYS]
    if seed is not None:
        database = None  # as Hypothesis does for a seeded test
    elif database is _PROFILE_DATABASE:
        database = hypothesis.settings.default.database
    # Targeting only without a database: with one, Hypothesis shrinks a whole
    # Pareto front of target scores (see stormcheck.checkers.hypo, rule 5).
    machine = fleet_machine(sc, props, fail_on=fail_on, targeting=database is None)
    if seed is not None:
        machine = hypothesis.seed(seed)(machine)
    settings = machine_settings(max_examples, steps, database=database, quiet=False)
    name = "Test" + machine.__name__.removesuffix("Machine")
    # Reported as defined where it is assigned, not here.
    module = sys._getframe(1).f_globals.get("__name__", __name__)
    return type(name, (machine.TestCase,), {"settings": settings, "__doc__": machine.__doc__,
                                            "__module__": module, "__qualname__": name})
