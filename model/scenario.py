"""Scenarios: named fleets as TOML data files beside the model.

A scenario is to stormcheck what a ``.cfg`` model is to a TLA+ spec: the
protocol lives in `stormcheck.model.fleet`; *which* fleet it runs on (sizes,
constants, load levels, faults, design, search budget) is data. Presets ship
in ``model/scenarios/NAME.toml``; users write their own files in the same
format and pass a path.

Design rules
------------
1. Every value is checked before anything is built, and a mistake raises
   `ScenarioError` naming the file, the key as ``[section] key``, the value
   given and what is allowed. Combinations that cannot be modelled name both
   keys. Nothing is guessed: TOML ``true`` is not 1, ``45.0`` is not 45.
2. Every key except ``[scenario] name`` has a default, taken from the
   `Params`, `Faults`, `Bounds` and `Design` defaults themselves, so a file
   says only what differs and the defaults live in one place.
3. A `Scenario` keeps the *normalised* dict it was built from (every default
   filled in, choice lists sorted). Stored in a trace's metadata, it rebuilds
   the identical scenario with `scenario_from_dict`, even if the preset file
   has changed since.
4. An optional ``[ranges]`` table gives ``[low, high]`` instead of a point
   for a few values (`RANGE_KEYS`). The point values still build `params`
   (the exhaustive engine checks them); the Hypothesis engine draws a value
   from each range per example and `concrete_config` substitutes them,
   giving the plain config a trace stores. Every range is checked like the
   key it stands for, and both its ends must make a valid fleet.
5. ``[scenario] time_unit`` (``"s"``, the default, or ``"ms"``) is the unit
   of every duration of the fleet: each such key's check is marked
   (`_duration`), reads and phrases its value in that unit, and its default
   is the `Params` default scaled to it. Latencies (``*_ms`` keys) stay in
   milliseconds and ``[search] max_seconds`` (wall-clock time) in seconds.
   ``[storm]``, whose simulation counts seconds, is refused in milliseconds.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .params import (
    AFTER_401,
    AFTER_DROP,
    CUTOFF_FROM,
    DESIGNS,
    HOLDS,
    INTERVAL_FROM,
    INTERVAL_TERMS,
    JUDGES,
    LOAD_TRIGGERS,
    PUBLISH_EXPIRED,
    RECORDS,
    REPLIES,
    REAPER_PATHS,
    SESSION_PATHS,
    STORES,
    TIME_UNITS,
    TUNERS,
    Bounds,
    Design,
    Faults,
    Heartbeat,
    Judge,
    Level,
    Params,
    adjuster_advice,
)
from .faults import FAULT_KEYS, FAULTS, least_hung_share
from .load import StormParams
from .policies import POLICIES
from .rollout import CHANGES, PARTS, PICKUPS, SIDES, Phase, Rollout
from .setup import ABANDONED_WORK
from .toml_depth import MAX_NESTING, too_deep

__all__ = [
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "scenario_from_dict",
    "list_presets",
    "preset_names",
    "concrete_config",
    "shipped_names",
    "SHIPPED_FOLDERS",
    "RANGE_KEYS",
    "MAX_FLEET",
]

# Explicit-state search stores every reachable state, and the state is a
# product over clients (and over servers): past 8 of either no search ends.
MAX_FLEET = 8
_PRESET_PREFIX = "preset:"


class ScenarioError(ValueError):
    """A scenario file or dict that cannot be turned into a fleet.

    The message is meant for the person who wrote the file: where the
    mistake is (file, ``[section] key``), what was given, what is allowed.
    """


@dataclass(frozen=True)
class Scenario:
    """A named fleet ready for a checker.

    Attributes
    ----------
    name, description : str
        From ``[scenario]``.
    params : Params
        The fleet, design included.
    bounds : Bounds
        The search budget and stated depth bound (``[search]``).
    source : str
        Where it came from: a file path as given, or ``preset:NAME``. Left out
        of ``==``: the same fleet read from two places is the same scenario.
    config : dict
        The normalised TOML-shaped dict it was built from (plain lists,
        strings and numbers, so JSON can store it). Treat it as read-only.
    """

    name: str
    description: str
    params: Params
    bounds: Bounds
    source: str = field(compare=False)
    config: dict = field(hash=False, repr=False)

    @property
    def design(self) -> Design:
        return self.params.design

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """The ``[ranges]`` table as ``{key: (low, high)}`` (empty: a point scenario)."""
        return {key: (lo, hi) for key, (lo, hi) in self.config.get("ranges", {}).items()}

    def with_design(self, name: str) -> "Scenario":
        """The same fleet under the named design `name` (one of `DESIGNS`).

        Examples
        --------
        >>> load_scenario("gitter-2015").with_design("fleet-wide").design.tuner
        'fleet'
        """
        if "rollout" in self.config and (name not in DESIGNS or DESIGNS[name].tuner != "static"):
            raise ScenarioError(
                f"{self.source}: design {_fmt(name)} with [rollout]: a rollout runs under a static design "
                f"(its configuration changes only as the rollout says); use design \"off\""
            )
        config = copy.deepcopy(self.config)
        config["scenario"]["design"] = name
        config.pop("design", None)  # a [design] table belongs to "custom" only
        return replace(self, params=self.params.with_design(_named_design(name, self.source)), config=config)


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


def _number_above(bound: int) -> Callable[[Any], int | float]:
    allowed = f"must be a number > {bound}"

    def check(value: Any) -> int | float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        if not math.isfinite(value) or value <= bound:
            raise _Invalid(allowed + ("" if math.isfinite(value) else " and finite"))
        return value  # kept as written; Fraction(str(x)) is exact for both

    return check


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


# ------------------------------------------------------------------ the format
# Section -> key -> (default, check), in the order the file format lists them
# (messages list allowed keys in this order). Defaults come from the frozen
# parameter objects so that a file that says nothing means `Params()`.

_REQUIRED = object()
_P, _F, _B, _D = Params(), Faults(), Bounds(), Design("custom")
# adjuster_advice's own default threshold, not a copy of the number.
_THRESHOLD_MS = inspect.signature(adjuster_advice).parameters["threshold_ms"].default
_SIZE_WHY = f" (the state space is a product over the fleet: past {MAX_FLEET} no explicit-state search finishes)"

_SPEC: dict[str, dict[str, tuple[Any, Callable[[Any], Any]]]] = {
    "scenario": {
        "name": (_REQUIRED, _file_name),
        "description": ("", _text(nonempty=False)),
        "design": (_P.design.name, _choice((*DESIGNS, "custom"), ' ("custom" with a [design] table)')),
        "time_unit": (_P.unit, _choice(tuple(TIME_UNITS), " (the unit of every duration in the file: timeouts, "
                                       "intervals, rtt, retry, fault durations, delays)")),
    },
    "topology": {
        "servers": (_P.servers, _whole(1, MAX_FLEET, above=_SIZE_WHY)),
        "clients": (_P.clients, _whole(1, MAX_FLEET, above=_SIZE_WHY)),
    },
    "protocol": {
        "timeout": (_P.t0, _whole(1, unit=_SECONDS)),
        "interval": (_P.i0, _whole(0, unit=_SECONDS)),
        "rtt": (list(_P.rtt), _whole_list(f"whole numbers of {_SECONDS}", nonempty=True, distinct=True, sort=True)),
        "retry": (_P.retry, _whole(1, unit=_SECONDS)),
        "skew": (list(_P.skew), _whole_list(f"whole-{_SECOND} clock offsets, one per server (or empty)", None)),
        "publish_multiplier": (float(_P.publish_mult), _number_above(1)),
        "gc_multiplier": (float(_P.gc_mult), _number_above(1)),
        "publish_expired": (_P.publish_expired, _choice(PUBLISH_EXPIRED)),
    },
    "load": {
        "levels_ms": (
            [level.avg_ms for level in _P.levels],
            _whole_list("whole numbers of ms", nonempty=True, increasing=True),
        ),
        "servers": (list(_P.load_servers), _whole_list("server indices (empty: all)", distinct=True, sort=True)),
        "trigger": (_P.load_trigger, _choice(LOAD_TRIGGERS)),
        "threshold_ms": (_THRESHOLD_MS, _whole(0, unit="ms")),
    },
    "faults": {
        "server_loss": (_F.server_loss, _whole(0)),
        "loss_duration": (_F.loss_duration, _whole(1, unit=_SECONDS)),
        "loss_servers": (list(_F.loss_servers), _whole_list("server indices (empty: all)", distinct=True, sort=True)),
        "client_crash": (_F.client_crash, _whole(0)),
        "client_cut": (_F.client_cut, _whole(0)),
        "cut_duration": (_F.cut_duration, _whole(1, unit=_SECONDS)),
    },
    "design": {
        "tuner": (_D.tuner, _choice(TUNERS)),
        "propagation_delay": (_D.propagation_delay, _whole(0, unit=_SECONDS)),
        "judge": (_D.judge, _choice(JUDGES)),
        "record": (_D.record, _choice(RECORDS)),
        "reply_advice": (_D.reply_advice, _choice(REPLIES)),
        "session_paths": (_D.session_paths, _choice(SESSION_PATHS)),
        "name": (_D.name, _file_name),
    },
    "search": {
        "max_states": (_B.max_states, _whole(1)),
        "max_seconds": (_B.max_seconds, _number_above(0)),
        "max_depth": (_B.max_depth, _whole(0, note=" (0: unbounded)")),
    },
}


# Keys added after files and traces were written: left out of the normalised
# config when the file does not give them, so older configs stay as they were.
_SPARSE = {("protocol", "publish_expired"), ("scenario", "time_unit"), ("storm", "setup_deadline"),
           ("storm", "abandoned_work"), ("storm", "queue_limit"), ("storm", "breaker_after"),
           ("storm", "breaker_open")}
_SPARSE |= {("storm", key) for key in ("fault", "fault_for", "restart_batch", "restart_pace", "restart_down",
                                       "hung_share", "capacity_left", "reply_share")}


@_duration
def _offset(value: Any) -> int:
    # A clock offset may be negative: any whole number of time units.
    if not _is_int(value):
        raise _Invalid(f"must be a whole number of {_SECONDS} (got {_kind(value)})")
    return value


# [ranges]: key -> (the [section] key it stands for, check of each end).
# Ordered so that `servers` is drawn before `skew` (one offset per server).
_RANGES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "servers": ("[topology] servers", _SPEC["topology"]["servers"][1]),
    "clients": ("[topology] clients", _SPEC["topology"]["clients"][1]),
    "timeout": ("[protocol] timeout", _SPEC["protocol"]["timeout"][1]),
    "interval": ("[protocol] interval", _SPEC["protocol"]["interval"][1]),
    "rtt_max": ("the largest of [protocol] rtt", _whole(0, unit=_SECONDS)),  # others >= it dropped
    "skew": ("each server's [protocol] skew", _offset),
    "load_ms": ("the highest of [load] levels_ms", _whole(0, unit="ms")),
    "loss_duration": ("[faults] loss_duration", _SPEC["faults"]["loss_duration"][1]),
    "cut_duration": ("[faults] cut_duration", _SPEC["faults"]["cut_duration"][1]),
}
RANGE_KEYS: tuple[str, ...] = tuple(_RANGES)
def _number_at_least(bound: int) -> Callable[[Any], int | float]:
    allowed = f"must be a number >= {bound}"

    def check(value: Any) -> int | float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Invalid(f"{allowed} (got {_kind(value)})")
        if not math.isfinite(value) or value < bound:
            raise _Invalid(allowed + ("" if math.isfinite(value) else " and finite"))
        return value

    return check


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


# Optional sections: absent from a file, absent from its normalised config
# (so the configs of files written before they existed do not change).
_H = Heartbeat()
_OPTIONAL: dict[str, dict[str, tuple[Any, Callable[[Any], Any]]]] = {
    "heartbeat": {
        "hold": (_H.hold, _choice(HOLDS)),
        "interval_from": (_H.interval_from, _choice(INTERVAL_FROM)),
        "cutoff_from": (_H.cutoff_from, _choice(CUTOFF_FROM)),
        "store": (_H.store, _choice(STORES)),
        "paths": (list(_H.paths), _paths),
        # Absent: the [protocol] multipliers. Given: every path's multiplier of T.
        "multiplier": (None, _number_above(0)),
        "interval_multiplier": (float(_H.interval_multiplier), _number_at_least(0)),
        # Absent: "judged" (and absent from the normalised config, as before the key existed).
        "interval_term": (_H.interval_term, _choice(INTERVAL_TERMS)),
        # Absent: no lower bound (and absent from the normalised config).
        "min_spacing": (_H.min_spacing, _whole(0, unit=_SECONDS)),
        "strikes": (_H.strikes, _whole(0)),
        # Absent: no resumption (and absent from the normalised config).
        "resume_window": (_H.resume_window, _whole(0, unit=_SECONDS)),
    },
}
# [rollout]: configuration B's timeout and interval (absent: A's, from
# [protocol]), how long a restarted server is away, and the phases.
_FROM_A = object()
_ROLLOUT_KEYS = {
    "timeout": (_FROM_A, _whole(1, unit=_SECONDS)),
    "interval": (_FROM_A, _whole(0, unit=_SECONDS)),
    "restart": (0, _whole(0, unit=_SECONDS)),
    "phases": (_REQUIRED, None),
}
_P0 = Phase("servers")
_PHASE_SPEC: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "side": (_REQUIRED, _choice(SIDES)),
    "part": (_P0.part, _choice(PARTS)),
    "batch": (_P0.batch, _whole(1, MAX_FLEET)),
    "pace": (_P0.pace, _whole(0, unit=_SECONDS)),
    "pickup": (_P0.pickup, _choice(PICKUPS)),
    "spread": (_P0.spread, _whole(0, unit=_SECONDS)),
    "change": (_P0.change, _choice(CHANGES)),
}
_SERVER_ONLY, _CLIENT_ONLY = ("part", "batch", "pace", "change"), ("pickup", "spread")

# [storm]: the storm simulation's fleet and load model (model/load.py). Only
# `stormcheck storm` reads it; absent, the simulation's defaults apply.
_S = StormParams()
_STORM_SPEC: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "clients": (_S.clients, _whole(1, 10_000_000)),
    "channels": (_S.load.channels, _whole(1, 1000)),
    "capacity": (_S.load.capacity, _number_above(0)),
    "handshake_ms": (_S.load.handshake_ms, _number_at_least(0)),
    "subscribe_ms": (_S.load.subscribe_ms, _number_at_least(0)),
    "churn_per_hour": (_S.churn_per_hour, _number_at_least(0)),
    "publish_every": (_S.publish_every, _whole(1, unit="seconds")),
    "policy": (_S.policy.name, _choice(POLICIES, " (fixed waits [protocol] retry)")),
    "base": (_S.policy.base, _whole(1, unit="seconds")),
    "cap": (_S.policy.cap, _whole(1, unit="seconds")),
    "budget": (_S.budget, _whole(0, note=" (0: no budget)")),
    "budget_window": (_S.budget_window, _whole(1, unit="seconds")),
    "admission": (_S.admission, _number_at_least(0)),
    # The clients' setup deadline and what a server does under it (model/setup.py).
    "setup_deadline": (_S.setup.deadline, _whole(0, unit="seconds", note=" (0: no deadline)")),
    "abandoned_work": (_S.setup.abandoned_work, _choice(ABANDONED_WORK)),
    "queue_limit": (_S.setup.queue_limit, _whole(0, note=" (setups queued per server; 0: no limit)")),
    # The clients' circuit breaker (model/policies.py).
    "breaker_after": (_S.policy.breaker_after, _whole(0, note=" (failed attempts in a row; 0: no breaker)")),
    "breaker_open": (_S.policy.breaker_open, _whole(1, unit="seconds")),
    # The run's fault (model/faults.py): the scenario's server loss by default.
    "fault": (_S.fault.kind, _choice(FAULTS)),
    "fault_for": (_S.fault.fault_for, _whole(1, unit="seconds")),
    "restart_batch": (_S.fault.restart_batch, _whole(1, note=" (servers restarted together)")),
    "restart_pace": (_S.fault.restart_pace, _whole(1, unit="seconds")),
    "restart_down": (_S.fault.restart_down, _whole(1, unit="seconds")),
    "hung_share": (_S.fault.hung_share, _share(closed=True)),
    "capacity_left": (_S.fault.capacity_left, _share(closed=False)),
    # How much of a server's queued work a reply waits behind (model/load.py).
    "reply_share": (_S.load.reply_share, _share(closed=True, zero=True)),
    "fault_at": (_S.fault_at, _whole(0, unit="seconds")),
    "horizon": (_S.horizon, _whole(1, 30 * 86400, unit="seconds")),
    "subside_within": (_S.subside_within, _whole(1, unit="seconds")),
}
_OPTIONAL["storm"] = _STORM_SPEC
# [client]: what Faye's client does after a socket drop and after a 401
# (Gitter's 2015 client by default; the stock Faye 1.4.3 client otherwise).
_OPTIONAL["client"] = {
    "after_drop": (_P.after_drop, _choice(AFTER_DROP)),
    "after_401": (_P.after_401, _choice(AFTER_401)),
}

# [terms]: what a stack calls the model's timeout, interval and round trip, and
# the unit its settings are written in; `idle_timeout`, what its proxy calls
# its idle timeout ([[proxy]]). Only synth and the report read it: they
# state a region and its points in these names (`stormcheck.terms`).
_OPTIONAL["terms"] = {
    "timeout": (None, _text(nonempty=True)),
    "interval": (None, _text(nonempty=True)),
    "rtt": (None, _text(nonempty=True)),
    "idle_timeout": (None, _text(nonempty=True)),
    "unit": (None, _choice(tuple(TIME_UNITS))),
}
_SPARSE |= {("terms", key) for key in _OPTIONAL["terms"]}

_SECTIONS = (*_SPEC, *_OPTIONAL, "rollout", "ranges")
_SECTIONS += ("judge", "proxy")  # arrays of tables: [[judge]], [[proxy]]


def _check_table(label: str, name: str, table: Any, allowed: dict) -> None:
    """`table` must be a TOML table whose keys are all in `allowed`."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{label}: {name} = {_fmt(table)}: must be a table [{name}] (got {_kind(table)})")
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise ScenarioError(
                f"{label}: [{name}] {key}: unknown key; allowed keys in [{name}]: {', '.join(allowed)}"
                + (f". Did you mean {hint[0]}?" if hint else "")
            )


