"""``stormcheck sweep SCENARIO --grid KEY=LO:HI:STEP ...``: the verdict at every point of a grid.

Each grid point is the scenario with those values (the keys ``[ranges]``
takes), checked by one engine as ``stormcheck check`` would. Without
``--grid`` the axes are the scenario's ``[ranges]``, `flags.RANGE_POINTS`
values each; with it, ``[ranges]`` is not used (a ranged key with no axis is
checked at its point value, and the command says so). The points are
independent jobs (`stormcheck.jobs`), each with ``check``'s budget options
(`stormcheck.engine_flags`), so ``--jobs`` and ``--scheduler``
spread them, and the tables come out in grid order whatever ran where.

Written to ``--out`` (atomically, by this process only):

* ``SCENARIO.sweep.csv`` and ``SCENARIO.sweep.md``: one row per point, the
  overall verdict and each property's, how much the engine searched, and
  what the verdict rests on (the basis ``check`` prints);
* ``SCENARIO.sweep.png``: the verdict over the grid (the first two keys;
  with more, a cell shows the worst verdict over the others), and the
  boundary of the region the symbolic engine proves free of valid-session
  reaps (`checkers.z3_synth.safe_region` over the grid's span). Where that
  proof is not available, the plot and the tables say so and why.

Exit codes as ``check``: 0 every point holds, 1 some point is violated,
3 some point is inconclusive or failed (none violated), 2 bad input.
"""

from __future__ import annotations

import copy
import csv
import io
import sys
from pathlib import Path

from stormcheck import count
from stormcheck.checkers import ENGINES, EXIT_CODES, run_engine
from stormcheck.checkers.result import examples_searched
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import ScenarioError, load_scenario, scenario_from_dict
from stormcheck.properties.core import Verdict
from stormcheck.properties.protocol import PROPERTIES, by_name

from . import engine_flags, jobs
from .flags import GRID_KEYS, RANGE_POINTS, grid_from_ranges, grid_points, parse_grid, unswept
from .output import atomic_path, check_out, write_text

__all__ = ["add_parser", "run"]

# What `safe_region` proves: no reaper path reaps a valid session.
PROVED_PROPERTY = "no_valid_reap"
# Keys the synthesis ranges over; fleet sizes are not parameters of its region.
SYNTH_KEYS = ("timeout", "interval", "rtt_max", "load_ms", "loss_duration", "cut_duration")
# Grid keys that are durations, in the scenario's time unit (`load_ms` is a latency, always ms).
DURATION_KEYS = ("timeout", "interval", "rtt_max", "loss_duration", "cut_duration")
FAILED = "failed"


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="check every point of a parameter grid; table and plot of the verdicts")
    s.add_argument("scenario", help="a preset name or a .toml file")
    s.add_argument("--grid", action="append", metavar="KEY=LO:HI[:STEP]",
                   help=f"an axis of the grid (repeatable), HI included; keys: {', '.join(GRID_KEYS)} "
                        f"(default: the scenario's [ranges], {RANGE_POINTS} points per axis)")
    s.add_argument("--design", help=f"a named design: {', '.join(DESIGNS)} (default: the scenario's)")
    s.add_argument("--engine", default="exhaustive", choices=sorted(ENGINES), help="the engine (default: exhaustive)")
    s.add_argument("--property", action="append", dest="properties", metavar="NAME",
                   help="check only this property (repeatable); default: the safety and reachability properties")
    s.add_argument("--seed", type=int, help="hypothesis, symbolic: the seed, the same at every point (default 0)")
    engine_flags.add_arguments(s)  # check's budget, the same at every point
    s.add_argument("--out", type=Path, default=Path("out/sweep"), help="folder for the tables and plot (default ./out/sweep)")
    s.add_argument("--no-boundary", action="store_true", help="do not ask the symbolic engine for the proved boundary")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    jobs.add_arguments(s)


