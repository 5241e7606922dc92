"""The Hypothesis state machine derived from the model, and the settings it runs under.

`FleetMachine` is the part of every derived machine that is not per fleet:
its one rule draws an action kind among those the model enables, then one
action of that kind, and applies the model's `step` (design rules 1, 5 and
6 of `checkers.hypo`). `fleet_machine` subclasses it per fleet, with one
``@invariant`` per state property and a name that keys Hypothesis's example
database; an example's ``@initialize`` draws the scenario's ``[ranges]``
(rule 2) and the adversary's moves it mutes. `machine_settings` gives a
search's Hypothesis settings. `checkers.hypo` runs the searches on these
machines and `stormcheck.testing` runs one as a test case: the machine sits
apart from both, and uses Hypothesis's public API only.
"""

from __future__ import annotations

import hashlib
import json

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stormcheck.model import fleet
from stormcheck.model.scenario import RANGE_KEYS, Scenario
from stormcheck.model.state import Action, State
from stormcheck.properties.core import ALWAYS, SOMETIMES, STATE, Property
from stormcheck.properties.protocol import PROPERTIES, reap_margin
from stormcheck.traces.run import Run

from .hypo_search import Found, PropertyViolation, _Search

__all__ = ["FleetMachine", "fleet_machine", "machine_settings", "ADVERSARY"]

# Health checks that do not apply: a long stateful run is slow and large by
# design (data_too_large, too_slow), and a fleet with nothing enabled is a
# filtered step, not a broken strategy.
_SUPPRESSED = (HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large)


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