def _section(label: str, raw: dict, name: str, unit: str = "s") -> dict:
    """Section `name` of `raw`, every key checked and every default filled in (durations in `unit`)."""
    table = raw.get(name, {})
    spec = _SPEC[name] if name in _SPEC else _OPTIONAL[name]
    _check_table(label, name, table, spec)
    out = {}
    for key, (default, check) in spec.items():
        if key not in table:
            if (name, key) in _SPARSE:
                continue
            if default is _REQUIRED:
                # Only [scenario] name: results and traces are labelled by it.
                raise ScenarioError(f"{label}: [{name}] {key}: missing; required, a non-empty string")
            out[key] = _scaled(default, check, unit)
            continue
        try:
            out[key] = check(table[key])
        except _Invalid as exc:
            raise ScenarioError(f"{label}: [{name}] {key} = {_fmt(table[key])}: {_in_unit(exc, unit)}") from None
    return out


def _unit(cfg: dict) -> str:
    """The time unit of a normalised config (absent: seconds)."""
    return cfg["scenario"].get("time_unit", _P.unit)


# ------------------------------------------------------ combinations of keys


def _both(label: str, a: str, av: Any, b: str, bv: Any, why: str) -> ScenarioError:
    return ScenarioError(f"{label}: {a} = {_fmt(av)} with {b} = {_fmt(bv)}: {why}")


