"""Scenario checks that need more than one key: the fleet, the design, a stack's rules, [storm].

Each check reads the normalised sections (`model.scenario_format`) and
raises a `ScenarioError` naming every key involved (`_both`). They sit apart
from the format's tables, which check one value at a time, and from the
loading (`model.scenario`), which calls them in a fixed order.
"""

from __future__ import annotations

from .faults import FAULT_KEYS, least_hung_share
from .params import DESIGNS, adjuster_advice
from .scenario_format import _H, _P, _PROXY_SPEC, _REQUIRED, _S, _SPEC, _section, _unit
from .scenario_values import ScenarioError, _both, _fmt, _in_unit, _Invalid, _scaled

__all__: list[str] = []

# ------------------------------------------------------ combinations of keys


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
