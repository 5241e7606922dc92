"""A safe region in a stack's own terms: the names and unit its settings are written in.

The symbolic engine proves a region over the model's keys (``T0``, ``I0``,
``rtt_max``) in the scenario's time unit. A stack's user thinks in the
library's settings: Socket.IO's ``pingTimeout`` and ``pingInterval`` in
milliseconds, MQTT's keep-alive in seconds, nginx's ``proxy_read_timeout``. A scenario's optional
``[terms]`` table names them (`model.scenario`); this module restates a
region, and the points just inside and outside it, in those names and that
unit. Only the wording changes: the constraint is the one Z3 proved, and a
point's value is the proved one times the unit's factor.
"""

from __future__ import annotations

import re
from fractions import Fraction

from stormcheck.model.params import TIME_UNITS

__all__ = ["in_terms", "terms_doc", "axis_label"]

# [terms] key -> (the model's name in a constraint, the ranged key of a point).
_KEYS = {"timeout": ("T0", "timeout"), "interval": ("I0", "interval"), "rtt": ("rtt_max", "rtt_max")}


def _names(scenario) -> dict[str, str]:
    """Ranged key -> the stack's name, for the keys `[terms]` names."""
    terms = scenario.config.get("terms", {})
    return {ranged: terms[key] for key, (_, ranged) in _KEYS.items() if key in terms}


def _unit(scenario) -> tuple[str, Fraction]:
    """The stack's unit, and how many of it make one of the scenario's."""
    unit = scenario.params.unit
    own = scenario.config.get("terms", {}).get("unit", unit)
    return own, Fraction(TIME_UNITS[own], TIME_UNITS[unit])


def _value(value: int, factor: Fraction) -> str:
    v = value * factor
    return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"


def _constraint(scenario, constraint: str) -> str:
    terms = scenario.config.get("terms", {})
    out = constraint
    for key, (model, _) in _KEYS.items():
        if key in terms:
            out = re.sub(rf"\b{re.escape(model)}\b", terms[key], out)
    if "rtt" in terms:
        # A lower bound reads the smallest RTT choice (`z3_synth_candidates._candidates`).
        out = re.sub(r"\brtt_min\b", f"min {terms['rtt']}", out)
    if "idle_timeout" in terms:
        # A proxy's bound reads "< 60 (nginx's idle timeout)" (`z3_synth_candidates._judge_bounds`).
        out = out.replace("'s idle timeout)", f"'s {terms['idle_timeout']})")
    return out


def _point(scenario, values: dict) -> str:
    names, (own, factor) = _names(scenario), _unit(scenario)
    parts = []
    for key, value in values.items():
        if key in names:
            parts.append(f"{names[key]} = {_value(value, factor)} {own}")
        else:  # a key [terms] does not name keeps the model's name and unit
            parts.append(f"{key} = {value}")
    return ", ".join(parts)


def in_terms(scenario, region) -> list[str]:
    """The lines restating `region` in the scenario's `[terms]` (empty: it has none)."""
    if not scenario.config.get("terms") or not _names(scenario):
        return []
    own, factor = _unit(scenario)
    counted = scenario.params.unit
    lines = [f"  in {scenario.name}'s own terms (settings in {own}):"]
    if region.constraint is not None:
        note = f" (each term in {counted}, as the scenario counts)" if factor != 1 else ""
        lines.append(f"    safe where {_constraint(scenario, region.constraint)}{note}")
    if not region.ranges:
        p = scenario.params
        values = {"timeout": p.t0, "interval": p.i0, "rtt_max": p.rtt_max}
        lines.append(f"    at the scenario's values: {_point(scenario, values)}")
    if region.inside:
        lines.append(f"    just inside: {_point(scenario, region.inside)}")
    if region.outside and region.outside_run is not None:
        # A proxy's or a client's cut is stated as such (`z3_synth_results.Region.cut`), not as a reap.
        cut = region.cut or ""
        what = f": a valid session {cut}" if cut.startswith("cut by") else " reaps a valid session"
        lines.append(f"    outside (a certified run{what}): {_point(scenario, region.outside)}")
    return lines if len(lines) > 1 else []  # nothing proved nor checked: nothing to restate


def terms_doc(scenario, region) -> dict | None:
    """The same for ``--json``: names, unit, constraint and the two points (None: no `[terms]`)."""
    names = _names(scenario)
    if not names:
        return None
    own, factor = _unit(scenario)

    def point(values):
        if values is None:
            return None
        return {names.get(k, k): (float(v * factor) if (v * factor).denominator != 1 else int(v * factor))
                if k in names else v for k, v in values.items()}

    # The constraint's terms and constants are in the scenario's own unit (`constraint_unit`), as the
    # text output says beside it; the two points are converted into the stack's (`unit`).
    return {"names": names, "unit": own, "constraint_unit": scenario.params.unit,
            "constraint": _constraint(scenario, region.constraint) if region.constraint is not None else None,
            "inside": point(region.inside), "outside": point(region.outside)}


def axis_label(scenario, key: str, model: str) -> str:
    """An axis of the region figure: the model's name, and the stack's where `[terms]` gives one."""
    names = _names(scenario)
    unit = scenario.params.unit
    return f"{names[key]} = {model} ({unit})" if key in names else f"{key} {model} ({unit})"
