"""Command-line flags that stand for scenario keys go through the scenario's own checks.

``storm --horizon`` is ``[storm] horizon``, ``check --max-seconds`` is
``[search] max_seconds``: a value is checked by one rule, whether it comes
from a file or a flag, so a flag cannot pass what the file format refuses.
"""

from __future__ import annotations

from stormcheck.model.scenario import Scenario, ScenarioError, scenario_from_dict

__all__ = ["with_flags"]


def with_flags(scenario: Scenario, section: str, values: dict) -> Scenario:
    """`scenario` with ``[section] key = value`` for each given (not None) flag value.

    Raises `ScenarioError` naming the flag and the key when the scenario
    format does not allow the value.
    """
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return scenario
    config = {name: dict(table) if isinstance(table, dict) else table for name, table in scenario.config.items()}
    config.setdefault(section, {}).update(given)
    flags = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())
    try:
        rebuilt = scenario_from_dict(config, scenario.source)
    except ScenarioError as err:
        raise ScenarioError(f"{flags}: {err}") from None
    return rebuilt