def _check_fleet(label: str, cfg: dict) -> None:
    """Checks that need more than one key: each error names all of them."""
    servers = cfg["topology"]["servers"]
    faults, load, protocol = cfg["faults"], cfg["load"], cfg["protocol"]
    if faults["server_loss"] > 0 and servers < 2:
        raise _both(label, "[faults] server_loss", faults["server_loss"], "[topology] servers", servers,
                    "a fleet that loses its only server has nowhere to reconnect to; "
                    "use servers >= 2 or server_loss = 0")
    if protocol["skew"] and len(protocol["skew"]) != servers:
        raise _both(label, "[protocol] skew", protocol["skew"], "[topology] servers", servers,
                    f"skew needs one offset per server ({servers} values), or none")
    for section, key in (("load", "servers"), ("faults", "loss_servers")):
        bad = [i for i in cfg[section][key] if i >= servers]
        if bad:
            raise _both(label, f"[{section}] {key}", cfg[section][key], "[topology] servers", servers,
                        f"server indices must be from 0 to {servers - 1} ({_fmt(bad)} out of range)")
    # Level 0 is the base level: fleet.py starts every server there and
    # Params requires it to advise exactly (timeout, interval).
    levels, threshold = load["levels_ms"], load["threshold_ms"]
    if levels[0] > threshold:
        raise _both(label, "[load] levels_ms", levels, "[load] threshold_ms", threshold,
                    f"the first level is the base level and must be <= threshold_ms ({threshold}), "
                    "where the adjuster advises exactly (timeout, interval)")
    advice = [adjuster_advice(ms, protocol["timeout"], protocol["interval"], threshold, _unit(cfg)) for ms in levels]
    for (ms0, a0), (ms1, a1) in zip(zip(levels, advice), zip(levels[1:], advice[1:])):
        if a0 == a1:
            raise _both(label, "[load] levels_ms", levels, "[load] threshold_ms", threshold,
                        f"{ms1} ms advises (T, I) = {a1}, the same as {ms0} ms; "
                        "a level that changes no advice only adds states")


