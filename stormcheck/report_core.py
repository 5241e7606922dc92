"""What a design-review report is made of: its context, its sections, its traces.

The report is a list of sections, each made by a *section builder*: a
function ``builder(ctx: ReportContext) -> Section | None`` (None: nothing
to say for this report, e.g. no violation to show). Builders read the engine
results gathered in the context, may compute more (a synthesis, a storm
simulation), and return their part of the page twice, as an XHTML fragment
and as Markdown, with the images both refer to. `stormcheck.report` keeps
the list of builders; a new kind of section is one function and one
`register_section` call.

Every trace a section shows goes through `ReportContext.show_trace`, which
writes it as ITF beside the report, reads it back and replays it through the
current model: a trace that does not replay stops the build
(`TraceDoesNotReplay`), so a report never shows a run the model cannot make.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from stormcheck import count
from stormcheck.checkers.result import CheckResult, PropertyResult
from stormcheck.model.scenario import Scenario, scenario_from_dict
from stormcheck.properties.core import ALWAYS, NotEncoded
from stormcheck.properties.protocol import by_name
from stormcheck.traces.export import replay_trace
from stormcheck.traces.itf import Trace
from stormcheck.traces.run import ReplayError, Run

from .output import finding_lost, run_scenario, stem, trace_meta
from .output import version as tool_version

__all__ = [
    "Budget",
    "Cell",
    "Image",
    "Section",
    "SectionBuilder",
    "ShownTrace",
    "ReportContext",
    "ReportError",
    "TraceDoesNotReplay",
    "Progress",
]


class ReportError(Exception):
    """Bad input for a report (exit code 2): the message says what to fix."""


class TraceDoesNotReplay(Exception):
    """A trace the report would show does not replay: the build stops (exit code 1)."""


@dataclass(frozen=True)
class Budget:
    """What each engine may spend per scenario and design.

    The defaults keep a report of the three presets, or of the 2015 fleet
    under all six designs, within a few minutes on a laptop: the exhaustive
    engine is capped in seconds (it finishes the presets in under one), the
    Hypothesis engine runs `examples` seeded runs of at most
    `hypothesis_steps` steps per ``always`` property, and the symbolic engine
    unrolls `symbolic_steps` steps (None: as ``stormcheck check`` does, the
    scenario's depth bound, else the engine's default).
    """

    max_seconds: float = 60.0
    examples: int = 300
    hypothesis_steps: int = 30
    symbolic_steps: int | None = None
    seed: int = 0

    def options(self, engine: str, scenario: Scenario) -> dict:
        """The `run_engine` options for `engine` on `scenario`."""
        if engine == "hypothesis":
            # Always seeded, so no example database is read or written: the
            # same seed gives the same report.
            return {"examples": self.examples, "steps": self.hypothesis_steps}
        if engine == "symbolic":
            return {"steps": self.symbolic_steps}
        return {}


@dataclass(frozen=True)
class Cell:
    """One engine's result on one scenario under one design, and its wall time."""

    scenario: Scenario  # already under `design`
    engine: str
    result: CheckResult
    seconds: float

    @property
    def design(self) -> str:
        return self.scenario.design.name


@dataclass(frozen=True)
class Image:
    """An image a section shows: written to ``img/NAME`` and embedded in the HTML.

    `mime` is ``image/svg+xml`` or ``image/png``; `alt` is read by people who
    cannot see it and shown as the Markdown link text.
    """

    name: str
    data: bytes
    mime: str
    alt: str


@dataclass(frozen=True)
class Section:
    """One part of the report, in both formats.

    `html` is an XHTML fragment (well-formed XML; no ``<h2>``, the page adds
    the title), `markdown` the same content as Markdown (no heading either).
    Use `stormcheck.report_html.img_html` / `img_markdown` to refer to
    `images`: the HTML embeds them as ``data:`` URIs so the page is
    self-contained, the Markdown links ``img/NAME``.
    """

    key: str  # the anchor: letters, digits and dashes
    title: str
    html: str
    markdown: str
    images: tuple[Image, ...] = ()


SectionBuilder = Callable[["ReportContext"], "Section | None"]


@dataclass(frozen=True)
class ShownTrace:
    """A trace a section shows: where it was written and how its replay went."""

    name: str  # file stem: SCENARIO.DESIGN.PROPERTY.ENGINE
    itf: str  # path relative to the report folder
    timeline: str
    scenario: str
    design: str
    property: str
    engine: str
    steps: int
    replay: str  # what the replay established, in words


class Progress:
    """One line per stage on stderr: ``label ... outcome (seconds)``; silent when disabled."""

    def __init__(self, enabled: bool, stream=None) -> None:
        self.enabled, self.stream = enabled, stream or sys.stderr

    def line(self, text: str) -> None:
        """One finished line, for work timed elsewhere (a job run in another process)."""
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    @contextmanager
    def stage(self, label: str) -> Iterator[dict]:
        """Time a stage; the caller sets ``outcome["text"]`` to what it found."""
        outcome = {"text": "done"}
        if self.enabled:
            self.stream.write(f"{label} ... ")
            self.stream.flush()
        t0 = time.perf_counter()
        try:
            yield outcome
        except BaseException as err:
            if self.enabled:
                # A stopped run is not a failed stage, nor a refusal: say which it was.
                if isinstance(err, KeyboardInterrupt):
                    self.stream.write("interrupted\n")
                else:
                    self.stream.write(f"{err}\n" if isinstance(err, NotEncoded) else "failed\n")
                self.stream.flush()
            raise
        if self.enabled:
            self.stream.write(f"{outcome['text']} ({time.perf_counter() - t0:.1f} s)\n")
            self.stream.flush()


