"""The Hypothesis engine: random deep search with shrinking, over the same model.

Design rules
------------
1. The state machine is *derived* from the model, never written beside it.
   Its one ``@rule`` (`FleetMachine.act`) draws an action kind among those
   the model enables (the model's own `actions`, in `fleet.ACTIONS` order),
   then one action of that kind, and applies the model's own `step`. Only
   Hypothesis's public API is used (``@rule``, ``@invariant``,
   ``@initialize``, ``st.data()``). Every state property is an
   ``@invariant``; step properties are checked after each step. Nothing here
   knows the protocol: change the model and the machine follows.
2. A scenario's ``[ranges]`` are drawn per example in the machine's
   ``@initialize`` (then one of the model's `initial_states`). A run found
   carries the drawn values and the concrete config they give, so its trace
   replays without the ranges and the report names the parameters.
3. Verdicts are honest. Random search proves nothing: an ``always`` property
   with no counterexample is *inconclusive* ("no counterexample found in N
   examples of <= S steps"), never "holds"; a ``sometimes`` property holds
   once a witness is seen and is inconclusive otherwise, never violated.
4. Each ``always`` property gets a search of its own (with its own seed
   derived from the run's), so that a property violated early in every run
   (``parameter_agreement`` predicts what ``no_valid_reap`` sees later) does
   not hide another, and each counterexample is shrunk for its property.
5. Effort is steered with `hypothesis.target` toward the margin that
   matters: how close the next refresh of a valid client comes to some up
   server's reaper cutoff (`reap_margin`). Near-misses are favoured. Only
   in runs without an example database (seeded runs): with one, Hypothesis
   also keeps a Pareto front of target scores and shrinks every member of
   it, measured 5.9x slower on gitter-2015 / per-session (81 s against 14 s
   for 1,000 examples). (Measured too: on gitter-2015 / per-server the
   targeted phase did not bring the first violation sooner; in 7 of 8 seeds
   it came later. It is kept for fleets where near-misses do lead on.)
6. Swarm testing at the grain of the adversary: each example mutes a random
   subset of the adversary's moves (`ADVERSARY`: no crash, load never falls,
   ...), never a due event or time, so every run can go on. Measured on
   gitter-2015, this is what makes the 2015 run likely: it needs the load
   to stay up and the client not to crash while time passes, and a uniform
   choice at every step makes one of them happen almost surely. (Hypothesis's
   own swarm testing switches whole rules off, which here would mean
   ``tick`` too; with one rule there is nothing for it to switch off.)

Reproducibility: a run with a seed is derandomized (Hypothesis's own `seed`)
and, as Hypothesis does for seeded tests, uses no example database. A run
without one draws a seed (recorded in the result and in traces) and keeps
Hypothesis's example database under ``.hypothesis/`` in the current
directory, so a failure found once is replayed first the next time.

Parts: the machine (`FleetMachine`, built per fleet by `fleet_machine`, the
adversary's mutes, the draws of ``[ranges]`` and the settings of a search)
is `checkers.hypo_machine`; what the examples of one engine run share (the
fleets, the counters, the witnesses) and the run an example found are
`checkers.hypo_search`. This module runs the searches and turns their
outcome into verdicts (`check_hypothesis`); the names callers import from
it are re-exported here.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Callable

import hypothesis
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test

from stormcheck import count
from stormcheck.model.scenario import Scenario
from stormcheck.properties.core import ALWAYS, SOMETIMES, Verdict
from stormcheck.properties.protocol import PROPERTIES, reap_margin  # noqa: F401 (reap_margin: re-exported)

from .hypo_machine import ADVERSARY, FleetMachine, fleet_machine, machine_settings  # noqa: F401 (re-exported)
from .hypo_search import Found, PropertyViolation, _drawn_text, _Search
from .repro import reproduction
from .result import CheckResult, PropertyResult, examples_of

__all__ = [
    "check_hypothesis",
    "fleet_machine",
    "machine_settings",
    "reap_margin",
    "Found",
    "FleetMachine",
    "PropertyViolation",
    "ADVERSARY",
    "DEFAULT_EXAMPLES",
    "DEFAULT_STEPS",
    "DATABASE_DIR",
]

# Measured on gitter-2015 / per-server: the 12-step violation first turns up
# after a median of ~140 runs (30 seeds; one in ten needs more than 500), and
# runs past 30 steps rarely add one a shorter run missed: after ~14 steps the
# fault budget is spent and the fleet settles.
DEFAULT_EXAMPLES = 1000
DEFAULT_STEPS = 30
# Hypothesis's own default location, relative to the current directory.
DATABASE_DIR = Path(".hypothesis") / "examples"


def _derived_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big")


def _run_search(machine: type, seed: int, settings) -> PropertyViolation | str | None:
    """Run one search; the violation found (shrunk), or a note why it stopped early."""
    try:
        run_state_machine_as_test(hypothesis.seed(seed)(machine), settings=settings)
    except PropertyViolation as err:
        return err
    except Unsatisfiable:
        return "Hypothesis could not generate enough valid examples"
    return None


# ---------------------------------------------------------------- the engine


def check_hypothesis(
    scenario: Scenario,
    properties=PROPERTIES,
    *,
    seed: int | None = None,
    examples: int = DEFAULT_EXAMPLES,
    steps: int = DEFAULT_STEPS,
    database: str | Path | None = DATABASE_DIR,
    progress: Callable[[dict], None] | None = None,
) -> CheckResult:
    """Search `scenario` with Hypothesis; a verdict, and a run where one was found.

    Parameters
    ----------
    scenario : Scenario
        The fleet, with any ``[ranges]`` to draw from.
    properties : tuple of Property
        ``always`` properties get a search each (`examples` runs of at most
        `steps` steps); ``sometimes`` properties collect witnesses from every
        run.
    seed : int, optional
        Derandomizes the run: the same seed gives the same result. Without
        one, a seed is drawn (``stats["seed"]`` reproduces the search) and
        the example database is used.
    database : path or None
        Hypothesis's example database (unseeded runs only); None: none.
    progress : callable, optional
        Called at most once a second with examples, steps and seconds.
    """
    properties = tuple(properties)
    seeded = seed is not None
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    db = DirectoryBasedExampleDatabase(str(database)) if database is not None and not seeded else None
    settings = machine_settings(examples, steps, database=db)
    search = _Search(scenario, properties, progress)
    always = [p for p in properties if p.modality == ALWAYS]
    outcome: dict[str, dict] = {}
    for prop in always or [None]:
        name = prop.name if prop is not None else "(witnesses)"
        search.begin_search()
        t0 = time.perf_counter()
        machine = fleet_machine(scenario, properties, fail_on=[name] if prop else [], targeting=db is None,
                                _search=search)
        found = _run_search(machine, _derived_seed(seed, name), settings)
        extra = beyond_budget(search.search_examples, examples) if search.first is None else 0
        search.cut_short += extra
        outcome[name] = {
            "found": found,
            "examples": search.search_examples,
            "cut_short": extra,
            "seconds": time.perf_counter() - t0,
            "first": search.first,
        }
    seconds = time.perf_counter() - search.started
    # Runs replayed while shrinking a counterexample, after the one that found it.
    shrinking = sum(o["examples"] - o["first"][1] for o in outcome.values() if o["first"])
    results = tuple(_verdict(p, outcome, search, steps, seed, shrinking) for p in properties)
    stats = {
        "examples": search.examples,
        "cut_short": search.cut_short,
        "shrinking": shrinking,
        "steps": search.steps,
        "seconds": round(seconds, 3),
        "examples_per_second": round(search.examples / seconds, 1) if seconds else None,
        "max_examples": examples,
        "max_steps": steps,
        "seed": seed,
        "seeded": seeded,
        "database": str(database) if db is not None else None,
        "targeting": db is None,
        "ranges": {k: list(v) for k, v in search.ranges.items()},
        "searches": {
            name: {
                "examples": o["examples"],
                "cut_short": o["cut_short"],
                "seconds": round(o["seconds"], 3),
                "first_violation_seconds": round(o["first"][0], 3) if o["first"] else None,
                "first_violation_example": o["first"][1] if o["first"] else None,
                "shrunk_steps": len(o["found"].found.run) if isinstance(o["found"], PropertyViolation) else None,
            }
            for name, o in outcome.items()
        },
    }
    return CheckResult("hypothesis", scenario.name, scenario.design.name, results, stats)


def beyond_budget(run: int, budget: int) -> int:
    """Runs a search made beyond its budget of `budget` whole runs (0 when it stopped sooner).

    Hypothesis's ``max_examples`` counts the runs it completes; a run it
    stops part way, its choices past its size limit for one example, does
    not count, and another is made in its place. Read from the public
    budget and our own count of the runs begun, not from Hypothesis's
    internals.
    """
    return max(0, run - budget)


def _verdict(prop, outcome, search: _Search, steps: int, seed: int, shrinking: int) -> PropertyResult:
    if prop.modality == SOMETIMES:
        found = search.witnesses.get(prop.name)
        if found is None:
            # Witnesses are looked for in every example of the run, shrinking ones too.
            said = examples_of(search.examples, steps, cut_short=search.cut_short, shrinking=shrinking)
            basis = f"no witness found in {said}"
            return PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis)
        # The example the witness shown turned up in (counted over the whole run, as they were made), not
        # every example the run made: the searches go on after it.
        basis = (f"witness of {count(len(found.run), 'step')} found in example {found.example} "
                 f"of <= {count(steps, 'step')}")
        return _with_run(prop, Verdict.HOLDS, basis, found, search)
    o = outcome[prop.name]
    found = o["found"]
    if not isinstance(found, PropertyViolation):
        basis = f"no counterexample found in {examples_of(o['examples'], steps, cut_short=o['cut_short'])}"
        if isinstance(found, str):
            basis += f" ({found})"
        return PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis)
    # No clock time here: the same seed gives the same basis (stats keep the seconds).
    _, example = o["first"]
    f = found.found
    basis = f"found in example {example} of <= {count(steps, 'step')}, shrunk to {count(len(f.run), 'step')}"
    if f.drawn:
        basis += f" (drawn: {_drawn_text(f.drawn)})"
    repro = reproduction(f.scenario, prop, f.start, f.run.actions, seed=seed, drawn=f.drawn)
    return _with_run(prop, Verdict.VIOLATED, basis, f, search, repro)


def _with_run(prop, verdict, basis, found: Found, search: _Search, repro: str | None = None) -> PropertyResult:
    ranged = bool(search.ranges)
    return PropertyResult(
        prop.name, prop.modality, verdict, basis, found.run,
        config=found.scenario.config if ranged else None,
        drawn=dict(found.drawn) if ranged else None,
        repro=repro,
    )