def _check_design(label: str, raw: dict, cfg: dict) -> None:
    """A [design] table goes with design = "custom", and only with it."""
    chosen = cfg["scenario"]["design"]
    if chosen != "custom":
        if "design" in raw:
            raise ScenarioError(
                f"{label}: [design]: only allowed with [scenario] design = \"custom\" "
                f"(design is {_fmt(chosen)}); remove the table or set design = \"custom\""
            )
        return
    if "design" not in raw:
        raise ScenarioError(
            f"{label}: [scenario] design = \"custom\": needs a [design] table; "
            f"allowed keys in [design]: {', '.join(_SPEC['design'])}"
        )
    d = cfg["design"] = _section(label, raw, "design", _unit(cfg))
    if d["propagation_delay"] > 0 and d["tuner"] != "fleet":
        raise _both(label, "[design] propagation_delay", d["propagation_delay"], "[design] tuner", d["tuner"],
                    'a propagation delay applies only to tuner = "fleet"; set propagation_delay = 0 or tuner = "fleet"')
    # record and session_paths only say how a *recorded* timeout is used; with
    # judge = "server" nothing is recorded, so a non-default value is a mistake
    # in the user's picture of the design, not a harmless no-op.
    for key in ("record", "session_paths"):
        if d["judge"] == "server" and d[key] != _SPEC["design"][key][0]:
            raise _both(label, f"[design] {key}", d[key], "[design] judge", d["judge"],
                        f'{key} has effect only with judge = "session"; remove it or set judge = "session"')
    # A staged rollout's bookkeeping lives in the session's refresh level,
    # which reapers judging by the session would read as a timeout.
    if d["tuner"] == "fleet-staged" and d["judge"] == "session":
        raise _both(label, "[design] tuner", d["tuner"], "[design] judge", d["judge"],
                    'a staged rollout is modelled with reapers that judge by server; '
                    'set judge = "server" or another tuner')
    # Results and traces are labelled by design name; a custom design under a
    # shipped name would be mistaken for it.
    if d["name"] in DESIGNS:
        raise ScenarioError(
            f"{label}: [design] name = {_fmt(d['name'])}: names a shipped design; pick another name, "
            f"or use [scenario] design = {_fmt(d['name'])} without a [design] table"
        )


# ------------------------------------------------- [heartbeat] and [rollout]


def _check_heartbeat(label: str, raw: dict, cfg: dict) -> dict:
    """The [heartbeat] table: a stack's heartbeat rules (defaults: Faye's)."""
    hb = _section(label, raw, "heartbeat")
    if "interval_term" not in raw["heartbeat"]:
        del hb["interval_term"]
    elif hb["interval_term"] == "in-use" and (
            hb["interval_from"] == "client" or (hb["cutoff_from"], hb["store"]) != ("server", "local")):
        raise ScenarioError(
            f'{label}: [heartbeat] interval_term = "in-use" with interval_from = {_fmt(hb["interval_from"])}, '
            f'cutoff_from = {_fmt(hb["cutoff_from"])}, store = {_fmt(hb["store"])}: the interval in use is the '
            "judging server's own setting, the one it pings at or hands out; it needs interval_from = \"server\" "
            'or "handshake", cutoff_from = "server" and store = "local"'
        )
    for key in ("min_spacing", "strikes", "resume_window"):
        if key not in raw["heartbeat"]:
            del hb[key]
    if hb.get("resume_window") and hb["store"] != "local":
        raise ScenarioError(
            f"{label}: [heartbeat] resume_window = {hb['resume_window']} with store = {_fmt(hb['store'])}: a shared "
            "store keeps every session until a reaper takes it; resumption is for sessions that live with their "
            'socket (store = "local"); for a client that retries on its old id use [client] after_drop = "same-id"')
    if "strikes" in hb and not hb.get("min_spacing"):
        raise ScenarioError(f"{label}: [heartbeat] strikes = {hb['strikes']} without min_spacing: strikes count "
                            "heartbeats that come sooner than min_spacing; give min_spacing too")
    if hb.get("min_spacing") and (hb["hold"], hb["store"]) != ("none", "local"):
        raise ScenarioError(
            f"{label}: [heartbeat] min_spacing = {hb['min_spacing']} with hold = {_fmt(hb['hold'])}, store = "
            f"{_fmt(hb['store'])}: the server holding a connection counts its early pings, so it needs "
            'hold = "none" (pings answered at once) and store = "local"')
    if "multiplier" not in raw["heartbeat"]:
        del hb["multiplier"]
    else:
        # A [protocol] multiplier left at its default (as a stored, normalised
        # config has it) does not conflict; any other value would be ignored.
        proto = raw.get("protocol", {})
        given = [k for k in ("publish_multiplier", "gc_multiplier") if k in proto and proto[k] != _SPEC["protocol"][k][0]]
        if given:
            raise _both(label, "[heartbeat] multiplier", hb["multiplier"], f"[protocol] {given[0]}",
                        raw["protocol"][given[0]],
                        "the [heartbeat] multiplier replaces the [protocol] multipliers; give one or the other")
    return hb


