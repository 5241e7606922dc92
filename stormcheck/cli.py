"""The command line: ``stormcheck check | replay | list``.

Exit codes: 0 every property holds (or the trace replays), 1 a property is
violated (or the trace no longer replays), 2 bad input, 3 inconclusive.
Bad input is reported in one message that says what to fix, never as a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import signal
import sys
from dataclasses import replace
from pathlib import Path

from stormcheck import count
from stormcheck.checkers import ENGINES, EXIT_CODES, CheckResult, run_engine
from stormcheck.checkers.result import examples_searched
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import (SHIPPED_FOLDERS, Scenario, ScenarioError, list_presets, load_scenario,
                                       scenario_from_dict, shipped_names)
from stormcheck.properties.core import ALWAYS, EVENTUALLY_ALWAYS, SOMETIMES, Inconclusive, Verdict
from stormcheck.properties.protocol import DELIVERY, LIVENESS, PROPERTIES, by_name
from stormcheck.traces.export import replay_trace
from stormcheck.traces.itf import Trace
from stormcheck.traces.run import ReplayError
from stormcheck.traces.timeline import render_timeline

from . import _compiled, engine_flags, jobs, output, signals, swarm
from .output import check_out, finding_lost, run_scenario, summary, verdict_words, version, write_findings
from .progress import SearchProgress

__all__ = ["main"]

DEFAULT_SCENARIO = "gitter-2015"


# The commands with a module of their own, imported when their parser is built.
# Importing all of them (the report, the storm simulator, the sweep, the
# conformance harness's front end) takes longer than `stormcheck list` takes
# to run, so a command line that names its command builds that command's
# parser alone (`_parser`), `--version` none; help and anything else get every one.
_MODULES = {"plan": "plan_cmd", "report": "report", "storm": "storm_cmd", "synth": "synth_cmd",
            "sweep": "sweep_cmd", "conform": "conform_cmd"}
_OWN = ("check", "replay", "list")


def _module(command: str):
    return importlib.import_module(f"stormcheck.{_MODULES[command]}")


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with `argv` naming a command, that command's alone (`_MODULES`)."""
    first = argv[0] if argv else None
    if first == "--version":
        wanted: tuple = ()
    elif first is None:
        wanted = ("check",)  # a bare command line is `check` (the README's main job)
    elif first in _MODULES or first in _OWN:
        wanted = (first,)
    else:
        wanted = (*_OWN, *_MODULES)
    p = argparse.ArgumentParser(
        prog="stormcheck",
        description="Model-check heartbeat, reconnect and session-cleanup protocols of long-lived connections.",
    )
    # How the search core runs is asked only for --version: the answer imports the engines' packages.
    core = f" ({_compiled.summary()})" if first == "--version" else ""
    p.add_argument("--version", action="version", version=f"stormcheck {version()}{core}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    if "check" in wanted:
        _check_parser(sub)
    if "replay" in wanted:
        r = sub.add_parser("replay", help="re-check a stored trace against the current model")
        r.add_argument("trace", type=Path, help="an ITF trace written by stormcheck (check, storm --certify or synth, with --out)")
        r.add_argument("--timeline", action="store_true", help="print the replayed run as a timeline")
    if "list" in wanted:
        ls = sub.add_parser("list", help="list the preset scenarios, designs and properties")
        _module("plan").add_list_argument(ls)
    for command in _MODULES:
        if command in wanted:
            _module(command).add_parser(sub)
    return p


def _check_parser(sub) -> None:
    c = sub.add_parser("check", help="check a scenario's properties and write counterexamples")
    c.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"a preset name or a .toml file (default: {DEFAULT_SCENARIO}); see 'stormcheck list'")
    c.add_argument("--design", help=f"a named design, or 'all': {', '.join(DESIGNS)}")
    c.add_argument("--engine", default="exhaustive", choices=sorted(ENGINES), help="the engine (default: exhaustive)")
    c.add_argument("--property", action="append", dest="properties", metavar="NAME",
                   help="check only this property (repeatable); default: all")
    c.add_argument("--out", default="out", type=Path, help="folder for traces and timelines (default: ./out)")
    c.add_argument("--json", action="store_true", help="print one machine-readable summary on stdout")
    c.add_argument("--seed", type=int,
                   help="hypothesis, symbolic: the seed, recorded in traces; with it a hypothesis run is repeatable "
                        "and uses no example database (default: hypothesis a fresh seed, symbolic 0)")
    engine_flags.add_arguments(c)
    c.add_argument("--runs", type=int, metavar="K",
                   help="hypothesis: a swarm of K seeded runs (seed, seed + 1, ...), merged per property; "
                        "spread over --jobs or --scheduler")
    c.add_argument("--quiet", action="store_true", help="no progress lines and no timeline")
    jobs.add_arguments(c)