@dataclass
class ReportContext:
    """Everything a section builder may read, and the two services it may use.

    Attributes
    ----------
    scenarios : list of Scenario
        The scenarios asked for, under their own design, in the order given.
    designs : dict
        Scenario name -> the design names reported for it.
    engines : tuple of str
        Engine names, in column order.
    cells : list of Cell
        Every (scenario, design, engine) result.
    budget : Budget
        What each engine could spend; also the seed.
    folder : Path
        Where the report is being built (a temporary folder until it is
        complete); `show_trace` writes under ``traces/`` in it.
    """

    scenarios: list[Scenario]
    designs: dict[str, tuple[str, ...]]
    engines: tuple[str, ...]
    budget: Budget
    folder: Path
    progress: Progress
    argv: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()  # property names asked for; empty: the default set
    runner: object = None  # where independent runs go (`stormcheck.jobs.Runner`); None: this process
    prefetched: dict = field(default_factory=dict)  # job name -> result, run ahead with the cells
    cells: list[Cell] = field(default_factory=list)
    shown: list[ShownTrace] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now().astimezone())
    version: str = field(default_factory=tool_version)

    def cell(self, scenario: str, design: str, engine: str) -> Cell | None:
        for c in self.cells:
            if c.scenario.name == scenario and c.design == design and c.engine == engine:
                return c
        return None

    def stage(self, label: str):
        """A progress stage (see `Progress.stage`) for work a section does itself."""
        return self.progress.stage(label)

    def run_jobs(self, todo: list) -> list:
        """The results of `todo` (`stormcheck.jobs.Job`s), in order.

        Those the report ran ahead, beside the engine runs (see
        `stormcheck.report.SECTION_JOBS`), are taken from there; the rest
        run now, on the report's runner. Called inside a stage, so no
        progress line of its own.
        """
        from . import jobs

        missing = [job for job in todo if job.name not in self.prefetched]
        got = dict(zip((job.name for job in missing), jobs.run(missing, self.runner or jobs.Runner(), progress=False)))
        return [self.prefetched[job.name] if job.name in self.prefetched else got[job.name] for job in todo]

    def show_trace(self, cell: Cell, prop: PropertyResult) -> ShownTrace:
        """Write `prop`'s run as ITF + timeline under ``traces/`` and replay it.

        The trace is read back from disk and replayed with
        `stormcheck.traces.export.replay_trace` under the scenario config it
        stores, exactly as ``stormcheck replay`` does, and its last step must
        still show the property's verdict.

        Raises
        ------
        TraceDoesNotReplay
            Naming the trace and the first step that diverges.
        """
        from stormcheck.traces.export import run_to_trace
        from stormcheck.traces.timeline import render_timeline

        sc, result = cell.scenario, cell.result
        name = f"{stem(sc, result, prop)}.{cell.engine}"
        for earlier in self.shown:
            if earlier.name == name:
                return earlier
        fleet = run_scenario(sc, prop)
        seed = result.stats.get("seed", self.budget.seed)
        trace = run_to_trace(prop.run, fleet.params, trace_meta(sc, result, prop, seed))
        itf, timeline = f"traces/{name}.itf.json", f"traces/{name}.timeline.txt"
        (self.folder / "traces").mkdir(parents=True, exist_ok=True)
        trace.write(self.folder / itf)
        text = render_timeline(prop.run, fleet.params, title=name, focus=prop)
        (self.folder / timeline).write_text(text, encoding="utf-8")  # the whole folder is renamed into place
        with self.stage(f"replay {name}") as outcome:
            outcome["text"] = _replay_file(self.folder / itf)
        shown = ShownTrace(name, itf, timeline, sc.name, cell.design, prop.name, cell.engine, len(prop.run),
                           outcome["text"])
        self.shown.append(shown)
        return shown


def _replay_file(path: Path) -> str:
    """Replay a written trace as ``stormcheck replay`` does; what it showed, or raise."""
    trace = Trace.read(path)
    meta = trace.meta
    try:
        scenario = scenario_from_dict(meta["scenario_config"], source=f"trace:{path.name}")
        run: Run = replay_trace(trace, scenario.params)
    except (ReplayError, ValueError, KeyError) as err:
        raise TraceDoesNotReplay(f"{path.name} does not replay: {err}") from None
    prop = by_name(meta["property"])
    lost = finding_lost(scenario.params, prop, run)
    if lost is not None:
        raise TraceDoesNotReplay(f"{path.name} replays, but {lost} {meta.get('verdict', '')}".rstrip())
    if prop.liveness:
        return (f"replays, {count(len(run), 'step')}; its {len(run) - run.loop}-step cycle repeats forever and violates "
                f"{prop.name}")
    what = "violates" if prop.modality == ALWAYS else "witnesses"
    return f"replays, {count(len(run), 'step')}; the last step {what} {prop.name}"
