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

Parts
-----
This module builds a `Scenario` from a checked config and is the public
face of the format: every name callers import is importable from here. The
format itself is split by concern, each part a few hundred lines at most:
`model.scenario_values` (the checks of single values and `ScenarioError`),
`model.scenario_format` (every section's keys, defaults and checks, as
tables), `model.scenario_checks` (checks between keys: fleet, design,
``[heartbeat]``, ``[[judge]]`` / ``[[proxy]]``, ``[storm]``),
`model.scenario_rollout` (``[rollout]``), `model.scenario_ranges`
(``[ranges]``) and `model.scenario_files` (presets, files and the TOML
reader). `_normalise` below calls their checks in one fixed order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from .params import DESIGNS, Bounds, Design, Faults, Heartbeat, Judge, Level, Params, adjuster_advice
from .rollout import Phase, Rollout
from .scenario_checks import (_check_design, _check_faye_stack, _check_fleet, _check_heartbeat, _check_proxies,
                              _check_storm, _check_tables)
from .scenario_files import SHIPPED_FOLDERS, _parse, _read, preset_names, shipped_names
from .scenario_format import _H, _JUDGE_SPEC, _P, _RANGES, _SECTIONS, _SPEC, MAX_FLEET, RANGE_KEYS, _section, _unit
from .scenario_ranges import _check_ranges
from .scenario_rollout import _check_rollout
from .scenario_values import ScenarioError, _fmt, _kind

__all__ = [
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "read_config",
    "scenario_from_dict",
    "list_presets",
    "preset_names",
    "concrete_config",
    "shipped_names",
    "SHIPPED_FOLDERS",
    "RANGE_KEYS",
    "MAX_FLEET",
]


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

    def all_designs(self) -> tuple[str, ...]:
        """The designs ``--design all`` runs: every named one, which a rollout's fleet cannot take."""
        if "rollout" in self.config:
            raise ScenarioError(
                f"--design all with {self.source}: a fleet with a [rollout] runs under the static design \"off\" "
                f"alone (its configuration changes only as the rollout says), as it does without --design; drop --design "
                f"all, and compare the rollout's orders with 'stormcheck plan'"
            )
        return tuple(DESIGNS)

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


def list_presets() -> list[Scenario]:
    """Every shipped preset, loaded, sorted by name."""
    return sorted((load_scenario(name) for name in preset_names()), key=lambda s: s.name)


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
    config, source = read_config(name_or_path)
    return scenario_from_dict(config, source, design)


def read_config(name_or_path: str) -> tuple[dict, str]:
    """The tables of a preset or scenario file as read, not yet checked, and its source.

    For a caller that adds values of its own before `scenario_from_dict`
    checks them all together (`stormcheck.flags.load_with_flags`). Raises
    `ScenarioError` for a missing or unreadable file or text that is not TOML.
    """
    text, source = _read(name_or_path)
    return _parse(text.removeprefix("\ufeff"), source), source  # a BOM marks UTF-8