class _BadInput(Exception):
    pass


def _scenario(args) -> Scenario:
    design = None if args.design in (None, "all") else args.design
    scenario = load_scenario(args.scenario, design=design)
    # The [search] keys' own checks, as if the file said so (`flags.with_flags`).
    return engine_flags.with_budget(scenario, args)


MAX_RUNS = 10_000  # a swarm larger than this is a budget to state with --examples


def _engine_options(args) -> dict:
    """The engine options given (`engine_flags.engine_options`), and --runs, checked against the chosen engine."""
    if args.runs is not None:
        if args.engine != "hypothesis":
            raise _BadInput(f"--runs: only used by --engine hypothesis (the engine is {args.engine}, "
                            "whose runs are deterministic)")
        if not 1 <= args.runs <= MAX_RUNS:
            raise _BadInput(f"--runs {args.runs}: must be a whole number from 1 to {MAX_RUNS}")
    return engine_flags.engine_options(args)


def _properties(names):
    if not names:
        # Liveness (storm_subsides) is checked on request (--property, or
        # `stormcheck storm`): a lasso needs the whole state graph, while a
        # safety violation stops the search at the first counterexample.
        return PROPERTIES
    try:
        return tuple(by_name(n) for n in dict.fromkeys(names))  # once each, in the order given
    except KeyError as err:
        raise _BadInput(err.args[0]) from None


def _print_result(scenario: Scenario, result: CheckResult, files: dict, quiet: bool) -> None:
    print(f"scenario {scenario.name} ({scenario.source}), design {result.design}, engine {result.engine}")
    for line in _rows(result.properties):
        print(line)
    st = result.stats
    if "not_run" in st:
        print(f"  nothing run: {st['not_run']}")
    elif "examples" in st:
        rate = f" ({st['examples_per_second']:,} examples/s)" if st.get("examples_per_second") else ""
        ranged = f", ranges {', '.join(f'{k} {v}' for k, v in st['ranges'].items())}" if st.get("ranges") else ""
        seeds = (f"{st['runs']} runs, seeds {st['seeds'][0]} to {st['seeds'][-1]}" if st.get("runs")
                 else f"seed {st['seed']}")
        print(f"  {examples_searched(st)}, {count(st['steps'], 'step')}, {st['seconds']} s{rate}, {seeds}{ranged}")
    elif result.engine == "symbolic":
        print(f"  symbolic: inductive proofs, then certified search of up to {count(st['depth_bound'], 'step')}; "
              f"{st.get('seconds', 0)} s, seed {st['seed']}")
    else:
        rate = f" ({st['states_per_second']:,} states/s)" if st.get("states_per_second") else ""
        print(f"  {st['states']:,} states, {st['transitions']:,} transitions, {st['seconds']} s{rate}")
    shown = _headline(result)
    if shown is not None and not quiet:
        kind = "No witness for" if shown.modality == SOMETIMES else "Counterexample to"
        fleet = run_scenario(scenario, shown)
        print(f"\n{kind} {shown.name}:\n")
        print(render_timeline(shown.run, fleet.params, title=f"{scenario.name} / {result.design}", focus=shown))
        if shown.repro is not None:
            where = files.get(shown.name, {}).get("repro", "")
            print(f"Reproduction as a test{f' ({where})' if where else ''}:\n")
            print(shown.repro)
    for name, paths in files.items():
        print(f"  {name}: {'  '.join(paths.values())}")
    print(f"verdict: {verdict_words(result)}")


def _rows(props) -> list[str]:
    """The property table's lines: every column at least two spaces wider than its longest entry."""
    marks = [str(p.verdict).upper() if p.verdict != Verdict.HOLDS else "holds" for p in props]
    name_w = max([24] + [len(p.name) + 2 for p in props])
    modality_w = max([11] + [len(p.modality) + 2 for p in props])
    mark_w = max([14] + [len(m) + 2 for m in marks])
    return [f"  {p.name:<{name_w}}{p.modality:<{modality_w}}{mark:<{mark_w}}{p.basis}" for p, mark in zip(props, marks)]


