"""The [rollout] table of a scenario: configuration B and the phases that bring it to the fleet.

Every phase is checked on its own (`_check_phase`) and against the fleet
(its batch, the stack's client-owned settings), and the phases together
move each part of the fleet from A to B once (`_check_phase_order`). The
table's keys are in `model.scenario_format`; this module holds the checks
between them, apart from the other sections'.
"""

from __future__ import annotations

from typing import Any

from .params import DESIGNS
from .rollout import SIDES
from .scenario_format import _CLIENT_ONLY, _FROM_A, _PHASE_SPEC, _ROLLOUT_KEYS, _SERVER_ONLY, _check_table, _unit
from .scenario_values import ScenarioError, _both, _fmt, _in_unit, _Invalid, _scaled

__all__: list[str] = []

# ------------------------------------------------------------------ [rollout]


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
