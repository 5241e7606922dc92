"""Writing a check's results: ITF traces, timelines and the JSON summary.

Every file is written atomically (a temporary file in the same folder, then a
rename), so an interrupted run never leaves half a trace behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from stormcheck import count
from stormcheck.checkers import RANGES_ELSEWHERE
from stormcheck.checkers.lasso import lasso_problem
from stormcheck.checkers.result import CheckResult, PropertyResult
from stormcheck.model.scenario import Scenario, scenario_from_dict
from stormcheck.properties.core import Property
from stormcheck.traces.export import run_to_trace
from stormcheck.traces.run import Run
from stormcheck.traces.timeline import render_timeline

from . import signals

__all__ = ["check_out", "drop_stale", "say_dropped", "tidy", "OutputError", "version", "trace_meta", "run_scenario", "write_text", "write_findings", "summary", "stem", "file_mode", "atomic_path", "finding_lost", "verdict_words", "points_only_words", "ranges_fields", "WRITTEN"]

# Every file `atomic_path` completed in this process, in order: what an
# interrupted command can say it kept.
WRITTEN: list[str] = []


def version() -> str:
    """The version recorded in traces and reports, and printed by ``--version``."""
    from stormcheck import __version__

    return __version__


def stem(scenario: Scenario, result: CheckResult, prop: PropertyResult) -> str:
    """The file name stem of a finding: ``gitter-2015.per-server.no_valid_reap``."""
    return f"{scenario.name}.{result.design}.{prop.name}"


def run_scenario(scenario: Scenario, prop: PropertyResult) -> Scenario:
    """The fleet `prop`'s run was computed under.

    The scenario itself, unless the engine drew parameters from its
    ``[ranges]``: then the concrete scenario the result's `config` describes.
    """
    if prop.config is None:
        return scenario
    return scenario_from_dict(prop.config, scenario.source)


def trace_meta(scenario: Scenario, result: CheckResult, prop: PropertyResult, seed: int) -> dict:
    """What a trace must carry to be replayed and understood on its own.

    ``scenario_config`` is always the config the run replays under: with
    parameters drawn from ranges, the concrete one (the drawn values are
    also listed under ``drawn``).
    """
    meta = {
        "scenario": scenario.name,
        "scenario_config": prop.config if prop.config is not None else scenario.config,
        "design": result.design,
        "property": prop.name,
        "modality": prop.modality,
        "verdict": str(prop.verdict),
        "basis": prop.basis,
        "engine": result.engine,
        "seed": seed,
        "version": version(),
    }
    if prop.drawn is not None:
        meta["drawn"] = prop.drawn
    return meta


class OutputError(ValueError):
    """An output location that cannot be written: found before any work starts."""


# Folders `check_out` created, outermost first: `tidy` removes those still
# empty when the command ends, so a run that wrote nothing leaves nothing.
MADE: list[Path] = []


def check_out(folder, flag: str = "--out") -> None:
    """Refuse an output folder that cannot be made or written, before any work starts.

    Every command calls this on its output location first, so a long search
    is never thrown away for want of a place to write its results. Asking
    the file system is the only sure test (`os.access` says yes to root, and
    some file systems refuse a folder whatever the permissions say), so the
    folder is created and a probe file written in it and removed; the folders
    made here are removed again by `tidy` if nothing is written into them.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder}: is a file, not a folder; give a folder (it is created if missing)")
    probe = folder.absolute()
    missing = []
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {folder}: {probe} is a file, so the folder cannot be made; give another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {folder}: {probe} is not writable; give a folder you can write to")
    made = list(reversed(missing))
    try:
        for path in made:
            path.mkdir()
        fd, name = tempfile.mkstemp(prefix=".stormcheck-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        for path in reversed(made):
            if path.is_dir():
                path.rmdir()
        why = err.strerror or str(err)
        raise OutputError(f"{flag} {folder}: cannot be {'created' if made else 'written'} ({why}); "
                          "give a folder you can write to") from None
    MADE.extend(made)


def tidy() -> None:
    """Remove the folders `check_out` made that are still empty: the run wrote nothing there."""
    while MADE:
        path = MADE.pop()
        try:
            path.rmdir()
        except OSError:  # something was written into it (or beside, in a parent): kept
            pass


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask).

    `tempfile.mkstemp` makes files readable by their owner only; results
    are meant to be shared, so renamed files get the ordinary mode.
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp"):
    """Yield a temporary path beside `path`; rename it to `path` when the block succeeds.

    On any error the temporary file is removed, so a reader never sees half
    a file. `suffix` is for writers that choose a format by file name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # A signal between creating the file and knowing its name would
        # leave it behind: `deferred` raises it just after, inside the try.
        with signals.deferred():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
            os.close(fd)
        yield tmp
        with signals.deferred():
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
            WRITTEN.append(str(path))
    except BaseException:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


# The files `write_findings` may write for one property, by kind: their names end so.
FINDING_SUFFIXES = {"trace": ".itf.json", "timeline": ".timeline.txt", "repro": ".repro.py"}


def _finding_path(base: Path, kind: str) -> Path:
    return base.with_name(base.name + FINDING_SUFFIXES[kind])


def write_findings(scenario: Scenario, result: CheckResult, out: Path, seed: int = 0) -> dict[str, dict[str, str]]:
    """Write a trace and a timeline for each property that has a run.

    A property whose result carries a reproduction (`PropertyResult.repro`)
    also gets it as ``SCENARIO.DESIGN.PROPERTY.repro.py``.

    Returns ``{property: {"trace": path, "timeline": path[, "repro": path]}}``.
    """
    written: dict[str, dict[str, str]] = {}
    for prop in result.properties:
        if prop.run is None:
            continue
        base = out / stem(scenario, result, prop)
        fleet = run_scenario(scenario, prop)
        trace = run_to_trace(prop.run, fleet.params, trace_meta(scenario, result, prop, seed))
        timeline = render_timeline(prop.run, fleet.params, title=base.name, focus=prop)
        trace_path, timeline_path = _finding_path(base, "trace"), _finding_path(base, "timeline")
        out.mkdir(parents=True, exist_ok=True)
        trace.write(trace_path)
        WRITTEN.append(str(trace_path))
        write_text(timeline_path, timeline)
        written[prop.name] = {"trace": str(trace_path), "timeline": str(timeline_path)}
        if prop.repro is not None:
            repro_path = _finding_path(base, "repro")
            write_text(repro_path, prop.repro)
            written[prop.name]["repro"] = str(repro_path)
    return written


def drop_stale(scenario: Scenario, result: CheckResult, out: Path) -> list[str]:
    """Remove what an earlier run wrote for a property that has no run now; the paths removed.

    The names are fixed (`stem`): left in place, an earlier counterexample would sit beside this
    run's verdict (say, a fixed timeout that now holds) as if it were this run's.
    """
    removed = []
    for prop in result.properties:
        if prop.run is not None:
            continue
        base = out / stem(scenario, result, prop)
        for kind in FINDING_SUFFIXES:
            path = _finding_path(base, kind)
            if path.is_file():
                path.unlink()
                removed.append(str(path))
    return removed


def say_dropped(removed: list[str]) -> None:
    """One line on stderr naming the files `drop_stale` removed (nothing when none)."""
    if removed:
        print(f"stormcheck: removed {count(len(removed), 'file')} an earlier run wrote for properties that have no "
              f"run now: {'  '.join(removed)}", file=sys.stderr)


def summary(scenario: Scenario, result: CheckResult, files: dict, seed: int) -> dict:
    """The one machine-readable summary `check --json` prints."""
    return {
        "scenario": scenario.name,
        "source": scenario.source,
        "design": result.design,
        "engine": result.engine,
        "seed": seed,
        "verdict": str(result.verdict),
        # The step bound a "holds" rests on (null: none), beside the verdict it qualifies.
        "within_steps": result.within,
        **ranges_fields(result.stats),
        "properties": {
            p.name: {
                "modality": p.modality,
                "verdict": str(p.verdict),
                "within_steps": p.within,
                "basis": p.basis,
                "steps": len(p.run) if p.run is not None else None,
                **({"drawn": p.drawn} if p.drawn is not None else {}),
                **files.get(p.name, {}),
            }
            for p in result.properties
        },
        "stats": result.stats,
    }


def ranges_fields(stats: dict) -> dict:
    """For a scenario with [ranges]: them, whether the engine searched them, and what it searched instead.

    `stats` are a result's (`checkers.points_only` sets these keys); ``check --json`` and ``plan --json``
    give them alike.
    """
    if "ranges_searched" not in stats:
        return {}
    searched = stats["ranges_searched"]
    return {"ranges": stats.get("ranges", {}), "ranges_searched": searched,
            "searched": "ranges" if searched else "point values only",
            **({} if searched else {"ranges_searched_by": stats.get("ranges_searched_by", {})})}


def verdict_words(result: CheckResult) -> str:
    """The verdict line's words: the verdict, with the bound or the limit of the search it rests on."""
    said = str(result.verdict)
    if result.within is not None:
        return f"{said} within {count(result.within, 'step')}"
    if result.stats.get("ranges_searched") is False:
        return f"{said} ({points_only_words(result.engine, result.stats.get('ranges', {}))})"
    return said


def points_only_words(engine: str, ranges: dict) -> str:
    """That `engine` judged a ranged scenario at its point values only: ``check``'s and ``plan``'s verdict lines."""
    spans = ", ".join(f"{key} [{lo}, {hi}]" for key, (lo, hi) in ranges.items())
    return f"at the point values only; [ranges] {spans} not searched by --engine {engine}: {RANGES_ELSEWHERE}"


def finding_lost(params, prop: Property, run: Run) -> str | None:
    """Why a replayed `run` no longer shows its finding for `prop`; None when it still does.

    A liveness run must still be a violating lasso (`checkers.lasso.lasso_problem`);
    any other run's last step (or state) must still be the counterexample or
    witness. ``stormcheck replay`` and the report both ask this.
    """
    if prop.liveness:
        return lasso_problem(params, prop, run)
    if run.steps:
        pre, (action, st) = run.states[-2], run.steps[-1]
        found = (prop.interesting(params, pre, action, st) if prop.over == "step"
                 else prop.interesting(params, st.state))
    else:
        found = prop.over == "state" and prop.interesting(params, run.initial)
    return None if found else f"its last step no longer shows {prop.name}"