def _headline(result: CheckResult):
    """The run most worth showing: the first violated safety property's, else a storm's lasso."""
    for modality in (ALWAYS, EVENTUALLY_ALWAYS):
        for p in result.properties:
            if p.modality == modality and p.verdict == Verdict.VIOLATED and p.run is not None:
                return p
    return None


def _check(args) -> int:
    options = _engine_options(args)
    scenario = _scenario(args)
    props = _properties(args.properties)
    designs = list(scenario.all_designs()) if args.design == "all" else [scenario.design.name]
    # Every design's fleet is built, and the output folder checked, before
    # the first search: bad input must stop the run before anything is written.
    fleets = {d: scenario.with_design(d) if args.design == "all" else scenario for d in designs}
    check_out(args.out)
    results = _run_checks(args, fleets, props, options)
    worst, outputs = 0, []
    verdicts = {}
    for (design, sc), result in zip(fleets.items(), results):
        if isinstance(result, jobs.Failed):  # kept apart: the other designs' results stand
            if len(designs) > 1:
                print(f"\n{sc.name}/{design}: not checked: {result.error}")
            else:
                print(f"stormcheck: {result}", file=sys.stderr)
            worst = max(worst, 3, key=lambda c: (0, 3, 1).index(c))
            verdicts[design] = f"{Verdict.INCONCLUSIVE} (failed)"
            continue
        # The seed a randomised engine actually used (drawn when none was given).
        seed = result.stats.get("seed", args.seed if args.seed is not None else 0)
        files = _write_findings(sc, result, args.out, seed)
        if args.json:
            outputs.append(summary(sc, result, files, seed))
        else:
            if len(designs) > 1:
                print()
            _print_result(sc, result, files, quiet=args.quiet or len(designs) > 1)
        code = EXIT_CODES[result.verdict]
        worst = max(worst, code, key=lambda c: (0, 3, 1).index(c))
        verdicts[design] = str(result.verdict)
    if not outputs and args.json:
        outputs.append({"scenario": scenario.name, "verdict": str(Verdict.INCONCLUSIVE)})
    overall = next(v for v, c in EXIT_CODES.items() if c == worst)
    if args.json:
        print(json.dumps(outputs[0] if len(outputs) == 1 else _all_designs(outputs, str(overall)), indent=2))
    elif len(designs) > 1:
        print(f"\nverdict over {len(designs)} designs: {overall} "
              f"({', '.join(f'{d} {v}' for d, v in verdicts.items())})")
    return worst


def _run_checks(args, fleets: dict, props, options: dict) -> list:
    """Each design's result (or `jobs.Failed`), in design order; a swarm's runs merged per design.

    Every seed is drawn here, in the parent: a swarm of K runs is the same
    whichever workers run it. Without --runs the engine is left to draw its
    own seed, as it always has.
    """
    k = args.runs or 1
    base = args.seed
    if k > 1 and base is None:
        base = random.SystemRandom().randrange(2**32)
    seeds = [base + i for i in range(k)] if k > 1 else [args.seed]
    todo, bars = [], []
    for design, sc in fleets.items():
        for seed in seeds:
            # The engine's own progress lines: shown when it runs in this process.
            bar = SearchProgress(not args.quiet, f"{sc.name}/{design}" + (f"/seed {seed}" if k > 1 else ""))
            bars.append(bar)
            todo.append(jobs.Job(bar.label, run_engine, (args.engine, sc, props), {"seed": seed, **options},
                                 local={"progress": bar}))
    if len(todo) == 1 and args.runner == jobs.Runner():  # one search here: its errors go up as always
        done = [run_engine(args.engine, *todo[0].args[1:], **todo[0].kwargs, progress=bars[0])]
        bars[0].done()
    else:
        done = jobs.run(todo, args.runner, label=f"check {args.engine}", progress=not args.quiet,
                        on_done=lambda i, job, result: bars[i].done())
    out = []
    for n in range(len(fleets)):
        mine = done[n * k:(n + 1) * k]
        kept = [(r, s) for r, s in zip(mine, seeds) if not isinstance(r, jobs.Failed)]
        failed = [r for r in mine if isinstance(r, jobs.Failed)]
        if not kept:
            out.append(failed[0])
            continue
        for f in failed:  # a swarm goes on with the runs that finished, and says which did not
            print(f"stormcheck: {f}; the swarm's other runs are kept", file=sys.stderr)
        out.append(swarm.merge([r for r, _ in kept], [s for _, s in kept]))
    return out


