"""The scenario file format as data: every section, its keys, their defaults and checks.

Section -> key -> (default, check), in the order the file format lists them:
the required sections (`_SPEC`), the optional ones (`_OPTIONAL`: a stack's
``[heartbeat]``, ``[storm]``, ``[client]``, ``[terms]``), ``[rollout]`` and
its phases, ``[[judge]]`` and ``[[proxy]]``, and ``[ranges]``. One table per
section, side by side, so the format reads in one place and its error
messages list allowed keys in this order; `_section` reads a section by its
table. Checks between keys live with their sections
(`model.scenario_checks`, `model.scenario_rollout`, `model.scenario_ranges`).
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from .load import LONGEST_RUN, StormParams
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
    SESSION_PATHS,
    STORES,
    TIME_UNITS,
    TUNERS,
    Bounds,
    Design,
    Faults,
    Heartbeat,
    Params,
    adjuster_advice,
)
from .faults import FAULTS
from .policies import POLICIES
from .rollout import CHANGES, PARTS, PICKUPS, SIDES, Phase
from .scenario_values import (_SECOND, _SECONDS, ScenarioError, _choice, _file_name, _fmt, _in_unit, _Invalid, _kind,
                              _number_above, _number_at_least, _offset, _paths, _scaled, _share, _text, _whole,
                              _whole_list)
from .setup import ABANDONED_WORK

__all__ = ["MAX_FLEET", "RANGE_KEYS"]

# Explicit-state search stores every reachable state, and the state is a
# product over clients (and over servers): past 8 of either no search ends.
MAX_FLEET = 8


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
    "horizon": (_S.horizon, _whole(1, LONGEST_RUN, unit="seconds")),
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
