"""``stormcheck synth [SCENARIO]``: the parameter region in which a design is safe.

What it prints depends on the scenario (`stormcheck.checkers.z3_synth`):

* a scenario with ``[ranges]``: the proved-safe region over them, as one
  readable constraint, and a point just outside with a certified run;
* otherwise, for a design whose reapers judge by their own server's timeout
  and that adjusts (the 2015 per-server adjuster): per reaper path, the
  average subscribe latency at which it starts reaping valid sessions,
  proved safe below and certified at the threshold;
* otherwise: the region at the scenario's point values (proved safe, or
  the constraint it breaks and a certified run).

Exit codes as ``check``: 0 answered (every claim proved, every threshold
certified), 2 bad input, 3 inconclusive (a solver ``unknown``, a design the
encoding does not cover, no region proved, a threshold with no run found).
With ``--out DIR`` every certified run is written as an ITF trace and a
timeline, as ``check`` writes counterexamples; and where the proof's
invariant allows a reap somewhere in range, that counterexample to induction
as ``...synth-cti.itf.json``, labelled as such in its ``#meta`` (``kind``):
its first state need not be reachable, so it is not a counterexample.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stormcheck.model.params import DESIGNS
from stormcheck.properties.core import Inconclusive
from stormcheck.model.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict
from stormcheck.traces.export import run_to_trace
from stormcheck.traces.timeline import render_timeline

from . import jobs
from .output import OutputError, check_out, version, write_text
from .terms import in_terms, terms_doc

__all__ = ["add_parser", "run", "thresholds_by_path", "threshold_jobs", "thresholds_from", "MAX_STEPS", "STEPS_WHY"]

DEFAULT_SCENARIO = "gitter-2015"
# The longest bounded search asked of the solver: every step adds a copy of
# the transition relation to each search.
MAX_STEPS = 40
STEPS_WHY = "synth --steps 40 on gitter-2015 takes 24 s of CPU, and each step more adds a copy of the " \
            "transition relation to every search"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``synth`` subcommand to `subparsers` (the CLI's)."""
    p = subparsers.add_parser("synth", help="the parameter region in which a design is safe (Z3: proved, checked)")
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"a preset name or a .toml file (default: {DEFAULT_SCENARIO}); its [ranges] span the region")
    p.add_argument("--design", help=f"a named design: {', '.join(DESIGNS)} (default: the scenario's)")
    p.add_argument("--json", action="store_true", help="print one machine-readable document on stdout")
    p.add_argument("--steps", type=int, default=16, metavar="N",
                   help="bound of the searches that certify a point outside the region (default 16)")
    p.add_argument("--high-ms", type=int, metavar="MS",
                   help="adjuster thresholds: highest average subscribe latency searched (default 200000)")
    p.add_argument("--seed", type=int, default=0, help="solver seed (default 0)")
    p.add_argument("--out", type=Path, help="write every certified run as ITF trace and timeline here")
    jobs.add_arguments(p)
    return p


class _BadInput(Exception):
    pass