def _write_findings(sc: Scenario, result: CheckResult, out: Path, seed: int) -> dict:
    """`write_findings`, each property's run under the seed that made it (a swarm merges several)."""
    files = {}
    for prop, seed in zip(result.properties, swarm.seeds(result, seed).values()):
        if prop.run is not None:
            files.update(write_findings(sc, replace(result, properties=(prop,)), out, seed=seed))
    output.say_dropped(output.drop_stale(sc, result, out))
    return files


def _all_designs(outputs: list[dict], verdict: str) -> dict:
    """One JSON document for `check --design all`: the worst verdict, then each design's summary."""
    first = outputs[0]
    bounds = [o["within_steps"] for o in outputs if o.get("within_steps") is not None]
    within = min(bounds) if bounds and verdict == str(Verdict.HOLDS) else None
    # What the engine searched of a ranged scenario: the same for every design.
    ranged = {k: first[k] for k in ("ranges", "ranges_searched", "searched", "ranges_searched_by") if k in first}
    return {"scenario": first["scenario"], "source": first["source"], "engine": first["engine"],
            "verdict": verdict, "within_steps": within, **ranged, "designs": {o["design"]: o for o in outputs}}


# What `replay` takes, said with every file it cannot use.
_REPLAY_TAKES = "replay takes an ITF trace (JSON, *.itf.json) written by 'stormcheck check --out'"


def _read_trace(path: Path) -> Trace:
    """`Trace.read`, its errors as bad input that says what the file should be."""
    try:
        return Trace.read(path)
    except FileNotFoundError:
        raise _BadInput(f"{path}: no such file; {_REPLAY_TAKES}") from None
    except IsADirectoryError:
        raise _BadInput(f"{path}: is a folder; {_REPLAY_TAKES}") from None
    except OSError as err:
        raise _BadInput(f"{path}: cannot be read ({err.strerror or err}); {_REPLAY_TAKES}") from None
    except ValueError as err:  # the message starts with the path and says what was wrong
        said = str(err)
        raise _BadInput(said if "replay the ITF trace" in said else f"{said}; {_REPLAY_TAKES}") from None


def _replay(args) -> int:
    trace = _read_trace(args.trace)
    meta = trace.meta
    config = meta.get("scenario_config")
    if not isinstance(config, dict):
        raise _BadInput(f"{args.trace}: '#meta' has no scenario_config: not a trace written by 'stormcheck check'")
    scenario = scenario_from_dict(config, source=f"trace:{args.trace}")
    try:
        run = replay_trace(trace, scenario.params)
    except ReplayError:
        raise
    except ValueError as err:  # a state or action that does not decode: the file is not a trace it can use
        raise _BadInput(f"{args.trace}: {err}; {_REPLAY_TAKES}") from None
    line = f"{args.trace}: replays, {count(len(run), 'step')} ({scenario.name}, design {scenario.design.name})"
    name = meta.get("property")
    if name:
        try:
            prop = by_name(name)
        except KeyError as err:
            raise _BadInput(f"{args.trace}: '#meta' property: {err.args[0]}") from None
        lost = finding_lost(scenario.params, prop, run)
        if lost is not None:
            print(f"{line}; but {lost} {meta.get('verdict', '')}", file=sys.stderr)
            return 1
        # The run shows a counterexample (always, liveness) or a witness
        # (sometimes): the verdict the trace records must be that one.
        shown = str(Verdict.HOLDS if prop.modality == SOMETIMES else Verdict.VIOLATED)
        recorded = meta.get("verdict")
        if not isinstance(recorded, str) or recorded not in {str(v) for v in Verdict}:
            raise _BadInput(f"{args.trace}: '#meta' verdict = {recorded!r}: must be one of "
                            f"{', '.join(str(v) for v in Verdict)}")
        if recorded != shown:
            print(f"{line}; but it records the verdict {recorded!r} for {name}, and its run shows {shown!r}",
                  file=sys.stderr)
            return 1
        if prop.liveness:
            line += f"; its cycle (from state {run.loop}) violates {name}"
        else:
            what = "violates" if prop.modality == ALWAYS else "witnesses"
            line += f"; its last step {what} {name}"
    elif meta.get("kind") == "counterexample to induction":
        # synth's CTI: its first state satisfies the proof's invariant but need not be reachable.
        line += "; a counterexample to induction, NOT a counterexample: its first state need not be reachable"
    print(line)
    if args.timeline:
        print(render_timeline(run, scenario.params, title=str(args.trace)))
    return 0


