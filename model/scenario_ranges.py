"""The [ranges] table of a scenario: a pair [low, high] instead of a point for a few keys.

Each entry is checked like the key it stands for, at both ends
(`_range_table`); then the fleet must be valid at both ends of every range
(`_check_ranges`), which it checks by normalising those two corners as whole
scenarios. That is why it reads `model.scenario` itself (when called, not
when imported: that module imports this one). The range keys are in
`model.scenario_format` (`_RANGES`); substituting drawn values is
`concrete_config`.
"""

from __future__ import annotations

from typing import Any

from .scenario_format import _RANGES, _check_table, _unit
from .scenario_values import ScenarioError, _both, _fmt, _in_unit, _Invalid, _kind

__all__: list[str] = []

# ---------------------------------------------------------------- [ranges]


def _range_table(label: str, table: Any, unit: str) -> dict[str, list]:
    """Each entry of [ranges] checked on its own: a pair [low, high] of valid values (durations in `unit`)."""
    _check_table(label, "ranges", table, _RANGES)
    out = {}
    for key, (stands_for, check) in _RANGES.items():
        if key not in table:
            continue
        value = table[key]
        where = f"{label}: [ranges] {key} = {_fmt(value)}"
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            got = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else _kind(value)
            raise ScenarioError(f"{where}: must be a pair [low, high] standing for {stands_for} (got {got})")
        for end, v in zip(("low", "high"), value):
            try:
                check(v)
            except _Invalid as exc:
                raise ScenarioError(f"{where}: the {end} end {_fmt(v)} {_in_unit(exc, unit)}") from None
        if value[0] > value[1]:
            raise ScenarioError(f"{where}: must be [low, high] with low <= high")
        out[key] = list(value)
    return out


def _check_ranges(label: str, table: Any, cfg: dict) -> dict[str, list]:
    """The normalised [ranges] table of `cfg`; a range must fit the fixed keys at both ends."""
    from .scenario import _normalise, concrete_config  # that module imports this one: read it when called

    ranges = _range_table(label, table, _unit(cfg))
    if "servers" in ranges:
        lo, hi = ranges["servers"]
        loss = cfg["faults"]["server_loss"]
        if loss > 0 and lo < 2:
            raise _both(label, "[ranges] servers", ranges["servers"], "[faults] server_loss", loss,
                        "a fleet that loses its only server has nowhere to reconnect to; "
                        "start the range at 2 or set server_loss = 0")
        skew = cfg["protocol"]["skew"]
        if skew and "skew" not in ranges and lo != hi:
            raise _both(label, "[ranges] servers", ranges["servers"], "[protocol] skew", skew,
                        "skew needs one offset per server; range it too ([ranges] skew) or leave it empty")
        for section, key in (("load", "servers"), ("faults", "loss_servers")):
            bad = [i for i in cfg[section][key] if i >= lo]
            if bad:
                raise _both(label, f"[{section}] {key}", cfg[section][key], "[ranges] servers", ranges["servers"],
                            f"server indices must be from 0 to {lo - 1}, valid for the smallest fleet "
                            f"({_fmt(bad)} out of range)")
    if "load_ms" in ranges:
        levels = cfg["load"]["levels_ms"]
        if len(levels) < 2:
            raise _both(label, "[ranges] load_ms", ranges["load_ms"], "[load] levels_ms", levels,
                        "load_ms ranges the highest load level, above the base level; "
                        "give at least two levels")
        if ranges["load_ms"][0] <= levels[-2]:
            raise _both(label, "[ranges] load_ms", ranges["load_ms"], "[load] levels_ms", levels,
                        f"the highest level must stay above the one below it ({levels[-2]} ms)")
    # Every constraint between keys is monotone in each ranged value, so a
    # fleet valid at both ends is valid everywhere between.
    for end in (0, 1):
        corner = {key: ([v[end]] * _servers_at(cfg, ranges, end) if key == "skew" else v[end])
                  for key, v in ranges.items()}
        try:
            _normalise(label, concrete_config(cfg, corner))
        except ScenarioError as err:
            detail = str(err).removeprefix(f"{label}: ")
            raise ScenarioError(
                f"{label}: [ranges] at the {('low', 'high')[end]} end of every range: {detail}"
            ) from None
    return ranges


def _servers_at(cfg: dict, ranges: dict, end: int) -> int:
    return ranges["servers"][end] if "servers" in ranges else cfg["topology"]["servers"]
