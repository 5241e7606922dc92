"""Runs as ITF traces (Apalache ADR-015), and ITF traces back into runs.

A trace is data a person or another tool can read without stormcheck: one
ITF state per state of the run. Its variables are

* ``now``: the time since the run began (`Run.times`, the sum of the ticks),
  in the fleet's unit: ``#meta`` says which (``time_unit``: ``s`` or ``ms``),
  as does every duration of the trace (timers, ages, T, I);
* ``action``: the `Action` record that led to this state (kind ``init`` in
  state 0, whose other fields are -1);
* ``events``: a sequence of the step's events, each a record with one more
  field, ``event``, naming its class (``Reaped``, ``Handshake``, ...);
* one variable per `State` field, in `State._fields` order. Records stay
  records and tuples become sequences. A client without a session has
  ``session`` = the empty sequence ``[]``; with one it is a record. A record
  and a sequence never look alike, so decoding is unambiguous.

The fleet parameters that do not change along a run (fleet size, T0, I0,
design, ...) are ITF ``params`` bound in state 0 only, named in upper case
like TLA+ constants (``SERVERS``, ``DESIGN``: ``servers`` and ``clients``
are state variables already).

Replaying a trace recomputes every state with the model's own `step` and
compares it, and the stored ``now`` and ``events``, with what is stored: a
trace that no longer replays is an error naming the first step that differs.

A trace written before ``rollout`` had its own variable still reads: then
``tuner_timer`` held both the fleet tuner's countdown and a rollout's marker
(`_split_tuner_timer` says how they are told apart).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import types
import typing
from fractions import Fraction
from typing import Any, NamedTuple

from stormcheck import count
from stormcheck.model import events as model_events
from stormcheck.model.fleet import cutoff_text
from stormcheck.model.params import Design, Params
from stormcheck.model.rollout import NOT_BEGUN
from stormcheck.model.state import Action, State

from .itf import Trace, from_itf, to_itf
from .run import ReplayError, Run, replay

__all__ = ["run_to_trace", "trace_to_run_inputs", "replay_trace", "trace_params", "FORMAT_URL"]

FORMAT_URL = "https://apalache-mc.org/docs/adr/015adr-trace.html"
_HEAD = ("now", "action", "events")  # the variables before the State fields
_INIT = Action("init")

# Event classes by name, as the "event" field of an event record names them.
_EVENT_TYPES: dict[str, type] = {name: getattr(model_events, name) for name in model_events.__all__}


# ---------------------------------------------------------------- encoding


# Parameters added after traces were first stored: written only when not at
# their default, so a trace of a fleet that does not use them is unchanged;
# absent from a trace, they were at their default.
_OMIT_AT_DEFAULT = ("publish_expired", "after_drop", "after_401", "unit")


def trace_params(params: Params) -> dict[str, int | str]:
    """The scalar parameters of `params` as a trace's ITF ``params``.

    Every int or str field of `Params` (upper-cased), the multipliers as
    decimal text (ITF has no fractions), the design's name as ``DESIGN`` and
    each design axis as ``DESIGN_<AXIS>``. Tuples (levels, rtt, skew) and the
    fault bounds stay out: they are in the scenario config of ``#meta``.
    """
    out: dict[str, int | str] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.name in _OMIT_AT_DEFAULT and value == f.default:
            continue
        if isinstance(value, Fraction):
            out[f.name.upper()] = cutoff_text(value)
        elif isinstance(value, (int, str)) and not isinstance(value, bool):
            out[f.name.upper()] = value
    design: Design = params.design
    out["DESIGN"] = design.name
    for f in dataclasses.fields(design):
        if f.name != "name":
            out[f"DESIGN_{f.name.upper()}"] = getattr(design, f.name)
    return out


def _value(v: Any) -> Any:
    # NamedTuples stay records (to_itf writes them so); plain tuples, i.e. the
    # client and server lists and an absent session (), become sequences.
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return type(v)(*(_value(x) for x in v))
    if isinstance(v, tuple):
        return [_value(x) for x in v]
    return v


_RECORD_TYPES: dict[type, type] = {}


def _event_record(event: NamedTuple) -> Any:
    """`event` as a record with a leading ``event`` field naming its class."""
    cls = type(event)
    if cls not in _RECORD_TYPES:
        _RECORD_TYPES[cls] = collections.namedtuple(f"{cls.__name__}Record", ("event", *cls._fields))
    return _RECORD_TYPES[cls](cls.__name__, *(_value(x) for x in event))


def _describe(meta: dict, steps: int) -> str:
    parts = [f"stormcheck run of {count(steps, 'step')}"]
    if "property" in meta:
        verdict = f" ({meta['verdict']})" if "verdict" in meta else ""
        parts.append(f"property {meta['property']}{verdict}")
    for key in ("scenario", "design", "engine"):
        if key in meta:
            parts.append(f"{key} {meta[key]}")
    return ", ".join(parts)


def run_to_trace(run: Run, params: Params, meta: dict) -> Trace:
    """The ITF trace of `run` under `params`.

    Parameters
    ----------
    run : Run
        The run to write; ``run.loop`` becomes the trace's ``loop``.
    params : Params
        The fleet the run was computed under (its scalars become ITF params).
    meta : dict
        JSON-able facts for ``#meta``: by convention ``scenario``,
        ``scenario_config``, ``design``, ``property``, ``engine``, ``seed``,
        ``verdict``, ``version``. ``format`` is always ``"ITF"``; a
        ``description`` is made up from these unless `meta` has one, and
        ``time_unit`` is always `params`' (`Params.unit`).

    Raises
    ------
    TypeError
        If `meta` is not JSON-able (say which value to convert).
    """
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as err:
        raise TypeError(f"run_to_trace: meta must be JSON-able: {err}") from None
    full = {"format": "ITF", "format-description": FORMAT_URL, "description": _describe(meta, len(run))}
    full |= meta
    full["format"] = "ITF"
    full["time_unit"] = params.unit  # of `now` and of every duration in the states

    fields = State._fields
    pnames = trace_params(params)
    states = []
    times = run.times()
    pairs = [(_INIT, ())] + [(a, st.events) for a, st in run.steps]
    for i, (state, (action, evs)) in enumerate(zip(run.states, pairs)):
        row: dict[str, Any] = dict(pnames) if i == 0 else {}
        row["now"] = times[i]
        row["action"] = action
        row["events"] = [_event_record(e) for e in evs]
        row |= {name: _value(getattr(state, name)) for name in fields}
        states.append(row)
    if run.loop is not None:
        # ITF leaves open whether a lasso's last state repeats states[loop]; ours does.
        full = {**full, "loop_closes": f"the last state repeats states[{run.loop}]: from there the run "
                                      f"goes round states {run.loop}..{len(states) - 1} forever"}
    return Trace(full, (*_HEAD, *fields), tuple(states), tuple(pnames), run.loop)


# ---------------------------------------------------------------- decoding


class _Bad(ValueError):
    """A value that does not decode; `where` is its path inside the field."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def _article(name: str) -> str:
    return "an" if name[:1].upper() in "AEIOU" else "a"


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _is_record_type(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields")


def _shape(hint: Any) -> type:
    # The JSON shape (after from_itf) a type hint's values take in a trace.
    if _is_record_type(hint):
        return dict
    if hint is tuple or typing.get_origin(hint) is tuple:
        return list
    return hint


def _decode(value: Any, hint: Any, where: str = "") -> Any:
    """Decode a from_itf value into the model type `hint` (driven by type hints)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        fits = [h for h in typing.get_args(hint) if isinstance(value, _shape(h)) and not (_shape(h) is int and isinstance(value, bool))]
        if len(fits) != 1:
            raise _Bad(where, f"{value!r} is none of {' | '.join(getattr(h, '__name__', str(h)) for h in typing.get_args(hint))}")
        return _decode(value, fits[0], where)
    if _is_record_type(hint):
        if not isinstance(value, dict):
            raise _Bad(where, f"expected {_article(hint.__name__)} {hint.__name__} record, got {value!r}")
        # ITF records are unordered. A field added to the model later, with a
        # default, may be missing from a trace written before it existed.
        defaults = hint._field_defaults
        if not set(hint._fields) - set(defaults) <= set(value) <= set(hint._fields):
            raise _Bad(where, f"{_article(hint.__name__)} {hint.__name__} record has fields {list(hint._fields)}, "
                              f"not {sorted(value)}")
        hints = _hints(hint)
        return hint(*(_decode(value[f], hints[f], f"{where}.{f}") if f in value else defaults[f]
                      for f in hint._fields))
    if hint is tuple:  # a bare `tuple` in the model is the empty tuple (no session)
        if value != []:
            raise _Bad(where, f"expected the empty sequence [], got {value!r}")
        return ()
    if origin is tuple:
        if not isinstance(value, list):
            raise _Bad(where, f"expected a sequence, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_decode(x, item, f"{where}[{i}]") for i, x in enumerate(value))
    if hint is bool and isinstance(value, bool):
        return value
    if hint in (int, str) and isinstance(value, hint) and not isinstance(value, bool):
        return value
    raise _Bad(where, f"expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _field(trace: Trace, i: int, name: str, hint: Any) -> Any:
    try:
        # Normalize: a trace built in memory holds NamedTuples and lists, one
        # read from disk holds dicts; through the codec both look the same.
        return _decode(from_itf(to_itf(trace.states[i][name])), hint)
    except (_Bad, TypeError, ValueError) as err:
        where = getattr(err, "where", "")
        raise ValueError(f"state {i}: field {name!r}{where and ' at ' + name + where}: {err}") from None


def _decode_event(record: Any, i: int, k: int) -> NamedTuple:
    where = f"state {i}: field 'events'[{k}]"
    if not isinstance(record, dict) or "event" not in record:
        raise ValueError(f"{where}: expected a record with an 'event' field, got {record!r}")
    rest = dict(record)
    name = rest.pop("event")
    cls = _EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown event {name!r}; known: {', '.join(_EVENT_TYPES)}")
    try:
        return _decode(rest, cls)
    except _Bad as err:
        raise ValueError(f"{where}{err.where}: {err}") from None


@dataclasses.dataclass(frozen=True)
class _Decoded:
    initial: State
    actions: list[Action]
    states: list[State]
    now: list[int]
    events: list[tuple]


# State fields split off an older one: a trace written before the split
# lacks the new variable, and `_split_tuner_timer` recovers it.
_SPLIT_OFF = ("rollout",)


def _decode_trace(trace: Trace) -> _Decoded:
    for name in (*_HEAD, *State._fields):
        if name not in trace.vars and name not in _SPLIT_OFF:
            raise ValueError(f"the trace lacks the var {name!r}: not a stormcheck trace, or from an older model")
    if not trace.states:
        raise ValueError("the trace has no states")
    hints = _hints(State)
    stored = [f for f in State._fields if f in trace.vars]
    rows, actions, now, events = [], [], [], []
    for i in range(len(trace.states)):
        rows.append({f: _field(trace, i, f, hints[f]) for f in stored})
        action = _field(trace, i, "action", Action)
        if (i == 0) != (action.kind == "init"):
            want = "'init'" if i == 0 else "an action kind, not 'init'"
            raise ValueError(f"state {i}: field 'action': kind must be {want}, got {action.kind!r}")
        if i:
            actions.append(action)
        now.append(_field(trace, i, "now", int))
        raw = from_itf(to_itf(trace.states[i]["events"]))
        if not isinstance(raw, list):
            raise ValueError(f"state {i}: field 'events': expected a sequence, got {raw!r}")
        events.append(tuple(_decode_event(r, i, k) for k, r in enumerate(raw)))
    if "rollout" not in trace.vars:
        rows = _split_tuner_timer(rows, actions)
    states = [State(**row) for row in rows]
    return _Decoded(states[0], actions, states, now, events)


def _split_tuner_timer(rows: list[dict], actions: list[Action]) -> list[dict]:
    """The states of a trace written when ``tuner_timer`` had two meanings.

    It was the fleet tuner's propagation countdown, and in a fleet with a
    rollout the rollout's marker (now `State.rollout`); no fleet had both, as
    a rollout runs under a static tuner. The marker leaves `NOT_BEGUN` only
    by a ``launch``: in a run with one, the old field was the marker and the
    tuner's countdown was 0; in any other run the rollout never began.
    """
    if not any(a.kind == "launch" for a in actions):
        return [{**row, "rollout": NOT_BEGUN} for row in rows]
    return [{**row, "tuner_timer": 0, "rollout": row["tuner_timer"]} for row in rows]


def trace_to_run_inputs(trace: Trace) -> tuple[State, list[Action], list[State]]:
    """Decode a stormcheck trace into the model's own NamedTuples.

    Returns ``(initial, actions, states)`` with ``states[0] == initial`` and
    ``actions[i - 1]`` the action that led to ``states[i]``: the arguments of
    `stormcheck.traces.run.replay`.

    Raises
    ------
    ValueError
        Naming the state index and the field that does not decode, e.g.
        ``state 4: field 'clients' at clients[0].session.age: expected int``.
    """
    d = _decode_trace(trace)
    return d.initial, d.actions, d.states


# ---------------------------------------------------------------- replay


def _check_params(trace: Trace, params: Params) -> None:
    # Only names both sides know: a parameter added to the model since the
    # trace was written, or removed from it since (GC_PERIOD, which no rule
    # read), does not make old traces unreadable.
    current = trace_params(params)
    for name in _OMIT_AT_DEFAULT:
        key = name.upper()
        if key in current and key not in trace.params:
            raise ReplayError(
                0, f"the trace was recorded with {key} at its default, "
                f"{getattr(Params(), name)!r}, but is replayed with {current[key]!r}"
            )
        if key in trace.params and key not in current:
            stored = from_itf(to_itf(trace.states[0][key]))
            raise ReplayError(
                0, f"the trace was recorded with {key} = {stored!r}, but is replayed with its default, "
                f"{getattr(Params(), name)!r}"
            )
    for name in trace.params:
        stored = from_itf(to_itf(trace.states[0][name]))
        if name in current and stored != current[name]:
            raise ReplayError(
                0, f"the trace was recorded with {name} = {stored!r} but is replayed with {current[name]!r}"
            )


def _first_divergence(run: Run, d: _Decoded, upto: int) -> tuple[int, str] | None:
    times = run.times()
    recomputed = [()] + [st.events for _, st in run.steps]
    for i in range(min(upto, len(times))):
        if d.now[i] != times[i]:
            return i, f"expected now = {times[i]} (the sum of the ticks) but the trace stores now = {d.now[i]}"
        if d.events[i] != recomputed[i]:
            return i, f"expected events {list(recomputed[i])} but the trace stores {list(d.events[i])}"
    return None


def replay_trace(trace: Trace, params: Params) -> Run:
    """Replay `trace` under `params` and check every stored value.

    Each action must be enabled where it is applied and each recomputed
    state, clock (``now``) and event list must equal the stored one; the run
    gets the trace's ``loop``.

    Raises
    ------
    ValueError
        If the trace does not decode (see `trace_to_run_inputs`).
    ReplayError
        At the first step that differs, saying what was expected and what the
        trace stores (index 0: parameters or initial state).
    """
    d = _decode_trace(trace)
    _check_params(trace, params)
    try:
        run = replay(params, d.initial, d.actions, expected=d.states)
    except ReplayError as err:
        # A stored clock or event list may go wrong before the state does:
        # report whichever divergence comes first.
        prefix = replay(params, d.initial, d.actions[: max(err.index - 1, 0)], expected=d.states)
        if (found := _first_divergence(prefix, d, err.index)) is not None:
            raise ReplayError(*found) from None
        raise
    if (found := _first_divergence(run, d, len(d.states))) is not None:
        raise ReplayError(*found)
    if trace.loop is not None and run.states[-1] != run.states[trace.loop]:
        # A lasso must close: its last state is the one the loop returns to.
        raise ReplayError(len(run), f"the trace loops back to state {trace.loop}, but its last state differs from it")
    return dataclasses.replace(run, loop=trace.loop)
