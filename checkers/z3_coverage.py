"""What the Z3 encoding covers, and the refusal of everything else by name.

The symbolic engine must never mis-model a fleet as an older one: before a
solver starts, `check_encodable` refuses, with a "not encoded" message that
names the scenario feature, every generalisation of the model the encoding
does not state and every parameter field it does not read. This is the
encoding's contract with the rest of the project (the rule table's kinds it
covers, `ENCODED` / `REFUSED`, held to `fleet.RULES` by tests/test_rules.py),
kept apart from the formulas so it reads as one list.
"""

from __future__ import annotations

import dataclasses

from stormcheck.model.params import Design, Faults, Heartbeat, Judge, Params
from stormcheck.model.rollout import Phase, Rollout
from stormcheck.properties.core import NotEncoded

__all__ = ["check_encodable", "not_encoded", "ENCODED", "REFUSED"]

# Fields of the parameter records the encoding reads. A field the model gains
# later is refused unless it keeps its default (`check_encodable`): a new
# feature must never be silently mis-modelled as the old behaviour.
_KNOWN = {
    Params: {"servers", "clients", "t0", "i0", "levels", "load_servers", "load_trigger", "rtt", "skew", "retry",
             "publish_mult", "gc_mult", "design", "faults", "heartbeat", "judges", "publish_expired", "after_drop",
             "after_401", "unit", "rollout"},
    Design: {"name", "tuner", "propagation_delay", "judge", "record", "reply_advice", "session_paths"},
    Faults: {"server_loss", "loss_duration", "loss_servers", "client_crash", "client_cut", "cut_duration"},
    Heartbeat: {"hold", "interval_from", "cutoff_from", "store", "paths", "interval_multiplier", "interval_term",
                "min_spacing", "strikes", "resume_window"},
    Judge: {"name", "side", "source", "multiplier", "interval_multiplier", "timeout"},
    Rollout: {"phases", "restart"},
    Phase: {"side", "part", "batch", "pace", "pickup", "spread", "change"},
}


_INSTEAD = "use the exhaustive or hypothesis engine for this fleet"

# What this encoding covers, by the model's rule table (`fleet.RULES`): the
# kinds it states (each has an encoder below, held to the Python rule by the
# differential tests) and, for every other kind, the scenario feature that
# enables it, which `check_encodable` refuses by name before a solver starts.
# tests/test_rules.py fails when a kind is in neither.
ENCODED = ("reply", "arrive", "reconnect", "restore", "deadline", "publish", "gc", "load", "adopt",
           "adopt_reaper", "adopt_advice", "lose", "crash", "cut", "tick", "expire",
           "launch", "restart", "upgrade", "reconfigure")
REFUSED: dict[str, str] = {}

# The generalisations of Faye's model (`Params.extensions`) this encoding
# states, in the model's own words: every rule of a `[heartbeat]` table, the
# extra judges (`[[judge]]`, `[[proxy]]`), the published Faye stack,
# configuration rollouts (live changes included) and a clock in milliseconds
# (every duration is an integer in the fleet's unit; only the ranged adjuster
# converts, as `adjuster_advice` does). Any other one the model names (one it
# gains later) is refused.
_ENCODED_FEATURES = frozenset(Params(
    heartbeat=Heartbeat(hold="none", store="local", interval_term="in-use", min_spacing=1, resume_window=1),
    judges=(Judge("client", "client", "handshake"), Judge("proxy", "proxy", "fixed", timeout=1)), unit="ms",
    rollout=Rollout((Phase("servers", change="live"),)),
).extensions()) | frozenset(Params(publish_expired="drop-queue", after_drop="same-id", after_401="interval").extensions())


def not_encoded(params: Params) -> tuple[str, ...]:
    """The scenario features of `params` this encoding does not state (empty: it encodes the fleet)."""
    return tuple(f for f in params.extensions() if f not in _ENCODED_FEATURES)


def check_encodable(params: Params) -> None:
    """Raise `NotEncoded` for what the encoding does not cover, named as the scenario states it.

    First the generalisations the model names itself (`Params.extensions`)
    that the encoding does not state (`not_encoded`), then any field of a
    parameter record this encoding does not read.
    """
    if not_encoded(params):
        raise NotEncoded("symbolic engine", "; ".join(not_encoded(params)), _INSTEAD)
    records = [(Params, params), (Design, params.design), (Faults, params.faults), (Heartbeat, params.heartbeat)]
    records += [(Judge, j) for j in params.judges]
    if params.rollout is not None:
        records += [(Rollout, params.rollout)] + [(Phase, p) for p in params.rollout.phases]
    for record, value in records:
        for f in dataclasses.fields(record):
            if f.name in _KNOWN[record]:
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            if default is dataclasses.MISSING or getattr(value, f.name) != default:
                raise NotEncoded("symbolic engine", f"{record.__name__}.{f.name} = {getattr(value, f.name)!r}", _INSTEAD)