def run(args) -> int:
    """The ``sweep`` command; every input checked before the first search."""
    options = engine_flags.engine_options(args)
    grid = parse_grid(args.grid) if args.grid else None
    if args.design is not None and args.design not in DESIGNS:
        raise ScenarioError(f"--design {args.design!r}: unknown design; choose one of {', '.join(DESIGNS)}")
    # The budget as [search] keys of the scenario: every point is built from its config, so every point has it.
    scenario = engine_flags.with_budget(load_scenario(args.scenario, design=args.design), args)
    try:
        props = tuple(by_name(n) for n in dict.fromkeys(args.properties)) if args.properties else PROPERTIES
    except KeyError as err:
        raise ScenarioError(f"--property: {err.args[0]}") from None
    left = unswept(scenario, grid) if grid is not None else []
    if grid is None:
        grid = grid_from_ranges(scenario)
        left = unswept(scenario, grid)
        _note(args, f"no --grid: sweeping {scenario.source}'s [ranges], up to {RANGE_POINTS} points per axis: "
                    + "; ".join(f"{k} {v[0]} to {v[-1]} ({len(v)} points)" for k, v in grid.items()))
        if left:
            _note(args, f"[ranges] {', '.join(left)}: not a grid key, so every point has the scenario's point value")
    elif scenario.ranges:
        rest = f"; {', '.join(left)}, with no axis, keep the scenario's point values" if left else ""
        _note(args, f"{scenario.source}'s [ranges] is not used by the sweep: its axes are those of --grid{rest}")
    points = grid_points(scenario, grid)
    check_out(args.out)
    todo = [jobs.Job(_label(point), run_engine, (args.engine, sc, props), {"seed": args.seed or 0, **options})
            for point, sc in points]
    why_not = _why_no_boundary(args, grid, props)
    if why_not is None:
        todo.append(jobs.Job("proved boundary (symbolic)", _boundary, (scenario.config, scenario.source, grid,
                                                                        [p for p, _ in points])))
    results = jobs.run(todo, args.runner, label=f"sweep {scenario.name}", progress=not args.quiet)
    boundary = None
    if why_not is None:
        got = results.pop()
        if isinstance(got, jobs.Failed):
            why_not = f"the symbolic engine gave none ({got.error})"
        elif got["constraint"] is None:
            why_not = "the symbolic engine proved no region over this span"
        else:
            boundary = got
    rows = [_row(point, result, props) for (point, _), result in zip(points, results)]
    unit = scenario.params.unit
    title = (f"{scenario.name}, design {scenario.design.name}, engine {args.engine}: "
             f"{len(rows)} points over {', '.join(grid)}" + (f" (times in {unit})" if unit != "s" else ""))
    # In milliseconds the duration columns say so; in seconds they stay as they always were.
    rows = [{**r, "point": {_column(k, unit): v for k, v in r["point"].items()}} for r in rows]
    grid = {_column(k, unit): v for k, v in grid.items()}
    proof = (f"proved free of valid-session reaps (symbolic engine) where {boundary['constraint']}" if boundary
             else f"proved boundary not drawn: {why_not}")
    if boundary and len(set(boundary["inside"])) == 1:  # the region's edge does not cross this grid
        proof += (f"; {'every' if boundary['inside'][0] else 'no'} point of this grid lies inside it, "
                  f"so no boundary line is drawn")
    files = {kind: args.out / f"{scenario.name}.sweep.{kind}" for kind in ("csv", "md", "png")}
    write_text(files["csv"], _csv(grid, rows, props))
    write_text(files["md"], _markdown(title, proof, grid, rows, props))
    from .sweep_plot import plot_sweep  # matplotlib only once there is something to draw

    with atomic_path(files["png"], suffix=".png") as tmp:
        plot_sweep(tmp, title, proof, grid, rows, boundary)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("holds", "violated", "inconclusive", FAILED)}
    print(title)
    print("  " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    print(f"  {proof}")
    for r in rows:
        if r["verdict"] == FAILED:
            print(f"  {_label(r['point'])}: failed: {r['note']}")
    for path in files.values():
        print(f"  wrote {path}")
    worst = max((EXIT_CODES[Verdict(r["verdict"])] if r["verdict"] != FAILED else 3 for r in rows),
                key=lambda c: (0, 3, 1).index(c))
    return worst


def _note(args, text: str) -> None:
    if not args.quiet:
        print(f"stormcheck: note: {text}", file=sys.stderr)


def _label(point: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


def _column(key: str, unit: str) -> str:
    """A grid key as a table column: ``timeout``, or ``timeout (ms)`` for a duration in milliseconds."""
    return f"{key} ({unit})" if unit != "s" and key in DURATION_KEYS else key


def _why_no_boundary(args, grid: dict, props) -> str | None:
    """Why the symbolic boundary is not asked for (None: it is)."""
    if args.no_boundary:
        return "--no-boundary"
    if PROVED_PROPERTY not in {p.name for p in props}:
        return f"the symbolic engine proves {PROVED_PROPERTY}, which this sweep does not check"
    off = [k for k in grid if k not in SYNTH_KEYS]
    if off:
        return (f"synthesis is over protocol parameters, not {', '.join(off)} "
                "(its proof covers any number of clients; servers would need one proof each)")
    return None


def _boundary(config: dict, source: str, grid: dict, points: list[dict]) -> dict:
    """The proved-safe region over the grid's span, and which grid points lie inside it (picklable)."""
    from stormcheck.checkers.z3_synth import safe_region

    cfg = copy.deepcopy(config)
    cfg["ranges"] = {k: [min(v), max(v)] for k, v in grid.items()}
    region = safe_region(scenario_from_dict(cfg, source))
    return {"constraint": region.constraint, "inside": [region.contains(p) for p in points]}


def _row(point: dict, result, props) -> dict:
    if isinstance(result, jobs.Failed):
        return {"point": point, "verdict": FAILED, "properties": {p.name: "" for p in props}, "searched": "",
                "note": result.error}
    return {"point": point, "verdict": str(result.verdict),
            "properties": {p.name: str(p.verdict) for p in result.properties},
            "searched": _searched(result), "note": _basis(result)}


def _basis(result) -> str:
    """What the point's verdict rests on, as ``check`` prints it: the basis of each property that decided it.

    A basis the properties share is said once; otherwise each is named, so a
    compositional "holds for any number of clients" stays apart from one
    that holds in the scenario's own fleet only.
    """
    deciding = [p for p in result.properties if p.verdict == result.verdict]
    groups: dict[str, list[str]] = {}
    for p in deciding:
        groups.setdefault(p.basis, []).append(p.name)
    if len(groups) == 1 and len(deciding) == len(result.properties):
        return next(iter(groups))
    return "; ".join(f"{', '.join(names)}: {basis}" for basis, names in groups.items())


def _searched(result) -> str:
    """How much the engine searched, in its own unit, as ``check``'s summary line counts it."""
    st = result.stats
    if "examples" in st:
        return examples_searched(st)
    if "states" in st:
        return f"{st['states']:,} states"
    if "depth_bound" in st:
        return f"certified search of up to {count(st['depth_bound'], 'step')}"
    return ""


def _columns(grid: dict, props) -> list[str]:
    return [*grid, "verdict", *(p.name for p in props), "searched", "note"]


def _cells(row: dict, props) -> list:
    return [*row["point"].values(), row["verdict"], *(row["properties"][p.name] for p in props), row["searched"],
            row["note"]]


def _csv(grid: dict, rows: list[dict], props) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_columns(grid, props))
    for row in rows:
        w.writerow(_cells(row, props))
    return buf.getvalue()


def _markdown(title: str, proof: str, grid: dict, rows: list[dict], props) -> str:
    head = _columns(grid, props)
    lines = [f"# Sweep: {title}", "", proof + ".", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in _cells(row, props)) + " |")
    return "\n".join(lines) + "\n"
