"""Command-line flags that stand for scenario keys go through the scenario's own checks.

``storm --horizon`` is ``[storm] horizon``, ``check --max-seconds`` is
``[search] max_seconds``: a value is checked by one rule, whether it comes
from a file or a flag, so a flag cannot pass what the file format refuses.
``sweep --grid timeout=20:60:5`` stands for a ``[ranges]`` key at each of
its values: every point is built as a scenario, and refused by the same
rules, before the first search (`grid_points`). ``--jobs`` and
``--scheduler`` are checked once for every command, by the command line,
before it starts (`stormcheck.jobs.runner_from`).
"""

from __future__ import annotations

import itertools

from stormcheck.model.scenario import (RANGE_KEYS, Scenario, ScenarioError, concrete_config, load_scenario,
                                       read_config, scenario_from_dict)

__all__ = ["with_flags", "load_with_flags", "GRID_KEYS", "MAX_POINTS", "RANGE_POINTS", "parse_grid", "grid_from_ranges", "grid_points",
           "unswept"]

# A grid point is one whole value per key; `skew` is a list (one per server).
GRID_KEYS = tuple(k for k in RANGE_KEYS if k != "skew")
MAX_POINTS = 10_000  # about 15 minutes of the small presets' searches on one core
# Points per axis when a sweep takes its grid from the scenario's [ranges]:
# LO, HI and evenly spaced whole values between (fewer where the range holds
# fewer). Eleven keeps two axes at 121 points, a few minutes of small searches.
RANGE_POINTS = 11


def with_flags(scenario: Scenario, section: str, values: dict) -> Scenario:
    """`scenario` with ``[section] key = value`` for each given (not None) flag value.

    Raises `ScenarioError` naming the flag and the key when the scenario
    format does not allow the value.
    """
    given = _given(values)
    if not given:
        return scenario
    try:
        return scenario_from_dict(_joined(scenario.config, section, given), scenario.source)
    except ScenarioError as err:
        raise ScenarioError(f"{_said(given)}: {err}") from None


def load_with_flags(name_or_path: str, section: str, values: dict) -> Scenario:
    """`load_scenario(name_or_path)` with each given flag value as ``[section] key``, checked together.

    The flags join the file's tables before any check, so a flag can settle
    what the file alone is refused for: ``storm --clients 500`` for a file
    whose ``hung_share`` hangs no whole client of its own 50. An error the
    file has with the flags and without them is the file's, said as
    `load_scenario` says it; one only the flags bring is said with the flags.
    """
    given = _given(values)
    if not given:
        return load_scenario(name_or_path)
    config, source = read_config(name_or_path)
    if not isinstance(config.get(section, {}), dict):
        return load_scenario(name_or_path)  # refused for that, as the file's own error
    try:
        return scenario_from_dict(_joined(config, section, given), source)
    except ScenarioError as err:
        load_scenario(name_or_path)  # the file's own error, where it has one
        raise ScenarioError(f"{_said(given)}: {err}") from None


def _given(values: dict) -> dict:
    # A whole number given as a float (argparse's type=float makes `--max-seconds 0` 0.0) is said
    # back as the user wrote it, and as a file would hold it.
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items() if v is not None}


def _joined(config: dict, section: str, given: dict) -> dict:
    joined = {name: dict(table) if isinstance(table, dict) else table for name, table in config.items()}
    joined.setdefault(section, {}).update(given)
    return joined


def _said(given: dict) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())


def parse_grid(specs: list[str]) -> dict[str, list[int]]:
    """``["timeout=20:60:5", ...]`` as ``{"timeout": [20, 25, ..., 60], ...}`` (HI included, STEP default 1).

    Raises `ScenarioError` naming the flag and what to write instead.
    """
    if not specs:
        raise ScenarioError(f"--grid: give at least one, as KEY=LO:HI[:STEP] with KEY one of {', '.join(GRID_KEYS)}")
    grid: dict[str, list[int]] = {}
    for spec in specs:
        key, _, span = spec.partition("=")
        key = key.strip()
        if key not in GRID_KEYS:
            raise ScenarioError(f"--grid {spec}: {key!r} is not a grid key; grid keys: {', '.join(GRID_KEYS)}")
        if key in grid:
            raise ScenarioError(f"--grid {spec}: {key} is already a grid axis; give each key once")
        try:
            parts = [int(x) for x in span.split(":")]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3):
            raise ScenarioError(f"--grid {spec}: write {key}=LO:HI or {key}=LO:HI:STEP, whole numbers "
                                f"(e.g. {key}=10:60:5)")
        lo, hi, step = (*parts, 1)[:3]
        if hi < lo or step < 1:
            raise ScenarioError(f"--grid {spec}: needs LO <= HI and STEP >= 1")
        grid[key] = list(range(lo, hi + 1, step))
    count = 1
    for values in grid.values():
        count *= len(values)
    if count > MAX_POINTS:
        raise ScenarioError(f"--grid: {count:,} points; at most {MAX_POINTS:,} (raise a STEP, or narrow a range)")
    return grid


def grid_from_ranges(scenario: Scenario) -> dict[str, list[int]]:
    """The grid a sweep without --grid takes: each ranged key, `RANGE_POINTS` values from LO to HI.

    Raises `ScenarioError` when the scenario has no [ranges] a grid can take.
    """
    ranges = {k: v for k, v in scenario.ranges.items() if k in GRID_KEYS}
    if not ranges:
        raise ScenarioError(f"--grid: give at least one, as KEY=LO:HI[:STEP] with KEY one of {', '.join(GRID_KEYS)} "
                            f"(without --grid a sweep takes its axes from [ranges], which {scenario.source} "
                            f"{'ranges only skew in' if scenario.ranges else 'does not have'})")
    grid = {k: sorted({lo + round(i * (hi - lo) / (RANGE_POINTS - 1)) for i in range(RANGE_POINTS)})
            for k, (lo, hi) in ranges.items()}
    count = 1
    for values in grid.values():
        count *= len(values)
    if count > MAX_POINTS:
        raise ScenarioError(f"{scenario.source}: [ranges] make {count:,} points at {RANGE_POINTS} per axis; at most "
                            f"{MAX_POINTS:,}: give --grid with a coarser STEP")
    return grid


def unswept(scenario: Scenario, grid: dict) -> list[str]:
    """The scenario's ranged keys that `grid` has no axis for: checked at their point values."""
    return [k for k in scenario.ranges if k not in grid]


def grid_points(scenario: Scenario, grid: dict[str, list[int]]) -> list[tuple[dict, Scenario]]:
    """Every point of `grid` (first key slowest) with the scenario it stands for, each checked.

    A point the scenario format refuses stops the sweep before any work,
    naming the point and the rule it breaks. The scenario's [ranges] are not
    drawn from: a key with no axis keeps the scenario's point value.
    """
    points = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        try:
            built = scenario_from_dict(concrete_config(scenario.config, point), scenario.source)
        except ScenarioError as err:
            at = ", ".join(f"{k}={v}" for k, v in point.items())
            raise ScenarioError(f"--grid: the point {at} is not a valid scenario: {err}") from None
        points.append((point, built))
    return points
