"""``stormcheck report``: one page for a design review.

Runs every engine on every scenario and design asked for, then asks each
registered section builder for its part and writes, into ``--out DIR``:

* ``report.html``: self-contained XHTML (inline CSS, images as ``data:``
  URIs), viewable offline;
* ``report.md``: the same sections in Markdown, with ``img/`` beside it;
* ``traces/``: every trace the report shows, as ITF and timeline, each
  replayed through the current model while the report was built.

The folder is built in a temporary sibling and renamed into place only when
complete, so an interrupted or failed build leaves the previous report (or
nothing) behind, never half a report.

The engine runs, and the sections' own independent runs (`SECTION_JOBS`),
are jobs (`stormcheck.jobs`): ``--jobs N`` or ``--scheduler`` spread them,
and the report is the same, byte for byte but for the wall-clock times it
states, whatever ran them.

Adding a section
----------------
A section builder is ``builder(ctx: ReportContext) -> Section | None``
(`stormcheck.report_core`). Register it with `register_section`; it runs
after the engines, in list order, and may run work of its own inside
``with ctx.stage("label") as outcome: ...`` to show on the progress display.
Plot with matplotlib and wrap the figure with
`stormcheck.report_html.figure_image`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from stormcheck.checkers import SEEDED_ENGINES, CheckResult, PropertyResult, run_engine, unused_seed
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import ScenarioError, load_scenario, preset_names
from stormcheck.properties import protocol
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import PROPERTIES, by_name

from . import jobs, signals
from .output import check_out
from .report_agreement import NOT_CHECKED
from .report_core import (
    Budget,
    Cell,
    Image,
    Progress,
    ReportContext,
    ReportError,
    Section,
    SectionBuilder,
    TraceDoesNotReplay,
)
from .report_html import render_html, render_markdown
from .report_sections import DEFAULT_SECTIONS, searched_section
from .report_storm import storm_jobs, storm_section
from .report_synth import synth_jobs, synth_section

__all__ = [
    "SECTION_BUILDERS",
    "register_section",
    "report_properties",
    "run_cells",
    "build_sections",
    "build_report",
    "add_parser",
    "run",
    "Budget",
    "ReportContext",
    "Section",
    "Image",
    "ReportError",
    "TraceDoesNotReplay",
]

ENGINE_ORDER = ("exhaustive", "hypothesis", "symbolic")
REPORT_FILES = ("report.html", "report.md")

# Liveness properties need a lasso through the whole state graph: they are
# asked for only where the scenario states no depth bound (the other
# engines answer inconclusive and say why). Unlike `check`, whose default set
# stops at the first counterexample, a review wants every answer.
LIVENESS = protocol.LIVENESS


def report_properties(scenario, names: Sequence[str] | None = None) -> tuple:
    """The properties reported for `scenario`, the same for every engine; only `names` if given."""
    if names:
        return tuple(by_name(n) for n in dict.fromkeys(names))
    return PROPERTIES + (LIVENESS if not scenario.bounds.max_depth else ())


# The sections, in page order. Extended with `register_section`.
SECTION_BUILDERS: list[SectionBuilder] = list(DEFAULT_SECTIONS)


def register_section(builder: SectionBuilder, *, before: SectionBuilder | None = searched_section) -> None:
    """Add `builder` to the report, by default just before "What was searched" (which stays last).

    Registering the same builder twice is a no-op, so a module may register
    at import time however often it is imported.
    """
    if builder in SECTION_BUILDERS:
        return
    if before is None or before not in SECTION_BUILDERS:
        SECTION_BUILDERS.append(builder)
    else:
        SECTION_BUILDERS.insert(SECTION_BUILDERS.index(before), builder)


# The sections that compute more than the engines' verdicts: the proved safe
# regions and adjuster thresholds (Z3; only when the symbolic engine is among
# those asked for), and the storm simulation. `--skip NAME` leaves one out.
register_section(synth_section)
register_section(storm_section)
OPTIONAL_SECTIONS: dict[str, SectionBuilder] = {"synthesis": synth_section, "storms": storm_section}
# A section's independent runs, given ahead of time so that they share the
# pool with the engine runs (a builder that runs after the cells would
# otherwise leave workers idle); the builder then finds them done
# (`ReportContext.run_jobs`).
SECTION_JOBS: dict[SectionBuilder, Callable[[ReportContext], list]] = {synth_section: synth_jobs,
                                                                       storm_section: storm_jobs}


def run_cells(ctx: ReportContext, runner: jobs.Runner = jobs.Runner(), ahead: Sequence[jobs.Job] = ()) -> None:
    """Run every engine on every (scenario, design) of `ctx` on `runner`, one progress line each.

    The cells are jobs (`stormcheck.jobs`), kept in scenario, design, engine
    order whichever finishes first. A cell whose engine raised, or whose
    worker died, is reported inconclusive with the error; the others stand.
    The sections' jobs `ahead` run first, in the same pool (the longest
    usually, so none is left to run alone at the end); their results go to
    ``ctx.prefetched``.
    """
    todo, where = [], []
    for base in ctx.scenarios:
        for design in ctx.designs[base.name]:
            sc = base if design == base.design.name else base.with_design(design)
            for engine in ctx.engines:
                props = report_properties(sc, ctx.properties)
                todo.append(jobs.Job(f"{sc.name}/{design}/{engine}", _cell,
                                     (engine, _budgeted(sc, engine, ctx.budget), props, ctx.budget.seed,
                                      ctx.budget.options(engine, sc))))
                where.append((sc, engine, props))

    ahead = list(ahead)

    def done(i, job, got) -> None:
        if isinstance(got, jobs.Failed):
            ctx.progress.line(f"{job.name} ... {got.error}")
        elif i >= len(ahead):
            ctx.progress.line(f"{job.name} ... {_tally(got[0])} ({got[1]:.1f} s)")
        else:
            ctx.progress.line(f"{job.name} ... done")

    results = jobs.run(ahead + todo, runner, label="report", progress=ctx.progress.enabled, on_done=done)
    ctx.prefetched.update((job.name, got) for job, got in zip(ahead, results))
    for (sc, engine, props), got in zip(where, results[len(ahead):]):
        if isinstance(got, jobs.Failed):
            why = f"not checked: the engine failed: {got.error}"
            got = (CheckResult(engine, sc.name, sc.design.name,
                               tuple(PropertyResult(p.name, p.modality, Verdict.INCONCLUSIVE, why) for p in props)),
                   0.0)
        ctx.cells.append(Cell(sc, engine, *got))


def _tally(result: CheckResult) -> str:
    """A cell's verdicts counted, ``holds 2, inconclusive 2``: what the page's matrix shows, property by property.

    The result's overall verdict alone would read "inconclusive" for a cell
    whose every safety property holds beside a witness not found. A property
    the engine does not check is counted as the page shows it, "not checked",
    apart from a search that ran and could not decide.
    """
    counts: dict[str, int] = {}
    for p in result.properties:
        word = str(p.verdict) if p.checked else NOT_CHECKED
        counts[word] = counts.get(word, 0) + 1
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: _ORDER.index(kv[0])))


_ORDER = [*(str(v) for v in (Verdict.VIOLATED, Verdict.HOLDS, Verdict.INCONCLUSIVE)), NOT_CHECKED]


def _cell(engine: str, scenario, props, seed: int, options: dict):
    """One report cell, in whichever process runs it: the result and its wall time."""
    t0 = time.perf_counter()
    result = run_engine(engine, scenario, props, seed=seed, **options)
    return result, time.perf_counter() - t0


def _budgeted(scenario, engine: str, budget: Budget):
    """`scenario` with the exhaustive time budget capped at the report's."""
    if engine != "exhaustive" or scenario.bounds.max_seconds <= budget.max_seconds:
        return scenario
    return replace(scenario, bounds=replace(scenario.bounds, max_seconds=budget.max_seconds))