def _list() -> int:
    print("Preset scenarios:")
    for sc in list_presets():
        print(f"  {sc.name:<22}{sc.description}")
    # The shipped folders hold most presets: say they exist and how to see them.
    counts = {folder: len(shipped_names(folder)) for folder in SHIPPED_FOLDERS}
    print(f"  and {sum(counts.values())} more in folders: {', '.join(f'{f} ({n})' for f, n in counts.items())}; "
          f"'stormcheck list FOLDER' lists them, run one as FOLDER/NAME")
    print("\nDesigns (--design):")
    for d in DESIGNS.values():
        print(f"  {d.name:<22}tuner={d.tuner} judge={d.judge} record={d.record} "
              f"reply={d.reply_advice} paths={d.session_paths}")
    print("\nProperties (--property):")
    for p in PROPERTIES + DELIVERY + LIVENESS:
        print(f"  {p.name:<24}{p.modality:<18}{p.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    with signals.handled():
        kept = len(output.WRITTEN)
        try:
            rc = _main(argv)
            signals.hold()  # done: a signal from here on must not turn a finished run into a traceback
            return rc
        except (KeyboardInterrupt, Exception) as err:  # `signals.Interrupted`, or a bare Ctrl-C from elsewhere
            if not isinstance(err, KeyboardInterrupt) and not _caused_by_interrupt(err):
                raise
            signum = getattr(err, "signum", None) or signals.received() or signal.SIGINT
            what = " ".join((argv if argv is not None else sys.argv[1:])[:2]) or "check"
            print(f"stormcheck: {what}: interrupted by {signals.signal_name(signum)}; "
                  f"{_kept(output.WRITTEN[kept:])}", file=sys.stderr)
            return signals.exit_code(signum)
        finally:
            output.tidy()


def _caused_by_interrupt(err: BaseException) -> bool:
    """Whether `err` came out of stopping the run, though it is not an `Interrupted`.

    A library may turn the `Interrupted` raised inside it into an error of
    its own: ctypes reports one raised while it converts an argument as
    ``ctypes.ArgumentError``, with no link to the original. Once a signal
    has come, the run is being stopped by the user, whatever unwinds it.
    """
    while err is not None:
        if isinstance(err, signals.Interrupted):
            return True
        err = err.__cause__ or err.__context__
    return signals.received() is not None


def _kept(files: list[str]) -> str:
    """What an interrupted run leaves: the files it completed; never a partial one."""
    if not files:
        return "no file written, earlier output left as it was"
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return f"kept {count(len(files), 'complete file')} written before it ({shown}); nothing partial left"


def _main(argv: list[str] | None) -> int:
    words = argv if argv is not None else sys.argv[1:]
    parser = _parser(words)
    args = parser.parse_args(argv)
    command = args.command or "check"
    if args.command is None:
        args = parser.parse_args(["check", *words])
    try:
        # --jobs / --scheduler: checked once, here, before any command starts work.
        args.runner = jobs.runner_from(args)
        if command == "check":
            if args.design not in (None, "all") and args.design not in DESIGNS:
                raise _BadInput(f"--design {args.design!r}: unknown design; choose one of {', '.join(DESIGNS)} or all")
            return _check(args)
        if command == "replay":
            return _replay(args)
        if command == "synth":
            return _module('synth').run(args)
        if command == "plan":
            return _module('plan').run(args)
        if command == "list" and args.shipped:
            return _module("plan").list_shipped(args.shipped)
        if command == "report":
            return _module('report').run(args)
        if command == "sweep":
            return _module('sweep').run(args)
        if command == "storm":
            return _module('storm').run(args)
        if command == "conform":
            return _module('conform').run(args)
        return _list()
    except (ScenarioError, _BadInput) as err:
        print(f"stormcheck: {err}", file=sys.stderr)
        return 2
    except ReplayError as err:
        print(f"stormcheck: {args.trace} does not replay: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`stormcheck check | head`): stop quietly, as
        # Python's docs advise, without a second error when stdout is flushed.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Inconclusive as err:
        # An engine refused a feature it does not cover, or a solver gave up:
        # neither bad input nor a verdict.
        print(f"stormcheck: inconclusive: {err}", file=sys.stderr)
        return 3
    except (OSError, ValueError) as err:
        print(f"stormcheck: {err}", file=sys.stderr)
        return 2