def run(args) -> int:
    """Run ``synth`` for parsed `args`; the exit code."""
    from stormcheck.checkers.z3_synth import SynthesisError, safe_region

    try:
        if args.design is not None and args.design not in DESIGNS:
            raise _BadInput(f"--design {args.design!r}: unknown design; choose one of {', '.join(DESIGNS)}")
        if args.steps < 1:
            raise _BadInput(f"--steps {args.steps}: must be a whole number >= 1")
        if args.steps > MAX_STEPS:
            raise _BadInput(f"--steps {args.steps}: at most {MAX_STEPS} ({STEPS_WHY})")
        if args.out is not None:
            check_out(args.out)
        scenario = load_scenario(args.scenario, design=args.design)
        thresholds = not scenario.ranges and _thresholds_apply(scenario)
        if args.high_ms is not None and not thresholds:
            raise _BadInput(f"--high-ms {args.high_ms}: only used when synth finds an adjuster's thresholds (a design "
                            f"whose server adjusts the timeout, over more than one load level, no [ranges]); "
                            f"{scenario.name} {_why_no_thresholds(scenario)}")
        try:
            if thresholds:
                found = _thresholds(scenario, args)
                doc = _thresholds_doc(scenario, found)
                ok = all(t.load_ms is None or t.certified is not None for t in found)
                runs = [(f"synth-{t.path}", t.certified, t.config) for t in found if t.certified is not None]
                text = "\n".join([f"scenario {scenario.name}, design {scenario.design.name}: adjuster thresholds "
                                  f"(proved below, certified at the threshold)"] + [f"  {t.text()}" for t in found])
            else:
                region = safe_region(scenario, max_steps=args.steps, seed=args.seed)
                doc = _region_doc(region) | {"terms": terms_doc(scenario, region)}
                ok = region.conclusive
                runs = [("synth-outside", region.outside_run, region.outside_config)] if region.outside_run else []
                if region.cti is not None:
                    runs.append(("synth-cti", *region.cti))
                text = "\n".join([region.text(), *in_terms(scenario, region)])
        except SynthesisError as err:
            raise _BadInput(str(err)) from None
    except (ScenarioError, _BadInput, OutputError) as err:
        print(f"stormcheck: {err}", file=sys.stderr)
        return 2
    except Inconclusive as err:
        # The encoding refuses what it does not cover ("not encoded"), or the
        # solver gave up: not the user's mistake, and not a verdict either.
        print(f"stormcheck: inconclusive: {err}", file=sys.stderr)
        if args.json:  # --json promises one document on stdout, whatever the answer
            print(json.dumps({"scenario": args.scenario, "design": args.design, "verdict": "inconclusive",
                              "reason": str(err)}, indent=2))
        return 3
    files = _write_runs(scenario, runs, args.out) if args.out is not None else {}
    doc["files"] = files
    doc["verdict"] = "answered" if ok else "inconclusive"
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(text)
        for name, path in files.items():
            print(f"  {name}: {path}")
        print(f"synth: {doc['verdict']}")
    return 0 if ok else 3


def _thresholds(scenario: Scenario, args) -> list:
    return thresholds_by_path(scenario, getattr(args, "runner", jobs.Runner()), progress=not args.json,
                              high_ms=args.high_ms, max_steps=args.steps, seed=args.seed)


def thresholds_by_path(scenario: Scenario, runner: jobs.Runner, *, progress: bool = True, **options) -> list:
    """`adjuster_thresholds`, one job per reaper path on `runner`, in path order.

    Each path is asked in a solver context of its own whatever the worker
    count, so the answer and its certified run do not depend on it.
    """
    todo = threshold_jobs(scenario, **options)
    return thresholds_from(jobs.run(todo, runner, label="synth thresholds", progress=progress))


def threshold_jobs(scenario: Scenario, **options) -> list[jobs.Job]:
    """The jobs of `thresholds_by_path`: one `adjuster_thresholds` per reaper path."""
    from stormcheck.checkers.z3_synth import PATHS, adjuster_thresholds

    return [jobs.Job(f"synth {scenario.name}/{scenario.design.name}/{path} path", adjuster_thresholds, (scenario,),
                     {**options, "paths": (path,)}) for path in PATHS]


def thresholds_from(results: list) -> list:
    """The thresholds of `threshold_jobs`' results; a failed path raises as `adjuster_thresholds` would.

    `SynthesisError` or `Inconclusive`, naming the path; anything else as a
    `RuntimeError` with the job's error.
    """
    from stormcheck.checkers.z3_synth import SynthesisError

    found = []
    for got in results:
        if isinstance(got, jobs.Failed):
            if got.inconclusive:
                raise Inconclusive(str(got))
            if got.kind == "SynthesisError":
                raise SynthesisError(got.error.removeprefix("SynthesisError: "))
            raise RuntimeError(str(got))
        found += got
    return found