def build_sections(ctx: ReportContext, builders: Sequence[SectionBuilder] | None = None) -> list[Section]:
    """Ask each builder for its section; builders with nothing to say return None."""
    sections = []
    for builder in SECTION_BUILDERS if builders is None else builders:
        section = builder(ctx)
        if section is not None:
            sections.append(section)
    return sections


def _write(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not a previous report."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.html").is_file():
        raise ReportError(f"--out {out}: exists and holds files that are not a stormcheck report; "
                          "choose an empty or new folder")


def _replace_dir(built: Path, out: Path) -> None:
    """Move the finished report into place; the old one is removed only after."""
    if not out.exists():
        os.replace(built, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "report")
    try:
        os.replace(built, out)
    except BaseException:
        os.replace(old / "report", out)  # put the previous report back
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def build_report(scenarios: list, designs: dict[str, tuple[str, ...]], out: Path, *,
                 engines: Sequence[str] = ENGINE_ORDER, budget: Budget = Budget(), progress: Progress | None = None,
                 argv: Sequence[str] = (), properties: Sequence[str] = (), skip: Sequence[str] = (),
                 runner: jobs.Runner = jobs.Runner()) -> ReportContext:
    """Run the engines, build every section and write the report folder atomically.

    Raises
    ------
    ReportError
        `out` exists and is not a previous report.
    TraceDoesNotReplay
        A trace the report would show does not replay; nothing is written.
    """
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = None
    try:
        with signals.deferred():  # a signal here would leave the folder unnamed, so undeleted
            work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # mkdtemp makes it private; the report is meant to be shared
        ctx = ReportContext(list(scenarios), dict(designs), tuple(engines), budget, work,
                            progress or Progress(False), tuple(argv), tuple(properties), runner)
        left_out = {OPTIONAL_SECTIONS[name] for name in skip}
        if "symbolic" not in ctx.engines:
            left_out.add(synth_section)
        builders = [b for b in SECTION_BUILDERS if b not in left_out]
        run_cells(ctx, runner, [job for b in builders if b in SECTION_JOBS for job in SECTION_JOBS[b](ctx)])
        sections = build_sections(ctx, builders)
        for section in sections:
            for image in section.images:
                _write(work, f"img/{image.name}", image.data)
        _write(work, "report.html", render_html(ctx, sections).encode("utf-8"))
        _write(work, "report.md", render_markdown(ctx, sections).encode("utf-8"))
        with signals.deferred():  # the swap of old and new report runs to its end
            _replace_dir(work, out)
    finally:
        if work is not None and work.exists():
            shutil.rmtree(work, ignore_errors=True)
    ctx.folder = out
    return ctx


