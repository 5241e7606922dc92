"""A counterexample as a runnable test: the reproduction the Hypothesis engine writes.

The source rebuilds the fleet from its config dict, replays the action list
from one of the model's initial states with `stormcheck.traces.run.replay`
and asserts that the last step (or state) still violates the property. It
depends on nothing but stormcheck, so it can live in any test suite.
"""

from __future__ import annotations

from stormcheck import count
from stormcheck.model.scenario import Scenario
from stormcheck.model.state import Action
from stormcheck.properties.core import STATE, Property

__all__ = ["reproduction"]


def _drawn_text(drawn: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in drawn.items())


def _action_source(a: Action) -> str:
    parts = [repr(a.kind)] + [f"{f}={v}" for f, v in zip(Action._fields[1:], a[1:]) if v != -1]
    return f"Action({', '.join(parts)})"


def _literal(config: dict) -> str:
    """`config` as Python source: one section per line where it fits, else one key per line."""
    lines = ["{"]
    for section, table in config.items():
        one = f"    {section!r}: {table!r},"
        if len(one) <= 100 or not isinstance(table, dict):
            lines.append(one)
            continue
        lines.append(f"    {section!r}: {{")
        lines.extend(f"        {k!r}: {v!r}," for k, v in table.items())
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


def reproduction(scenario: Scenario, prop: Property, start: int, actions: list[Action], *,
                 seed: int | None = None, drawn: dict | None = None) -> str:
    """A runnable pytest module that replays a counterexample through the current model.

    It rebuilds the fleet from its config dict, replays `actions` from the
    `start`-th initial state with `stormcheck.traces.run.replay` and asserts
    that the last step (or state) still violates `prop`.
    """
    func = f"test_{scenario.name}_{scenario.design.name}_{prop.name}_is_violated".replace("-", "_").replace(".", "_")
    config = _literal(scenario.config)
    steps = "\n".join(f"    {_action_source(a)}," for a in actions)
    found_by = "the hypothesis engine" + (f" (seed {seed})" if seed is not None else "")
    drawn_line = f"\nParameters drawn from [ranges]: {_drawn_text(drawn)}.\n" if drawn else ""
    if prop.over == STATE:
        check = f'    assert prop.interesting(params, run.states[-1]), "the last state no longer violates {prop.name}"'
    else:
        check = (
            "    pre, (action, step) = run.states[-2], run.steps[-1]\n"
            f'    assert prop.interesting(params, pre, action, step), "the last step no longer violates {prop.name}"'
        )
    return f'''"""Reproduction: {prop.name} violated in {scenario.name} under design {scenario.design.name}.

Found by {found_by}: {count(len(actions), "step")} from initial state {start}.
{drawn_line}
The test replays the run through the current model and asserts that its last
{"state" if prop.over == STATE else "step"} still violates {prop.name}: it passes while the design has the bug and
fails (ReplayError or AssertionError) once the model no longer allows the run
or the run no longer violates the property.

    python THIS_FILE     or     pytest --import-mode=importlib THIS_FILE
"""

from stormcheck.model.fleet import initial_states
from stormcheck.model.scenario import scenario_from_dict
from stormcheck.model.state import Action
from stormcheck.properties.protocol import by_name
from stormcheck.traces.run import replay

CONFIG = {config}

ACTIONS = [
{steps}
]


def {func}():
    params = scenario_from_dict(CONFIG, "repro").params
    run = replay(params, initial_states(params)[{start}], ACTIONS)
    prop = by_name({prop.name!r})
{check}


if __name__ == "__main__":
    {func}()
    print("reproduced: {prop.name} is violated by step {len(actions)}")
'''
