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
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, target
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stormcheck import count
from stormcheck.model import fleet
from stormcheck.model.scenario import RANGE_KEYS, Scenario, concrete_config, scenario_from_dict
from stormcheck.model.state import Action, State
from stormcheck.properties.core import ALWAYS, SOMETIMES, STATE, Property, Verdict
from stormcheck.properties.protocol import PROPERTIES, reap_margin
from stormcheck.traces.run import Run
from stormcheck.traces.timeline import render_timeline

from .repro import reproduction
from .result import CheckResult, PropertyResult

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
# Health checks that do not apply: a long stateful run is slow and large by
# design (data_too_large, too_slow), and a fleet with nothing enabled is a
# filtered step, not a broken strategy.
_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large)



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


def _draw_ranges(data, ranges: dict, config: dict) -> dict:
    """One value per ranged key (one offset per server for ``skew``), in `RANGE_KEYS` order."""
    drawn: dict = {}
    for key in RANGE_KEYS:
        if key not in ranges:
            continue
        lo, hi = ranges[key]
        if key == "skew":
            n = drawn.get("servers", config["topology"]["servers"])
            drawn[key] = data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n), label=key)
        else:
            drawn[key] = data.draw(st.integers(lo, hi), label=key)
    return drawn


# The adversary's moves: instantaneous actions that may happen at any moment
# (the rules `fleet.RULES` marks ``adversary``). An example may
# mute some of them; due events and ticks are never muted, so a run can
# always go on.
ADVERSARY = tuple(rule.kind for rule in fleet.RULES if rule.adversary)


def _mute_keys(params) -> list[tuple[str, int]]:
    """Every (kind, value) an example may mute: each adversary kind, and each load level apart."""
    return [("load", level) for level in range(len(params.levels))] + [(k, -1) for k in ADVERSARY if k != "load"]


_MUTES: dict[tuple, st.SearchStrategy] = {}


def _mutes(keys: tuple) -> st.SearchStrategy:
    """A subset of `keys`, each in it with probability 1/2 (one coin per key; shrinks to none)."""
    if keys not in _MUTES:
        coins = st.tuples(*(st.booleans() for _ in keys))
        _MUTES[keys] = coins.map(lambda bits: frozenset(k for k, b in zip(keys, bits) if b))
    return _MUTES[keys]


_ORDER = {kind: i for i, kind in enumerate(fleet.ACTIONS)}
_INDEX: dict[int, st.SearchStrategy] = {}


def _index(n: int) -> st.SearchStrategy:
    if n not in _INDEX:
        _INDEX[n] = st.integers(0, n - 1)
    return _INDEX[n]


class FleetMachine(RuleBasedStateMachine):
    """The part of every derived machine that is not per fleet.

    Its one rule, `act`, applies an action the model enables;
    `fleet_machine` subclasses it with one invariant per state property. The run so far is kept as data
    (``initial`` and ``steps``) so a failure exports exactly what ran.
    """

    _search: _Search
    _fail_on: frozenset = frozenset()
    _targeting: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.muted: frozenset = frozenset()
        self.scenario: Scenario | None = None
        self.params = None
        self.drawn: dict = {}
        self.start = 0
        self.initial: State | None = None
        self.state: State | None = None
        self.steps: list = []
        self.enabled: dict[str, list[Action]] = {}
        self.pressure: int | None = None  # the largest -reap_margin seen in this run
        self.example = 0

    @initialize(data=st.data())
    def begin(self, data) -> None:
        """Draw the fleet from the scenario's ranges, then an initial state."""
        search = self._search
        self.drawn = _draw_ranges(data, search.ranges, search.scenario.config)
        self.scenario, starts = search.fleet(self.drawn)
        self.params = self.scenario.params
        self.start = data.draw(st.integers(0, len(starts) - 1), label="initial state") if len(starts) > 1 else 0
        # Swarm testing over the adversary: each example leaves some of its
        # moves out (say, load never falls, or no client crashes), which makes
        # runs that need one move and never another likely. Shrinking unmutes.
        self.muted = data.draw(_mutes(tuple(_mute_keys(self.params))), label="muted adversary moves")
        self.initial = self.state = starts[self.start]
        search.example_started()
        self.example = search.examples
        self._after_step()

    def apply(self, action: Action) -> None:
        """Apply `action` with the model's `step`, then check the step properties."""
        pre = self.state
        st_ = fleet.step(self.params, pre, action)
        self.steps.append((action, st_))
        self.state = st_.state
        self._search.steps += 1
        for prop in self._search.step_props:
            if prop.interesting(self.params, pre, action, st_):
                self._found(prop)
        self._after_step()

    def _after_step(self) -> None:
        by_kind: dict[str, list[Action]] = {}
        muted = self.muted
        for a in fleet.actions(self.params, self.state):
            if muted and (a.kind, a.value if a.kind == "load" else -1) in muted:
                continue
            by_kind.setdefault(a.kind, []).append(a)
        self.enabled = by_kind
        margin = reap_margin(self.params, self.state)
        if margin is not None and (self.pressure is None or -margin > self.pressure):
            self.pressure = -margin

    def _found(self, prop: Property) -> None:
        found = Found(Run(self.initial, tuple(self.steps)), self.scenario, dict(self.drawn), self.start, self.example)
        if prop.modality == SOMETIMES:
            self._search.witness(prop, found)
        elif prop.name in self._fail_on:
            self._search.violation()
            raise PropertyViolation(prop, found)
        # An always property this search does not fail on is only observed.

    @precondition(lambda self: bool(self.enabled))  # a fleet that cannot move ends the run
    @rule(data=st.data())
    def act(self, data) -> None:
        """Apply one action the model enables: first its kind, then the action.

        One rule, with two draws, instead of one rule per action kind: most
        kinds are disabled in most states (the model enables three or four at
        a time), so Hypothesis's choice among many rules would reject its way
        to an enabled one, and its swarm testing would switch off whole rules,
        ``tick`` included, stalling the fleet. Kinds come in the model's order
        (`fleet.ACTIONS`: due events first, faults last), so shrinking moves
        toward due events and away from faults. Muting adversary moves per
        example (`ADVERSARY`) is the swarm testing kept.
        """
        kinds = sorted(self.enabled, key=_ORDER.__getitem__)
        kind = kinds[data.draw(_index(len(kinds)), label="kind")] if len(kinds) > 1 else kinds[0]
        self.apply(data.draw(self._search.choice(self.enabled[kind]), label=kind))

    def teardown(self) -> None:
        if self._targeting and self.pressure is not None:
            target(float(self.pressure), label="reap pressure (-margin, s)")