# ---------------------------------------------------------------- command line


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``report`` to the CLI's subcommands."""
    r = subparsers.add_parser("report", help="run every engine and write an HTML + Markdown design-review report")
    r.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"preset names or .toml files (default: every preset: {', '.join(preset_names())})")
    r.add_argument("--out", type=Path, default=Path("out/report"), help="the report folder (default: ./out/report)")
    r.add_argument("--design", action="append", dest="designs", metavar="D",
                   help=f"a design to report (repeatable), or 'all': {', '.join(DESIGNS)}; "
                        "default: each scenario's own")
    r.add_argument("--engine", action="append", dest="engines", choices=ENGINE_ORDER,
                   help=f"an engine to run (repeatable; default: all three, {', '.join(ENGINE_ORDER)})")
    r.add_argument("--property", action="append", dest="properties", metavar="NAME",
                   help="report only this property (repeatable); default: all, liveness where no depth bound")
    r.add_argument("--seed", type=int, help="seed of the randomised and solver engines (default 0; refused when "
                   "no engine asked for uses one)")
    r.add_argument("--max-seconds", type=float,
                   help=f"exhaustive: time budget per design (default {Budget.max_seconds:g})")
    r.add_argument("--examples", type=int,
                   help=f"hypothesis: runs per always property (default {Budget.examples})")
    r.add_argument("--hypothesis-steps", type=int,
                   help=f"hypothesis: steps per run at most (default {Budget.hypothesis_steps})")
    r.add_argument("--symbolic-steps", type=int,
                   help="symbolic: the BMC bound (default: as 'stormcheck check': the scenario's depth bound, "
                        "else the engine's)")
    r.add_argument("--skip", action="append", default=[], choices=sorted(OPTIONAL_SECTIONS),
                   help="leave out a section that computes more (repeatable): the Z3 safe regions, the storm "
                        "simulation")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    jobs.add_arguments(r)
    return r


def _designs_for(scenario, asked: list[str] | None) -> tuple[str, ...]:
    if not asked:
        return (scenario.design.name,)
    if "all" in asked:
        return scenario.all_designs()
    return tuple(dict.fromkeys(asked))


# The budget flags, each with the one engine it steers: given for a report that does not run that
# engine, a flag is refused (as `check` refuses an option its engine does not take).
_BUDGET_FLAGS = {"max_seconds": "exhaustive", "examples": "hypothesis", "hypothesis_steps": "hypothesis",
                 "symbolic_steps": "symbolic"}