def _check_rollout(label: str, table: Any, cfg: dict) -> dict:
    """The [rollout] table: configuration B and the phases that bring it to the fleet."""
    _check_table(label, "rollout", table, _ROLLOUT_KEYS)
    proto = cfg["protocol"]
    out = {}
    for key, (default, check) in _ROLLOUT_KEYS.items():
        if key == "phases":
            continue
        if key not in table:
            out[key] = proto[key] if default is _FROM_A else _scaled(default, check, _unit(cfg))
            continue
        try:
            out[key] = check(table[key])
        except _Invalid as exc:
            raise ScenarioError(f"{label}: [rollout] {key} = {_fmt(table[key])}: {_in_unit(exc, _unit(cfg))}") from None
    if (out["timeout"], out["interval"]) == (proto["timeout"], proto["interval"]):
        raise ScenarioError(
            f"{label}: [rollout] timeout = {out['timeout']}, interval = {out['interval']}: configuration B "
            f"must differ from A ([protocol] timeout = {proto['timeout']}, interval = {proto['interval']})"
        )
    design = cfg.get("design", {}).get("tuner") or DESIGNS[cfg["scenario"]["design"]].tuner
    if design != "static":
        raise ScenarioError(
            f"{label}: [rollout] with [scenario] design = {_fmt(cfg['scenario']['design'])}: a rollout is the "
            'only change of configuration in its run; use design = "off" (or a custom design with tuner = "static")'
        )
    if cfg["load"]["levels_ms"] != [0]:
        raise ScenarioError(
            f"{label}: [rollout] with [load] levels_ms = {_fmt(cfg['load']['levels_ms'])}: a rollout's levels are "
            "its two configurations, A and B; leave levels_ms at [0]"
        )
    if "phases" not in table:
        raise ScenarioError(f"{label}: [rollout] phases: missing; add at least one [[rollout.phases]] table "
                            f"with side = \"servers\" or \"clients\"")
    phases = table["phases"]
    if not isinstance(phases, list) or not phases or not all(isinstance(p, dict) for p in phases):
        raise ScenarioError(f"{label}: [rollout] phases = {_fmt(phases)}: must be a non-empty list of tables "
                            "([[rollout.phases]] in TOML)")
    out["phases"] = [_check_phase(label, i, p, cfg) for i, p in enumerate(phases, start=1)]
    _check_phase_order(label, out["phases"], cfg)
    return out


def _check_phase(label: str, i: int, table: dict, cfg: dict) -> dict:
    where = f"{label}: [[rollout.phases]] #{i}"
    for key in table:
        if key not in _PHASE_SPEC:
            raise ScenarioError(f"{where}: {key}: unknown key; allowed keys: {', '.join(_PHASE_SPEC)}")
    if "side" not in table:
        raise ScenarioError(f"{where}: side: missing; required, one of {', '.join(map(_fmt, SIDES))}")
    out = {}
    for key, (default, check) in _PHASE_SPEC.items():
        if key not in table:
            out[key] = _scaled(default, check, _unit(cfg))
            continue
        try:
            out[key] = check(table[key])
        except _Invalid as exc:
            raise ScenarioError(f"{where} {key} = {_fmt(table[key])}: {_in_unit(exc, _unit(cfg))}") from None
    wrong = _CLIENT_ONLY if out["side"] == "servers" else _SERVER_ONLY
    for key in wrong:
        if key in table:
            raise ScenarioError(f"{where} {key} = {_fmt(table[key])} with side = {_fmt(out['side'])}: "
                                f"{key} applies only to side = {_fmt('clients' if key in _CLIENT_ONLY else 'servers')}")
    if out["side"] == "servers" and out["batch"] > cfg["topology"]["servers"]:
        raise _both(label, f"[[rollout.phases]] #{i} batch", out["batch"], "[topology] servers",
                    cfg["topology"]["servers"], "a batch cannot restart more servers than the fleet has")
    if out["side"] == "clients" and out["pickup"] != "release" and "spread" in table:
        raise ScenarioError(f"{where} spread = {_fmt(table['spread'])} with pickup = {_fmt(out['pickup'])}: "
                            'spread applies only to pickup = "release"')
    # Normalised: only the keys that apply, so the dict reads back unchanged
    # (a restart, the default change, is left out as before the key existed).
    keep = ("side", *(_SERVER_ONLY if out["side"] == "servers" else _CLIENT_ONLY))
    if out["side"] == "servers" and out["change"] == "restart":
        keep = keep[:-1]
    if out["side"] == "clients" and out["pickup"] != "release":
        keep = ("side", "pickup")
    return {key: out[key] for key in keep}


def _check_phase_order(label: str, phases: list[dict], cfg: dict) -> None:
    """Each part of the fleet moves from A to B once: a second move would change nothing."""
    hb = cfg.get("heartbeat", {})
    owned = "client" in (hb.get("interval_from"), hb.get("cutoff_from"))
    moved: dict[str, int] = {}
    for i, p in enumerate(phases, start=1):
        if p["side"] == "clients":
            if not owned:
                raise ScenarioError(
                    f"{label}: [[rollout.phases]] #{i} side = \"clients\": in this stack clients take their "
                    f"interval and cutoff from the server ([heartbeat] interval_from and cutoff_from are not "
                    f"\"client\"), so a clients phase would change nothing; roll the servers out instead"
                )
            parts = ["clients"]
        else:
            parts = ["judge", "advice"] if p["part"] == "both" else [p["part"]]
        for part in parts:
            if part in moved:
                raise ScenarioError(
                    f"{label}: [[rollout.phases]] #{i}: moves the {part} to B, which phase #{moved[part]} "
                    "already did; each part of the fleet moves once"
                )
            moved[part] = i


# ------------------------------------------------- [[judge]] and [[proxy]]
# Judges of a connection beside the servers' reapers (`Judge`). Each keeps
# its own cutoff source, so one session may have several.

_JUDGE_SPEC: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "name": ("client", _file_name),
    "side": ("client", _choice(("client",), ' (a proxy is a [[proxy]] table)')),
    "cutoff_from": ("handshake", _choice(("handshake",))),
    "multiplier": (1, _number_at_least(0)),
    "interval_multiplier": (1, _number_at_least(0)),
}
_PROXY_SPEC: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "name": ("proxy", _file_name),
    "idle_timeout": (_REQUIRED, _whole(1, unit=_SECONDS)),
    "resets": ("any-frame", _choice(("any-frame", "data-only"))),
    "counts_pings": (True, None),
}


