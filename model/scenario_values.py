"""The checks of single scenario values, and the error every scenario mistake raises.

Each check takes a value as TOML gave it and returns it normalised, or raises
`_Invalid` with the text of what is allowed; the section readers
(`model.scenario_format`) add the file, the ``[section] key`` and the value
to it in a `ScenarioError`. They know no section and no key, so every part of
the scenario format shares them. Durations say their unit with placeholders
that `_in_unit` fills in once the scenario's time unit is known.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any, Callable

from .params import REAPER_PATHS, TIME_UNITS

__all__ = ["ScenarioError"]


class ScenarioError(ValueError):
    """A scenario file or dict that cannot be turned into a fleet.

    The message is meant for the person who wrote the file: where the
    mistake is (file, ``[section] key``), what was given, what is allowed.
    """


# ---------------------------------------------------------------- value checks
# Each check returns the normalised value or raises _Invalid with the text of
# what is allowed; the section reader adds file, key and value to it.


class _Invalid(Exception):
    pass


def _fmt(value: Any) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_fmt, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean; TOML true/false is not 1/0"
    names = {int: "an integer", float: "a float", str: "a string", list: "a list", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Durations are in the scenario's time unit. Their checks say so with these
# placeholders, which `_in_unit` fills in once the unit is known.
_SECONDS, _SECOND = "{seconds}", "{second}"
_UNIT_WORDS = {"s": ("second", "seconds"), "ms": ("millisecond", "milliseconds")}
assert set(_UNIT_WORDS) == set(TIME_UNITS), "a time unit without its words"


def _in_unit(text: Any, unit: str) -> str:
    """`text` (a check's message) with its time placeholders in `unit`'s words."""
    one, many = _UNIT_WORDS[unit]
    return str(text).replace(_SECONDS, many).replace(_SECOND, one)


def _duration(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Mark `check` as a duration's: its default is scaled to the scenario's unit."""
    check.duration = True
    return check


def _scaled(default: Any, check: Callable[[Any], Any] | None, unit: str) -> Any:
    """A key's default in `unit`: the `Params` defaults are in seconds."""
    if not getattr(check, "duration", False):
        return copy.copy(default)
    per = TIME_UNITS[unit]
    return [x * per for x in default] if isinstance(default, list) else default * per


def _whole(lo: int, hi: int | None = None, unit: str = "", note: str = "", above: str = "") -> Callable[[Any], int]:
    # `note` follows any out-of-range value; `above` only one over `hi`.
    allowed = f"must be a whole number{f' of {unit}' if unit else ''} " + (
        f"from {lo} to {hi}" if hi is not None else f">= {lo}"
    )

    def check(value: Any) -> int:
        if not _is_int(value):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        if value < lo:
            raise _Invalid(allowed + note)
        if hi is not None and value > hi:
            raise _Invalid(allowed + note + above)
        return value

    return _duration(check) if unit == _SECONDS else check


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# SCENARIO.DESIGN.PROPERTY.repro.py must fit in 255 bytes: two names and the rest.
_NAME_MAX = 100


def _file_name(value: Any) -> str:
    # Scenario and design names become parts of output file names
    # (SCENARIO.DESIGN.PROPERTY.itf.json): no separators, no leading dot.
    allowed = "must be a name of letters, digits, '.', '_' and '-', starting with a letter or digit"
    if not isinstance(value, str):
        raise _Invalid(f"{allowed} (got {_kind(value)})")
    if not _NAME.fullmatch(value):
        raise _Invalid(allowed)
    if len(value) > _NAME_MAX:  # file systems allow 255 bytes for the whole file name
        raise _Invalid(f"must be at most {_NAME_MAX} characters (got {len(value)}): it becomes part of output file names")
    return value


def _number(bound: int, at_least: bool) -> Callable[[Any], int | float]:
    """A finite number past `bound`: from it on (`at_least`), or above it."""
    allowed = f"must be a number {'>=' if at_least else '>'} {bound}"

    def check(value: Any) -> int | float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        if not math.isfinite(value) or (value < bound if at_least else value <= bound):
            raise _Invalid(allowed + ("" if math.isfinite(value) else " and finite"))
        return value  # kept as written; Fraction(str(x)) is exact for both

    return check


def _number_above(bound: int) -> Callable[[Any], int | float]:
    return _number(bound, at_least=False)


def _whole_list(
    what: str, lo: int | None = 0, *, nonempty=False, distinct=False, increasing=False, sort=False
) -> Callable[[Any], list[int]]:
    allowed = (
        f"must be a {'non-empty ' if nonempty else ''}list of {'distinct ' if distinct else ''}{what}"
        + (f" >= {lo}" if lo is not None else "")
        + (", strictly increasing" if increasing else "")
    )

    def check(value: Any) -> list[int]:
        if not isinstance(value, (list, tuple)):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        for item in value:
            if not _is_int(item):
                raise _Invalid(f"{allowed} ({_fmt(item)} is {_kind(item)})")
            if lo is not None and item < lo:
                raise _Invalid(f"{allowed} ({item} is below {lo})")
        if nonempty and not value:
            raise _Invalid(allowed)
        if distinct and len(set(value)) != len(value):
            raise _Invalid(f"{allowed} (a value is repeated)")
        if increasing and any(a >= b for a, b in zip(value, value[1:])):
            raise _Invalid(allowed)
        return sorted(value) if sort else list(value)

    return _duration(check) if _SECOND in what or _SECONDS in what else check


def _choice(options: tuple[str, ...], extra: str = "") -> Callable[[Any], str]:
    allowed = "must be one of " + ", ".join(map(_fmt, options)) + extra

    def check(value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise _Invalid(allowed)
        return value

    return check


def _text(nonempty: bool) -> Callable[[Any], str]:
    allowed = "must be a non-empty string" if nonempty else "must be a string"

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        if nonempty and not value.strip():
            raise _Invalid(allowed)
        return value

    return check


@_duration
def _offset(value: Any) -> int:
    # A clock offset may be negative: any whole number of time units.
    if not _is_int(value):
        raise _Invalid(f"must be a whole number of {_SECONDS} (got {_kind(value)})")
    return value


def _number_at_least(bound: int) -> Callable[[Any], int | float]:
    return _number(bound, at_least=True)


def _share(closed: bool, zero: bool = False) -> Callable[[Any], float]:
    """A fraction: in (0, 1] (`closed`) or (0, 1); from 0 on with `zero`."""
    allowed = f"must be a number {'>=' if zero else '>'} 0 and {'<=' if closed else '<'} 1"

    def check(value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        low = value >= 0 if zero else value > 0
        if not (math.isfinite(value) and low and (value <= 1 if closed else value < 1)):
            raise _Invalid(allowed)
        return value

    return check


def _paths(value: Any) -> list[str]:
    allowed = "must be a non-empty list of distinct reaper paths from " + ", ".join(map(_fmt, REAPER_PATHS))
    if not isinstance(value, (list, tuple)) or not value:
        raise _Invalid(allowed + ("" if isinstance(value, (list, tuple)) else f" (got {_kind(value)})"))
    if any(v not in REAPER_PATHS or not isinstance(v, str) for v in value) or len(set(value)) != len(value):
        raise _Invalid(allowed)
    return [p for p in REAPER_PATHS if p in value]  # one canonical order


def _both(label: str, a: str, av: Any, b: str, bv: Any, why: str) -> ScenarioError:
    return ScenarioError(f"{label}: {a} = {_fmt(av)} with {b} = {_fmt(bv)}: {why}")