def _budget(args, engines: tuple[str, ...]) -> Budget:
    for key, engine in _BUDGET_FLAGS.items():
        value = getattr(args, key)
        flag = f"--{key.replace('_', '-')}"
        if value is not None and engine not in engines:
            raise ReportError(f"{flag} {value:g}: only used by --engine {engine}, which this report does not run "
                              f"(it runs {', '.join(engines)}); add --engine {engine} or leave {flag} out")
        if key != "max_seconds" and value is not None and value < 1:
            raise ReportError(f"{flag} {value}: must be a whole number >= 1")
    if args.max_seconds is not None and not (args.max_seconds > 0 and args.max_seconds != float("inf")):
        raise ReportError(f"--max-seconds {args.max_seconds:g}: must be > 0 and finite")
    given = {key: getattr(args, key) for key in _BUDGET_FLAGS if getattr(args, key) is not None}
    return replace(Budget(seed=0 if args.seed is None else args.seed), **given)


def _engines(args) -> tuple[str, ...]:
    """The engines the report runs, in `ENGINE_ORDER`: those given with --engine, else all."""
    return tuple(e for e in ENGINE_ORDER if e in (args.engines or ENGINE_ORDER))


def _command(args, engines: tuple[str, ...], budget: Budget) -> list[str]:
    """The command line that rebuilds this report, for the "What was searched" section.

    Without --jobs or --scheduler: they change where the searches run, not
    what they find, and the report is the same for any of them.
    """
    words = [str(s) for s in args.scenarios] + ["--out", str(args.out)]
    words += [w for d in args.designs or () for w in ("--design", d)]
    words += [w for e in args.engines or () for w in ("--engine", e)]
    words += [w for p in args.properties or () for w in ("--property", p)]
    if any(e in SEEDED_ENGINES for e in engines):  # else the seed is refused, as it would steer nothing
        words += ["--seed", str(budget.seed)]
    # Each budget the report's engines read, as it was spent (a flag for an engine not run is refused).
    for key, engine in _BUDGET_FLAGS.items():
        value = getattr(budget, key)
        if engine in engines and value is not None:
            words += [f"--{key.replace('_', '-')}", f"{value:g}"]
    words += [w for k in args.skip for w in ("--skip", k)]
    return words


def run(args) -> int:
    """The ``report`` command: 0 written, 1 a shown trace does not replay (nothing written), 2 bad input."""
    try:
        return _run(args)
    except (ReportError, ScenarioError) as err:
        print(f"stormcheck: {err}", file=sys.stderr)
        return 2
    except TraceDoesNotReplay as err:
        print(f"stormcheck: report not written: {err}", file=sys.stderr)
        return 1


def _run(args) -> int:
    for d in args.designs or ():
        if d != "all" and d not in DESIGNS:
            raise ReportError(f"--design {d!r}: unknown design; choose one of {', '.join(DESIGNS)} or all")
    engines = _engines(args)
    # A seed no engine of the report uses (breadth-first search draws nothing) is refused, as `check` refuses it.
    refused = [unused_seed(e, args.seed) for e in engines]
    if all(refused):
        raise ReportError(refused[0])
    budget = _budget(args, engines)
    for name in args.properties or ():
        try:
            by_name(name)
        except KeyError as err:
            raise ReportError(f"--property: {err.args[0]}") from None
    names = args.scenarios or preset_names()
    scenarios = [load_scenario(n) for n in dict.fromkeys(names)]
    if len({s.name for s in scenarios}) != len(scenarios):
        raise ReportError("two scenarios share a name; give each scenario file a distinct [scenario] name")
    designs = {s.name: _designs_for(s, args.designs) for s in scenarios}
    _check_out(Path(args.out))
    check_out(args.out)  # made and written to now: an unwritable folder must not cost the whole run
    progress = Progress(not args.quiet)
    t0 = time.perf_counter()
    ctx = build_report(scenarios, designs, args.out, engines=engines, budget=budget, progress=progress,
                       argv=_command(args, engines, budget), properties=args.properties or (), skip=args.skip,
                       runner=getattr(args, "runner", jobs.Runner()))
    if not args.quiet:
        print(f"stormcheck: report written to {ctx.folder / 'report.html'} and report.md "
              f"({len(ctx.cells)} engine runs, {len(ctx.shown)} traces replayed, "
              f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0