def _check_tables(label: str, raw: dict, name: str, spec: dict, unit: str) -> list[dict]:
    """An array of tables ([[name]]), each checked against `spec`; defaults filled in (durations in `unit`)."""
    tables = raw[name]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ScenarioError(f"{label}: {name} = {_fmt(tables)}: must be a non-empty list of tables ([[{name}]] in TOML)")
    hb = raw.get("heartbeat", {})
    if hb.get("hold", _H.hold) != "none":
        raise ScenarioError(
            f"{label}: [[{name}]] with [heartbeat] hold = {_fmt(hb.get('hold', _H.hold))}: such a judge measures the "
            'silence since the last heartbeat, which only a ping/pong stack (hold = "none") has: a held '
            "long-poll is silent for its whole hold"
        )
    out = []
    for i, table in enumerate(tables, start=1):
        where = f"{label}: [[{name}]] #{i}"
        for key in table:
            if key not in spec:
                raise ScenarioError(f"{where}: {key}: unknown key; allowed keys: {', '.join(spec)}")
        entry = {}
        for key, (default, check) in spec.items():
            if key not in table:
                if default is _REQUIRED:
                    raise ScenarioError(f"{where}: {key}: missing; required")
                entry[key] = _scaled(default, check, unit)
                continue
            if check is None:  # a boolean
                if not isinstance(table[key], bool):
                    raise ScenarioError(f"{where} {key} = {_fmt(table[key])}: must be true or false")
                entry[key] = table[key]
                continue
            try:
                entry[key] = check(table[key])
            except _Invalid as exc:
                raise ScenarioError(f"{where} {key} = {_fmt(table[key])}: {_in_unit(exc, unit)}") from None
        out.append(entry)
    return out


def _check_proxies(label: str, raw: dict, unit: str) -> list[dict]:
    proxies = _check_tables(label, raw, "proxy", _PROXY_SPEC, unit)
    for i, px in enumerate(proxies, start=1):
        if px["resets"] == "data-only" or not px["counts_pings"]:
            key, value = ("resets", "data-only") if px["resets"] == "data-only" else ("counts_pings", False)
            raise ScenarioError(
                f"{label}: [[proxy]] #{i} {key} = {_fmt(value)}: not modelled: this stack's heartbeats are pings, "
                "which such a proxy does not count, and the model has no other traffic, so it would cut every "
                'connection idle_timeout after it opened; use resets = "any-frame", counts_pings = true'
            )
    return proxies


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


def concrete_config(config: dict, drawn: dict) -> dict:
    """`config` with the values `drawn` from its ``[ranges]`` substituted, and no ranges.

    Parameters
    ----------
    config : dict
        A normalised config (`Scenario.config`); it is not modified.
    drawn : dict
        A value per ranged key: an int, or for ``skew`` one offset per server.
        ``rtt_max`` replaces the largest RTT choice (other choices not below
        it are dropped); ``load_ms`` replaces the highest load level.

    Examples
    --------
    >>> base = load_scenario("gitter-2015").config
    >>> c = concrete_config(base, {"timeout": 30, "rtt_max": 4, "load_ms": 20000})
    >>> c["protocol"]["timeout"], c["protocol"]["rtt"], c["load"]["levels_ms"]
    (30, [0, 4], [0, 20000])
    >>> concrete_config(base, {"rtt_max": 0})["protocol"]["rtt"]
    [0]
    """
    out = copy.deepcopy(config)
    out.pop("ranges", None)
    places = {
        "servers": ("topology", "servers"), "clients": ("topology", "clients"),
        "timeout": ("protocol", "timeout"), "interval": ("protocol", "interval"),
        "skew": ("protocol", "skew"),
        "loss_duration": ("faults", "loss_duration"), "cut_duration": ("faults", "cut_duration"),
    }
    for key, value in drawn.items():
        if key in places:
            section, name = places[key]
            out[section][name] = list(value) if key == "skew" else value
        elif key == "rtt_max":
            below = out["protocol"]["rtt"][:-1]  # the largest choice is replaced
            out["protocol"]["rtt"] = sorted({x for x in below if x < value} | {value})
        elif key == "load_ms":
            out["load"]["levels_ms"][-1] = value
        else:
            raise KeyError(f"{key!r} is not a range key; range keys: {', '.join(_RANGES)}")
    return out


def _normalise(label: str, raw: Any) -> dict:
    """The checked, defaults-filled config dict of a parsed file (or dict)."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{label}: must be a table of sections (got {_kind(raw)})")
    for key, value in raw.items():
        if key in _SECTIONS:
            continue
        if isinstance(value, dict):
            raise ScenarioError(f"{label}: [{key}]: unknown section; allowed sections: {', '.join(_SECTIONS)}")
        homes = [f"[{s}]" for s, keys in _SPEC.items() if key in keys] + (["[ranges]"] if key in _RANGES else [])
        raise ScenarioError(
            f"{label}: {key} = {_fmt(value)}: keys belong in a section"
            + (f"; {key} goes in {' or '.join(homes)}" if homes else f"; allowed sections: {', '.join(_SECTIONS)}")
        )
    if "scenario" not in raw:
        raise ScenarioError(f'{label}: [scenario]: missing; every scenario needs one, with at least name = "..."')
    cfg = {"scenario": _section(label, raw, "scenario")}
    unit = _unit(cfg)
    cfg |= {name: _section(label, raw, name, unit) for name in _SPEC if name not in ("scenario", "design")}
    _check_fleet(label, cfg)
    _check_design(label, raw, cfg)
    if "heartbeat" in raw:
        cfg["heartbeat"] = _check_heartbeat(label, raw, cfg)
    if "rollout" in raw:
        cfg["rollout"] = _check_rollout(label, raw["rollout"], cfg)
    if "judge" in raw:
        cfg["judge"] = _check_tables(label, raw, "judge", _JUDGE_SPEC, unit)
    if "proxy" in raw:
        cfg["proxy"] = _check_proxies(label, raw, unit)
    if "storm" in raw:
        cfg["storm"] = _check_storm(label, raw, cfg)
    if "client" in raw:
        cfg["client"] = _section(label, raw, "client")
    if "terms" in raw:
        cfg["terms"] = _section(label, raw, "terms")
    _check_faye_stack(label, cfg)
    if "ranges" in raw:
        cfg["ranges"] = _check_ranges(label, raw["ranges"], cfg)
    return cfg


def _check_faye_stack(label: str, cfg: dict) -> None:
    """The published Faye stack's keys need the Faye rules they change."""
    expired = cfg["protocol"].get("publish_expired", _P.publish_expired)
    hb = cfg.get("heartbeat")
    if hb is not None and expired != _P.publish_expired and "publish" not in hb["paths"]:
        raise _both(label, "[protocol] publish_expired", expired, "[heartbeat] paths", hb["paths"],
                    'what the publish path does to an expired subscriber needs a publish path; '
                    'add "publish" to paths or remove publish_expired')
    drop = cfg.get("client", {}).get("after_drop", _P.after_drop)
    if hb is not None and drop != _P.after_drop and hb["store"] == "local":
        raise _both(label, "[client] after_drop", drop, "[heartbeat] store", hb["store"],
                    "with sessions local to their socket a new socket is a new session, so no retry "
                    'keeps the same id; set after_drop = "rehandshake" or store = "shared"')


