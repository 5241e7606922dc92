"""``stormcheck conform`` for stack scenarios: run them on the real library, print model beside real.

Exit codes as for every ``conform``: 0 every run reproduced the model's verdict,
1 some run diverged, 2 bad input (a run or phase the real stack cannot
express, refused before anything starts), 3 a component is missing (the
message says what to install).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from stormcheck.model.scenario import ScenarioError, load_scenario

from .. import time_unit_refusal
from ..procs import StartError, WaitTimeout
from . import UNVERIFIED
from .conform import RUN_KINDS, NotAStack, conform, scale_of, stack_of
from .runs import RefusedRun

__all__ = ["handles", "run", "unverified", "RUN_KINDS"]


def handles(target: str) -> bool:
    """True when `target` names a stack scenario (one with a [heartbeat] table), run or not here."""
    if target.endswith(".json"):
        return False
    try:
        return "heartbeat" in load_scenario(target).config
    except ScenarioError:
        return False


def unverified(scenario) -> str | None:
    """Why `scenario`'s stack cannot run here (Phoenix, SignalR, ActionCable, AWS ALB), or None."""
    name = scenario.name
    for preset, why in UNVERIFIED.items():
        key = preset.rsplit("/", 1)[-1]
        if name == key or name.startswith(key + "-"):
            return why
    return None


def _line(r) -> str:
    mark = "reproduced" if r.reproduced else "DIVERGED"
    extra = ""
    if r.observed is not None:
        lo, hi = r.tolerance
        extra = f"; observed cutoff {r.observed:.1f} model s, model {r.cutoff:g} (-{lo:g}/+{hi:g})"
    phases = f"\n      order: {r.phases}" if r.phases else ""
    return (f"  {r.run:<19} model {r.model:<9} real {r.real:<9} {mark}  ({r.wall_seconds:.1f} s wall{extra})"
            f"{phases}\n      real:  {r.detail}")


def run(args) -> int:
    try:
        scenario = load_scenario(args.target)
        if (why := time_unit_refusal(scenario.config)) is not None:
            print(f"stormcheck conform: {scenario.source}: {why}", file=sys.stderr)
            return 2
        why = unverified(scenario)
        if why:
            print(f"stormcheck conform: {scenario.source}: unverified: {why}", file=sys.stderr)
            return 3
        stack = stack_of(scenario)
        runs = tuple(args.run) if getattr(args, "run", None) else None
        missing = stack.missing()
        if missing:
            print(f"stormcheck conform: {stack.stack} cannot start: install {missing}", file=sys.stderr)
            return 3
        if not (args.json or args.quiet):
            print(f"stormcheck conform: running {scenario.name} on {stack.library} "
                  f"(1 model s = {scale_of(stack, scenario):.4g} wall s)", file=sys.stderr)
        results = conform(scenario, runs)
    except (ScenarioError, NotAStack, RefusedRun, ValueError) as err:
        print(f"stormcheck conform: {err}", file=sys.stderr)
        return 2
    except (StartError, WaitTimeout) as err:
        print(f"stormcheck conform: {err}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps([{**asdict(r), "reproduced": r.reproduced} for r in results], indent=2))
    else:
        print(f"conform {scenario.source} on {stack.library}")
        for r in results:
            print(_line(r))
        ok = all(r.reproduced for r in results)
        print(f"verdict: {'reproduced' if ok else 'diverged: the real library disagrees with the model'}")
    return 0 if all(r.reproduced for r in results) else 1