def _thresholds_apply(scenario: Scenario) -> bool:
    d = scenario.params.design
    return d.adjusts() and d.judge == "server" and d.tuner != "fleet-staged" and len(scenario.params.levels) > 1


def _why_no_thresholds(scenario: Scenario) -> str:
    """Why `_thresholds_apply` is false for `scenario`, as the end of a sentence."""
    d = scenario.params.design
    if scenario.ranges:
        return "has [ranges]: synth finds the safe region they span"
    if not d.adjusts():
        return f"has design {d.name}, which has no adjuster"
    if d.judge != "server":
        return f"has design {d.name}, whose adjuster is judged by the {d.judge}"
    if d.tuner == "fleet-staged":
        return f"has design {d.name}, whose tuner is fleet-staged"
    return "has one load level: there is no threshold between levels"


def _thresholds_doc(scenario: Scenario, found) -> dict:
    return {
        "scenario": scenario.name,
        "design": scenario.design.name,
        "kind": "adjuster-thresholds",
        "thresholds": [
            {
                "path": t.path,
                "load_ms": t.load_ms,
                "timeout": t.timeout,
                "interval": t.interval,
                "searched_ms": [t.low_ms, t.high_ms],
                "proved_safe_below": t.load_ms if t.load_ms is not None else t.high_ms + 1,
                "certified_steps": len(t.certified) if t.certified is not None else None,
                "seconds": round(t.seconds, 3),
                "text": t.text(),
            }
            for t in found
        ],
    }


def _region_doc(region) -> dict:
    return {
        "scenario": region.scenario,
        "design": region.design,
        "kind": "region",
        "ranges": {k: list(v) for k, v in region.ranges.items()},
        "constraint": region.constraint,
        "proved": region.constraint is not None,
        "covers": region.covers,
        "whole_range_safe": region.whole_range_safe,
        "some_inside": region.some_inside,
        "not_sufficient": list(region.rejected),
        "inside": region.inside,
        "outside": region.outside,
        "outside_certified_steps": len(region.outside_run) if region.outside_run is not None else None,
        "outside_cut": region.cut,  # how the run outside ends a valid session ("cut by the proxy nginx")
        "cti": {"state": str(region.cti[0].initial), "steps": [str(a) for a in region.cti[0].actions]}
        if region.cti is not None else None,
        "seconds": round(region.seconds, 3),
        "text": region.text(),
    }


def _write_runs(scenario: Scenario, runs: list, out: Path) -> dict:
    """Each certified run as ``OUT/SCENARIO.DESIGN.NAME.itf.json`` and ``.timeline.txt``."""
    files = {}
    for name, run, config in runs:
        point = scenario_from_dict(config, scenario.source) if config is not None else scenario
        meta = {"scenario": scenario.name, "scenario_config": point.config, "design": scenario.design.name,
                "property": "no_valid_reap", "modality": "always", "verdict": "violated",
                "basis": f"synth: certified run at a point outside the safe region ({name})",
                "engine": "symbolic", "seed": 0, "version": version()}
        if name == "synth-cti":
            # Not a counterexample: a state the proof's invariant allows, maybe unreachable,
            # from which one step reaps a valid client. It shows what the invariant misses.
            meta.update(kind="counterexample to induction", verdict="unproved",
                        basis="synth: counterexample to induction, NOT a counterexample: its first state satisfies "
                              "the invariant but need not be reachable")
            meta.pop("property")
        base = out / f"{scenario.name}.{scenario.design.name}.{name}"
        trace_path, timeline_path = base.with_name(base.name + ".itf.json"), base.with_name(base.name + ".timeline.txt")
        out.mkdir(parents=True, exist_ok=True)
        run_to_trace(run, point.params, meta).write(trace_path)
        title = base.name + (" (counterexample to induction, NOT a counterexample: the first state may be "
                             "unreachable)" if name == "synth-cti" else "")
        write_text(timeline_path, render_timeline(run, point.params, title=title))
        files[name] = str(trace_path)
    return files