def _check_storm(label: str, raw: dict, cfg: dict) -> dict:
    if _unit(cfg) != "s":
        raise ScenarioError(
            f'{label}: [storm] with [scenario] time_unit = {_fmt(_unit(cfg))}: the storm simulation counts whole '
            'seconds ([storm] keys are seconds, and it steps the fleet a second at a time); remove [storm], or '
            'state the fleet in seconds (time_unit = "s") to simulate it'
        )
    storm = _section(label, raw, "storm")
    if storm["cap"] < storm["base"]:
        raise _both(label, "[storm] cap", storm["cap"], "[storm] base", storm["base"],
                    "the backoff cap must be at least its base")
    if storm["fault_at"] >= storm["horizon"]:
        raise _both(label, "[storm] fault_at", storm["fault_at"], "[storm] horizon", storm["horizon"],
                    "the fault must start within the simulated time")
    if "breaker_open" in storm and not storm.get("breaker_after"):
        raise _both(label, "[storm] breaker_open", storm["breaker_open"], "[storm] breaker_after",
                    storm.get("breaker_after", 0), "an open period needs a circuit breaker; set breaker_after >= 1 "
                    "(failed attempts in a row that open it) or remove breaker_open")
    deadline = storm.get("setup_deadline", _S.setup.deadline)
    if storm.get("abandoned_work", _S.setup.abandoned_work) != _S.setup.abandoned_work and not deadline:
        raise _both(label, "[storm] abandoned_work", storm["abandoned_work"], "[storm] setup_deadline", deadline,
                    "without a setup deadline no client abandons a setup, so there is no work to cancel; "
                    "set setup_deadline >= 1 or remove abandoned_work")
    fault = storm.get("fault", _S.fault.kind)
    for key in dict.fromkeys(k for keys in FAULT_KEYS.values() for k in keys):
        users = " or ".join(_fmt(f) for f, keys in FAULT_KEYS.items() if key in keys)
        if key in storm and key not in FAULT_KEYS[fault]:
            raise _both(label, f"[storm] {key}", storm[key], "[storm] fault", fault,
                        f"{key} is a parameter of fault = {users}; set fault to {users} or remove {key}")
    share = storm.get("hung_share", _S.fault.hung_share)
    if fault == "hung" and share * storm["clients"] < 1:
        raise _both(label, "[storm] hung_share", share, "[storm] clients", storm["clients"],
                    f"that share of the clients is {share * storm['clients']:.2g} of one, so no whole client hangs "
                    "(a fluid run hangs that fraction; a sampled run draws each client with that chance, so whether "
                    f"any hangs is its seed's); the smallest hung_share that hangs one client of this fleet is "
                    f"1/{storm['clients']} ({least_hung_share(storm['clients'])})")
    batch = storm.get("restart_batch", _S.fault.restart_batch)
    if batch > cfg["topology"]["servers"]:
        raise _both(label, "[storm] restart_batch", batch, "[topology] servers", cfg["topology"]["servers"],
                    "a batch restarts at most every server at once")
    if deadline and deadline * 1000 <= storm["subscribe_ms"]:
        raise _both(label, "[storm] setup_deadline", deadline, "[storm] subscribe_ms", storm["subscribe_ms"],
                    "a setup takes at least one subscribe, even on an idle server, so none would ever finish; "
                    "raise setup_deadline above subscribe_ms / 1000 or remove it (0: no deadline)")
    return storm


def _named_design(name: Any, label: str) -> Design:
    if not isinstance(name, str) or name not in DESIGNS:
        raise ScenarioError(
            f"{label}: design {_fmt(name)}: not a named design; named designs: {', '.join(DESIGNS)}"
            + (' ("custom" needs a [design] table in the scenario file)' if name == "custom" else "")
        )
    return DESIGNS[name]


def _judges(cfg: dict) -> tuple[Judge, ...]:
    """The [[judge]] and [[proxy]] tables as `Judge`s, in that order."""
    out = [Judge(j["name"], j["side"], j["cutoff_from"], Fraction(str(j["multiplier"])),
                 Fraction(str(j["interval_multiplier"]))) for j in cfg.get("judge", ())]
    out += [Judge(p["name"], "proxy", "fixed", timeout=p["idle_timeout"]) for p in cfg.get("proxy", ())]
    return tuple(out)


def _build(cfg: dict, source: str) -> Scenario:
    """The Scenario of an already normalised config."""
    top, proto, load, faults, search = (cfg[s] for s in ("topology", "protocol", "load", "faults", "search"))
    t0, i0 = proto["timeout"], proto["interval"]
    if "design" in cfg:
        design = Design(**cfg["design"])
    else:
        design = DESIGNS[cfg["scenario"]["design"]]
    unit = _unit(cfg)
    levels = tuple(Level(ms, *adjuster_advice(ms, t0, i0, load["threshold_ms"], unit)) for ms in load["levels_ms"])
    publish_mult = Fraction(str(proto["publish_multiplier"]))
    gc_mult = Fraction(str(proto["gc_multiplier"]))
    heartbeat, rollout = Heartbeat(), None
    if "heartbeat" in cfg:
        hb = cfg["heartbeat"]
        heartbeat = Heartbeat(hb["hold"], hb["interval_from"], hb["cutoff_from"], hb["store"], tuple(hb["paths"]),
                              Fraction(str(hb["interval_multiplier"])), hb.get("interval_term", "judged"),
                              hb.get("min_spacing", 0), hb.get("strikes", _H.strikes), hb.get("resume_window", 0))
        if "multiplier" in hb:
            publish_mult = gc_mult = Fraction(str(hb["multiplier"]))
    if "rollout" in cfg:
        ro = cfg["rollout"]
        levels = (levels[0], Level(1, ro["timeout"], ro["interval"]))
        rollout = Rollout(tuple(Phase(**p) for p in ro["phases"]), ro["restart"])
    params = Params(
        servers=top["servers"],
        clients=top["clients"],
        t0=t0,
        i0=i0,
        levels=levels,
        load_servers=tuple(load["servers"]),
        load_trigger=load["trigger"],
        rtt=tuple(proto["rtt"]),
        skew=tuple(proto["skew"]),
        retry=proto["retry"],
        # str() first: Fraction(1.6) would be the binary float 1.6000000000000000888...
        publish_mult=publish_mult,
        gc_mult=gc_mult,
        design=design,
        faults=Faults(**{**faults, "loss_servers": tuple(faults["loss_servers"])}),
        heartbeat=heartbeat,
        rollout=rollout,
        publish_expired=proto.get("publish_expired", _P.publish_expired),
        after_drop=cfg.get("client", {}).get("after_drop", _P.after_drop),
        after_401=cfg.get("client", {}).get("after_401", _P.after_401),
        judges=_judges(cfg),
        unit=unit,
    )
    bounds = Bounds(search["max_states"], float(search["max_seconds"]), search["max_depth"])
    info = cfg["scenario"]
    return Scenario(info["name"], info["description"], params, bounds, source, cfg)