def _invariant_for(prop: Property):
    def check(self) -> None:
        if prop.interesting(self.params, self.state):
            self._found(prop)

    check.__name__ = check.__qualname__ = prop.name
    check.__doc__ = prop.description
    return invariant()(check)


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace(".", "-").replace("_", "-").split("-"))


def fleet_machine(
    scenario: Scenario,
    properties=PROPERTIES,
    *,
    fail_on=None,
    targeting: bool = True,
    _search: _Search | None = None,
) -> type[FleetMachine]:
    """The `RuleBasedStateMachine` of `scenario`, derived from the model.

    Parameters
    ----------
    scenario : Scenario
        The fleet; its ``[ranges]`` are drawn per example.
    properties : tuple of Property
        Checked on every state (``@invariant``) or step.
    fail_on : iterable of str, optional
        Names of the ``always`` properties whose violation fails the run
        (default: every ``always`` property given). Others are observed.
    targeting : bool
        Report the reap pressure to `hypothesis.target` (see rule 5 above:
        turn it off with an example database).

    Returns
    -------
    type
        A machine class; its ``TestCase`` runs it under unittest or pytest.
    """
    properties = tuple(properties)
    if fail_on is None:
        fail_on = [p.name for p in properties if p.modality == ALWAYS]
    search = _search or _Search(scenario, properties)
    body: dict = {p.name: _invariant_for(p) for p in properties if p.over == STATE}
    body["_search"] = search
    body["_fail_on"] = frozenset(fail_on)
    body["_targeting"] = targeting
    # Hypothesis keys a state machine's example database by the machine's
    # name (a class made here has no source to digest), so the name carries a
    # digest of what the machine checks: different fleets, designs or
    # properties never share entries.
    ident = json.dumps([scenario.config, scenario.design.name, sorted(body["_fail_on"]),
                        [p.name for p in properties]], sort_keys=True, default=str)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    name = f"{_camel(scenario.name)}{_camel(scenario.design.name)}Machine_{digest}"
    body["__qualname__"] = name
    body["__doc__"] = f"Random runs of {scenario.name} under {scenario.design.name}, derived from the model."
    return type(name, (FleetMachine,), body)


def machine_settings(examples: int, steps: int, *, database=None, quiet: bool = True, **extra) -> hypothesis.settings:
    """The Hypothesis settings of a search: `examples` runs of at most `steps` model steps.

    The targeted phase runs only without a `database` (module docstring, rule 5).
    """
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
    if database is not None:
        phases.remove(Phase.target)
    return hypothesis.settings(
        max_examples=examples,
        stateful_step_count=steps + 1,  # the @initialize step counts as one
        deadline=None,
        database=database,
        suppress_health_check=_SUPPRESSED,
        verbosity=Verbosity.quiet if quiet else Verbosity.normal,
        report_multiple_bugs=False,
        # "explain" re-runs a failure many times to annotate it; we print our own.
        phases=phases,
        print_blob=False,
        **extra,
    )


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
    results = tuple(_verdict(p, outcome, search, steps, seed) for p in properties)
    stats = {
        "examples": search.examples,
        "cut_short": search.cut_short,
        # Runs replayed while shrinking a counterexample, after the one that found it.
        "shrinking": sum(o["examples"] - o["first"][1] for o in outcome.values() if o["first"]),
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


def _budget(n: int, steps: int, cut_short: int = 0) -> str:
    cut = f" ({cut_short:,} of them beyond the budget of whole runs)" if cut_short else ""
    return f"{count(n, 'example')} of <= {count(steps, 'step')}{cut}"


def _verdict(prop, outcome, search: _Search, steps: int, seed: int) -> PropertyResult:
    if prop.modality == SOMETIMES:
        found = search.witnesses.get(prop.name)
        if found is None:
            basis = f"no witness found in {_budget(search.examples, steps, search.cut_short)}"
            return PropertyResult(prop.name, prop.modality, Verdict.INCONCLUSIVE, basis)
        basis = f"witness of {count(len(found.run), 'step')} found in {_budget(search.examples, steps)}"
        return _with_run(prop, Verdict.HOLDS, basis, found, search)
    o = outcome[prop.name]
    found = o["found"]
    if not isinstance(found, PropertyViolation):
        basis = f"no counterexample found in {_budget(o['examples'], steps, o['cut_short'])}"
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