# ----------------------------------------------------------------- public API


def scenario_from_dict(config: dict, source: str, design: str | None = None) -> Scenario:
    """Check a TOML-shaped dict and build its `Scenario`.

    Parameters
    ----------
    config : dict
        Sections as in a scenario file (e.g. a parsed file, or the `config`
        a trace stored). It is not modified.
    source : str
        Where it came from; named in every error message.
    design : str, optional
        A named design (a key of `DESIGNS`) replacing the config's own.

    Raises
    ------
    ScenarioError
        For any value or combination the format does not allow.

    Examples
    --------
    >>> s = scenario_from_dict({"scenario": {"name": "tiny"}, "topology": {"servers": 2}}, "doc")
    >>> s.params.servers, s.params.t0, s.design.name
    (2, 45, 'per-server')
    >>> scenario_from_dict(s.config, "elsewhere") == s
    True
    """
    scenario = _build(_normalise(source, config), source)
    return scenario.with_design(design) if design is not None else scenario


def _preset_dir():
    # importlib.resources, not __file__: works from a wheel or a zip too.
    return resources.files(__package__).joinpath("scenarios")


# Sub-folders of the presets shipped with stormcheck, loaded as FOLDER/NAME:
# one scenario per stack of docs/protocol.md ("Other stacks"), and rollouts.
# proxies: a stack behind an intermediary that judges idleness; variants: a stack with one setting
# changed from its defaults, as incidents had it; storms: a fleet at full size whose [storm] table
# shows one mechanism of a metastable failure (`stormcheck storm`).
SHIPPED_FOLDERS = ("stacks", "rollouts", "proxies", "variants", "storms")


def shipped_names(folder: str) -> list[str]:
    """``FOLDER/NAME`` of each scenario shipped in `folder` (one of `SHIPPED_FOLDERS`), sorted.

    Examples
    --------
    >>> "stacks/phoenix" in shipped_names("stacks")
    True
    """
    return sorted(
        f"{folder}/{entry.name[: -len('.toml')]}"
        for entry in _preset_dir().joinpath(folder).iterdir()
        if entry.name.endswith(".toml") and not entry.name.startswith("_") and entry.is_file()
    )


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted. Files starting with ``_`` are not presets."""
    return sorted(
        entry.name[: -len(".toml")]
        for entry in _preset_dir().iterdir()
        if entry.name.endswith(".toml") and not entry.name.startswith("_") and entry.is_file()
    )


def list_presets() -> list[Scenario]:
    """Every shipped preset, loaded, sorted by name."""
    return sorted((load_scenario(name) for name in preset_names()), key=lambda s: s.name)


def _read(name_or_path: str) -> tuple[str, str]:
    """(text, source) of a preset name, ``preset:NAME`` or a file path."""
    name = name_or_path.removeprefix(_PRESET_PREFIX)
    presets = ", ".join(preset_names())
    bare = "/" not in name and "\\" not in name and not name.endswith(".toml")
    if bare and name in preset_names():
        return _preset_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8"), _PRESET_PREFIX + name
    folder, _, rest = name.partition("/")
    shipped = folder in SHIPPED_FOLDERS and rest and not rest.endswith(".toml") and "/" not in rest
    if shipped and not Path(name_or_path).exists() and name in shipped_names(folder):
        return _preset_dir().joinpath(folder, f"{rest}.toml").read_text(encoding="utf-8"), _PRESET_PREFIX + name
    path = Path(name_or_path)
    if not path.exists():
        what = "is not a preset name, and no such file exists" if bare else "does not exist"
        every = preset_names() + [n for f in SHIPPED_FOLDERS for n in shipped_names(f)]
        close = difflib.get_close_matches(name, every, n=1, cutoff=0.5)
        close += [n for n in every if n.startswith(name + "-")][:1]  # rollouts/phoenix -> rollouts/phoenix-...
        hint = f". Did you mean {close[0]}?" if close else ""
        raise ScenarioError(f"{name_or_path}: {what}; shipped scenarios: {', '.join(every)}{hint}")
    if not path.is_file():
        raise ScenarioError(f"{name_or_path}: is not a file; give a .toml scenario file or one of: {presets}")
    try:
        return path.read_text(encoding="utf-8"), name_or_path
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{name_or_path}: not UTF-8 text, as TOML must be ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ScenarioError(f"{name_or_path}: cannot be read: {exc.strerror}") from None


def load_scenario(name_or_path: str, design: str | None = None) -> Scenario:
    """Load a preset (by name, or ``preset:NAME``) or a scenario ``.toml`` file.

    Parameters
    ----------
    name_or_path : str
        A name from `preset_names` or a path. A bare word is a preset first.
    design : str, optional
        A named design (a key of `DESIGNS`) replacing the scenario's own.

    Raises
    ------
    ScenarioError
        The file is missing, unreadable, not TOML (the message gives the
        line), or holds a value or combination the format does not allow.

    Examples
    --------
    >>> s = load_scenario("gitter-2015")
    >>> s.source, s.params.servers, [(l.timeout, l.interval) for l in s.params.levels]
    ('preset:gitter-2015', 3, [(45, 1), (101, 15)])
    >>> load_scenario("gitter-2015", design="off").design.name
    'off'
    """
    text, source = _read(name_or_path)
    return scenario_from_dict(_parse(text.removeprefix("\ufeff"), source), source, design)  # a BOM marks UTF-8


_HUGE_INT = re.compile(r"^\s*([^=\n]+?)\s*=\s*[-+]?[0-9_]{4301,}", re.MULTILINE)


def _parse(text: str, source: str) -> dict:
    """The TOML `text`; what tomllib cannot read becomes a `ScenarioError` saying where."""
    if (deep := too_deep(text)) is not None:  # before tomllib, whose time grows faster than the text
        line, depth = deep
        raise ScenarioError(f"{source}: line {line}: tables, keys or lists nested {depth} deep; at most "
                            f"{MAX_NESTING} levels are read, and no scenario key nests more than 3")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: tables or lists nested too deeply to read; no scenario key "
                            "takes more than a list of numbers") from None
    except ValueError as exc:  # Python's limit on the digits of an integer
        huge = _HUGE_INT.search(text)
        if huge is None:
            raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
        line = text.count("\n", 0, huge.start()) + 1
        raise ScenarioError(f"{source}: line {line}: {huge.group(1)} = a number of more than 4300 digits; "
                            "no scenario value is anywhere near that large") from None
