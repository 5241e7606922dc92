"""`stormcheck storm`: does the storm a fault starts outlive it?

Two answers, from two engines over the same protocol rules:

1. *Can* it: the exhaustive engine looks for a lasso (`checkers.lasso`)
   violating `storm_subsides` in the scenario's small fleet: a cycle of
   fault-free steps with reconnects in it. Written as an ITF trace with its
   ``loop`` and as a timeline.
2. *Does* it, and for how long: the storm simulation (`model.storm`) runs
   the ``[storm]`` fleet (50,000 clients by default) through the fault under
   each design and each mitigation, and ranks the mitigations by recovery
   time. Time series go to CSV, one plot per design to PNG.

With ``--goodput``, also the goodput curve (`checkers.goodput`) of the
scenario's own design as configured: setups completed per second against the
offered rate, each load run from a calm and from a stormy start, and the
metastable region where both persist.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

from stormcheck import count
from stormcheck.checkers.bfs import check_bfs
from stormcheck.checkers.result import EXIT_CODES
from stormcheck.checkers.goodput import (LOADS, MEASURE, STARTS, capacity_per_s, check_curve, goodput_run,
                                         metastable_loads)
from stormcheck.checkers.recovery import CALM_FACTOR, SETTLE, mitigations, rank_rows, simulated_designs, storm_run
from stormcheck.model.load import StormError
from stormcheck.model.params import DESIGNS
from stormcheck.model.storm import MODES, check_cycle, storm_params
from stormcheck.properties.core import Inconclusive, NotEncoded, Verdict
from stormcheck.properties.protocol import storm_subsides

from . import jobs
from .flags import load_with_flags
from .output import check_out, drop_stale, say_dropped, summary, write_findings, write_text

__all__ = ["add_parser", "run", "MAX_SAMPLED", "CERTIFY_UP_TO"]

# Sampled mode draws for every client every simulated second: measured
# ~1.3 s per run of 50,000 clients, so at this size the default 12 runs
# take about a minute (fluid mode has no such limit).
MAX_SAMPLED = 200_000
# Sampled runs of up to this many clients are certified unless --no-certify:
# each valid reap replayed through the model (checkers/certify.py). Its cost
# grows with clients x simulated time x the levels the adjuster met: measured
# (2 cores shared) 6 s for a 1500 s run of 100 clients (296 reaps), 78 s for
# a 7200 s run of 500 clients (6,474 reaps, 431 histories).
CERTIFY_UP_TO = 200


def _late_note(rows, storm, params, text) -> None:
    """Say when replies came later than the scenario's largest RTT: outside what `check` and the lasso prove."""
    late = [(row, row["series"].meta) for row in rows if row["series"].meta.get("late_replies", 0) >= 0.5]
    if not late:
        return
    latest = max(meta["latest_reply"] for _, meta in late)
    runs = ", ".join(f"{row['design']}/{row['mitigation']} {meta['late_replies']:,.0f}" for row, meta in late[:4])
    more = f" and {count(len(late) - 4, 'more run')}" if len(late) > 4 else ""
    print(f"  replies held behind queued work ([storm] reply_share = {storm.load.reply_share:g}) came later than the "
          f"largest RTT the scenario allows ({params.rtt_max} s), up to {latest:,} s: {runs}{more}. `check` and "
          "the lasso search assume every reply within [protocol] rtt, so a valid reap after such a reply is "
          "outside what they prove (certification replays it on the fleet with those round trips added).", file=text)


def _mitigation_width(rows) -> int:
    """The mitigation column: its longest name ("circuit breaker") and two spaces before the next column."""
    return max([len("mitigation"), *(len(r["mitigation"]) for r in rows)]) + 2


def add_parser(sub) -> None:
    s = sub.add_parser("storm", help="simulate the fleet through the fault: does the reconnect storm subside?")
    s.add_argument("scenario", nargs="?", default="gitter-2015", help="preset name or .toml file (default: gitter-2015)")
    s.add_argument("--design", default=None,
                   help="a named design, or 'all' (default: the scenario's design and 'off' for comparison)")
    s.add_argument("--mode", choices=MODES, default="fluid",
                   help="fluid: counts split by probability (deterministic, any size); sampled: one client each")
    s.add_argument("--seed", type=int, default=None, help="RNG seed of the sampled mode (default 0)")
    cert = s.add_mutually_exclusive_group()
    cert.add_argument("--certify", dest="certify", action="store_true", default=None,
                      help="replay every valid reap of a sampled run through the model, one ITF trace per client "
                           f"history in OUT/certified/ (default in sampled mode up to {CERTIFY_UP_TO:,} clients; "
                           "exit 3 if one does not replay)")
    cert.add_argument("--no-certify", dest="certify", action="store_false", help="do not certify a sampled run")
    s.add_argument("--clients", type=int, default=None,
                   help="fleet size (default: [storm] clients); the servers' [storm] capacity stays as written, "
                        "so a smaller fleet on the same servers is a lighter load: scale capacity in the file "
                        "to keep the same load")
    s.add_argument("--horizon", type=int, default=None, help="simulated seconds (default: [storm] horizon)")
    s.add_argument("--out", default="out/storm", help="folder for CSV, plots and lasso traces (default ./out/storm)")
    s.add_argument("--no-lasso", action="store_true", help="skip the exhaustive lasso search")
    s.add_argument("--no-plot", action="store_true", help="write no PNG plots")
    s.add_argument("--goodput", action="store_true",
                   help="also draw goodput vs offered load from a calm and a stormy start (the metastable region)")
    s.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    jobs.add_arguments(s)


def _designs(scenario, choice: str | None) -> list[str]:
    if choice == "all":
        return list(DESIGNS)
    if choice is None:
        own = scenario.design.name
        return [own] + (["off"] if own != "off" else [])
    if choice not in DESIGNS:
        raise StormError(f"--design {choice!r}: not a named design; named designs: {', '.join(DESIGNS)}, or 'all'")
    return [choice]


def run(args) -> int:
    """Run the command; exit 0 when every configured run recovers and no lasso exists, else 1."""
    scenario = load_with_flags(args.scenario, "storm", {"clients": args.clients, "horizon": args.horizon})
    storm = storm_params(scenario)
    if args.mode == "sampled" and storm.clients > MAX_SAMPLED:
        raise StormError(f"--mode sampled with {storm.clients:,} clients ([storm] clients or --clients): at most "
                         f"{MAX_SAMPLED:,} in sampled mode, which simulates about 40,000 clients a second per run "
                         f"(this would take ~{storm.clients / 40_000 / 60:,.0f} min per run); use --mode fluid for any size")
    certifying = _certifying(args, storm.clients)
    asked = _designs(scenario, args.design)
    covered, refused = simulated_designs({d: scenario.with_design(d).params for d in asked})
    if not covered:  # nothing to simulate: refused by name, before any work
        reasons = set(refused.values())
        what = reasons.pop() if len(reasons) == 1 else "; ".join(f"{d}: {why}" for d, why in refused.items())
        raise NotEncoded("storm simulation", what,
                         "check it with the exhaustive engine (stormcheck check, or --property storm_subsides)")
    designs = list(covered)
    for params in covered.values():
        check_cycle(params, storm, scenario.source)  # a cycle longer than the run: bad input, before any work
    # The curve is about the design as configured: the scenario's own, or the first one simulated.
    curve_design = (scenario.design.name if scenario.design.name in covered else designs[0]) if args.goodput else None
    if curve_design:
        check_curve(covered[curve_design], storm)  # bad input: refused before any work
    out = Path(args.out)
    check_out(out)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    report: dict = {"scenario": scenario.name, "verdict": None, "mode": args.mode, "seed": args.seed, "clients": storm.clients,
                    "horizon": storm.horizon, "subside_within": storm.subside_within, "lasso": {}, "runs": [],
                    "not_simulated": refused}
    window = storm.fault.window(storm.fault_at, scenario.params)
    report["fault"] = {"kind": storm.fault.kind, "start": window[0], "end": window[1],
                       "what": storm.fault.describe(window, scenario.params.servers)}
    text = io.StringIO()
    for design, why in refused.items():
        print(f"{design}: not simulated: {why}", file=text)

    # Every lasso search and every simulation is a job of its own; all run
    # at once (--jobs, --scheduler) and come back in this order.
    lassos = [] if args.no_lasso else [scenario.with_design(d) for d in asked]  # every design, simulated or not
    todo = [jobs.Job(f"{sc.name}/{sc.design.name}/lasso", check_bfs, (sc.params, (storm_subsides,)),
                     {"scenario": sc.name, "budget": sc.bounds}) for sc in lassos]
    runs = [(d, m.name) for d in designs for m in mitigations(storm)]
    todo += [jobs.Job(f"{d}/{m}", storm_run, (d, covered[d], storm, m),
                      {"mode": args.mode, "seed": args.seed,
                       "certify_as": scenario.with_design(d) if certifying else None})
             for d, m in runs]
    curve = [(load, start) for load in LOADS for start in STARTS] if args.goodput else []
    todo += [jobs.Job(f"{curve_design}/goodput/{load:g}/{start}", goodput_run,
                      (covered[curve_design], storm, load, start), {"mode": args.mode, "seed": args.seed})
             for load, start in curve]
    say(f"simulating {count(len(designs), 'design')} x {len(mitigations(storm))} runs each, {storm.clients:,} clients, "
        f"{storm.horizon} s" + (f"; lasso search of {count(len(lassos), 'design')}" if lassos else "") + " ...")
    started = time.perf_counter()

    def progress(i, job, got):
        if len(lassos) + len(runs) > i >= len(lassos):
            what = got.error if isinstance(got, jobs.Failed) else got["recovery"].verdict
            say(f"  {job.name}: {what} ({time.perf_counter() - started:.1f} s)")

    results = jobs.run(todo, args.runner, label=f"storm {scenario.name}", progress=not args.quiet, on_done=progress)
    failed = [r for r in results if isinstance(r, jobs.Failed)]
    if failed:  # a table ranked without some of its runs would mislead; say which failed, write nothing (exit 3)
        raise Inconclusive("; ".join(str(f) for f in failed) + ": the storm table needs every run; nothing written")
    seconds = time.perf_counter() - started
    if lassos:
        print(f"Can a storm outlive its fault? Exhaustive lasso search, {count(scenario.params.clients, 'client')}, "
              f"{scenario.params.servers} servers ({scenario.source}):", file=text)
        for sc, result in zip(lassos, results):
            design = sc.design.name
            prop = result.properties[0]
            files = write_findings(sc, result, out) if prop.run is not None else {}
            say_dropped(drop_stale(sc, result, out))
            report["lasso"][design] = summary(sc, result, files, 0)["properties"][storm_subsides.name]
            print(f"  {design:<20}{str(prop.verdict):<14}{prop.basis}", file=text)
            for where in files.get(storm_subsides.name, {}).values():
                print(f"  {'':<20}wrote {where}", file=text)
        print(file=text)

    rows = rank_rows(results[len(lassos):len(lassos) + len(runs)])
    print(f"Does it? {args.mode} simulation of {storm.clients:,} clients on {scenario.params.servers} servers, "
          f"{storm.horizon} s, {report['fault']['what']}; "
          f"W = {storm.subside_within} s "
          f"({seconds:.1f} s to simulate {len(rows)} runs):", file=text)
    wide = _mitigation_width(rows)
    print(f"  {'design':<20}{'rank':>4}  {'mitigation':<{wide}}{'verdict':<14}{'recovery':>10}{'peak/s':>9}"
          f"{'valid reaped':>14}{'max T':>7}", file=text)
    for row in rows:
        rec = row["recovery"]
        took = f"{rec.seconds} s" if rec.seconds is not None else "never"
        print(f"  {row['design']:<20}{row['rank']:>4}  {row['mitigation']:<{wide}}{str(rec.verdict):<14}{took:>10}"
              f"{rec.peak_reconnects:>9.0f}{rec.reaped_valid:>14,}{rec.max_timeout:>7}", file=text)
        report["runs"].append({"design": row["design"], "mitigation": row["mitigation"], "rank": row["rank"],
                               "description": row["description"], "verdict": str(rec.verdict), "basis": rec.basis,
                               "recovery_seconds": rec.seconds, "peak_reconnects_per_s": round(rec.peak_reconnects, 2),
                               "baseline_per_s": round(rec.baseline, 2), "reconnects": rec.reconnects,
                               "reaped_valid": rec.reaped_valid, "reaped_dead": rec.reaped_dead,
                               "max_timeout": rec.max_timeout, "abandoned": rec.abandoned, "rejected": rec.rejected,
                               "late_replies": round(row["series"].meta.get("late_replies", 0))})
    if storm.setup.deadline:  # only then can a setup be abandoned
        print(f"  clients give up a setup after {storm.setup.deadline} s ([storm] setup_deadline): a minute with an "
              "abandoned setup is not calm.", file=text)
    print(f"  calm = one-minute mean of reconnects/s <= {CALM_FACTOR} x baseline + 1, T/I at base, no valid "
          f"session reaped; recovered = calm from then to the end, seen for at least {SETTLE} s.", file=text)
    _late_note(rows, storm, scenario.params, text)
    uncertified = _certified(scenario.name, rows, report, out, text, args.mode, args.seed) if certifying else 0

    files = _write_series(scenario.name, rows, out, plot=not args.no_plot, within=storm.subside_within)
    if curve:
        points = results[len(lassos) + len(runs):]
        report["goodput"] = _goodput_text(text, scenario.params, storm, curve_design, points)
        files += _write_goodput(scenario.name, curve_design, points, report["goodput"], out, plot=not args.no_plot)
    report["files"] = files
    print(f"Wrote {len(files)} files to {out}/ (time series CSV{'' if args.no_plot else ', plots'}).", file=text)
    verdict = _verdict(report, uncertified)
    report["verdict"] = str(verdict)  # as check's: the exit code's verdict, in the document
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(text.getvalue())
    if uncertified:
        # A reap the model cannot produce: the simulation's figures are not to be trusted.
        print(f"stormcheck: inconclusive: {uncertified:,} valid reap(s) of the simulation not certified: the model "
              "does not let them happen as simulated (see 'Certified by replay')", file=sys.stderr)
    elif verdict is Verdict.INCONCLUSIVE:
        why = [f"{r['design']} as configured: {r['basis']}" for r in report["runs"]
               if r["mitigation"] == "as configured" and r["verdict"] == str(Verdict.INCONCLUSIVE)]
        why += [f"{d} lasso search: {p.get('basis', 'inconclusive')}" for d, p in report["lasso"].items()
                if p["verdict"] == str(Verdict.INCONCLUSIVE)]
        print("stormcheck: inconclusive: " + "; ".join(why), file=sys.stderr)
    return EXIT_CODES[verdict]


def _verdict(report: dict, uncertified: int) -> Verdict:
    """The command's verdict (its exit code, `EXIT_CODES`): `check`'s rule over the configured runs and lassos.

    Inconclusive when a simulated reap is not certified (the model does not
    let it happen as simulated, so the figures are not to be trusted); else
    violated if any is, else inconclusive if any is (a run too short to
    tell), else holds.
    """
    verdicts = [r["verdict"] for r in report["runs"] if r["mitigation"] == "as configured"]
    verdicts += [p["verdict"] for p in report["lasso"].values()]
    if uncertified:
        return Verdict.INCONCLUSIVE
    if str(Verdict.VIOLATED) in verdicts:
        return Verdict.VIOLATED
    if str(Verdict.INCONCLUSIVE) in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.HOLDS


def _certifying(args, clients: int) -> bool:
    """Whether to certify: --certify / --no-certify, else sampled runs of up to `CERTIFY_UP_TO` clients.

    Also refuses --seed in fluid mode, and sets the sampled mode's default
    seed: an option the chosen mode would ignore is refused, not dropped.
    """
    if args.mode != "sampled":
        if args.seed is not None:
            raise StormError(f"--seed {args.seed}: only used by --mode sampled (the mode is {args.mode}, which "
                             "draws nothing: its run is the same for every seed)")
        if args.certify is not None:
            flag = "--certify" if args.certify else "--no-certify"
            raise StormError(f"{flag}: only used by --mode sampled (the mode is {args.mode}: a fluid run counts "
                             "fractions of clients, which have no histories to replay)")
    if args.seed is None:
        args.seed = 0
    if args.certify is None:
        return args.mode == "sampled" and clients <= CERTIFY_UP_TO
    return args.certify


def _certified(name: str, rows: list[dict], report: dict, out: Path, text, mode: str, seed: int) -> int:
    """The certification of each run: a line per run, its traces written; returns how many reaps the model refutes."""
    folder = out / "certified"
    print("Certified by replay: each valid reap's client history as a run of the model, one client on the "
          "scenario's servers, replayed:", file=text)
    missing, written, late = 0, 0, 0
    for row, entry in zip(rows, report["runs"]):
        cert = row["certification"]
        files = []
        for c in cert.certificates:
            if c.problem is None:
                slug = row["mitigation"].replace(" ", "-")
                path = folder / f"{name}.{row['design']}.{slug}.{c.name}.itf.json"
                folder.mkdir(parents=True, exist_ok=True)
                meta = {"mode": mode, "seed": seed, "mitigation": row["mitigation"]}
                cert.trace(c, meta).write(path)
                files.append(str(path))
        written += len(files)
        missing += cert.refuted
        late += cert.late
        print(f"  {row['design']:<20}{row['mitigation']:<{_mitigation_width(rows)}}{cert.summary()}", file=text)
        entry["certification"] = {
            "valid_reaps": cert.valid_reaps, "certified": cert.certified, "not_expressible": cert.inexpressible,
            "not_certified": cert.refuted, "traces": files,
            # Certified on the fleet with the round trips of replies held behind queued work added to
            # [protocol] rtt (each trace's scenario_config): beyond what the scenario allows.
            "late": cert.late, "latest_round_trip": cert.latest,
            "uncertified": [{"history": c.name, "reaps": round(c.clients), "expressible": not c.inexpressible,
                             "why": c.problem} for c in cert.certificates if c.problem],
        }
    if written:
        print(f"  wrote {written:,} traces to {folder}/; each replays with 'stormcheck replay' and ends in "
              "no_valid_reap.", file=text)
    else:
        print("  no trace written: no valid reap was certified.", file=text)
    if late:
        print("  A reap after replies held behind queued work is certified on the scenario's fleet with the round "
              "trips those replies took added to [protocol] rtt (its trace's scenario_config): the model's reply "
              "with that value, every other step as the scenario's.", file=text)
    return missing


def _write_series(name: str, rows: list[dict], out: Path, plot: bool, within: int | None = None) -> list[str]:
    """The table as CSV; each design's configured run and its best mitigation as CSV (+ one PNG per design)."""
    written = []
    table = io.StringIO()
    w = csv.writer(table)
    w.writerow(["design", "mitigation", "rank", "verdict", "recovery_seconds", "peak_reconnects_per_s",
                "reconnects", "reaped_valid", "reaped_dead", "max_timeout", "abandoned", "rejected"])
    for row in rows:
        r = row["recovery"]
        w.writerow([row["design"], row["mitigation"], row["rank"], str(r.verdict), r.seconds,
                    round(r.peak_reconnects, 2), r.reconnects, r.reaped_valid, r.reaped_dead, r.max_timeout, r.abandoned,
                    r.rejected])
    path = out / f"{name}.storm-table.csv"
    write_text(path, table.getvalue())
    written.append(str(path))
    designs = list(dict.fromkeys(r["design"] for r in rows))
    for design in designs:
        mine = [r for r in rows if r["design"] == design]
        chosen = [r for r in mine if r["mitigation"] == "as configured"] + [r for r in mine if r["rank"] == 1]
        for row in {id(r): r for r in chosen}.values():
            slug = row["mitigation"].replace(" ", "-")
            path = out / f"{name}.{design}.{slug}.series.csv"
            write_text(path, series_csv(row["series"]))
            written.append(str(path))
        if plot:
            from .storm_plot import plot_design

            path = out / f"{name}.{design}.storm.png"
            plot_design(path, name, design, mine, within)
            written.append(str(path))
    return written


def _goodput_text(text, params, storm, design: str, points: list) -> dict:
    """Print the goodput curve's table and its metastable region to `text`; return it as JSON data."""
    capacity = capacity_per_s(params, storm)
    region = metastable_loads(points)
    print(f"\nGoodput vs offered load: {design} as configured, fleet capacity {capacity:,.1f} setups/s; each load "
          f"run from a calm start (no fault) and a stormy one (the fault); goodput and state over the last "
          f"{MEASURE} s:", file=text)
    print(f"  {'load':>6}{'offered/s':>11}   {'calm start: goodput/s':>22}  {'ends':<8}"
          f"{'stormy start: goodput/s':>24}  ends", file=text)
    by = {(p.load, p.start): p for p in points}
    for load in dict.fromkeys(p.load for p in points):
        calm, stormy = by[load, "calm"], by[load, "stormy"]
        print(f"  {load:>6.2f}{calm.offered:>11.1f}   {calm.goodput:>22.1f}  {calm.ends:<8}"
              f"{stormy.goodput:>24.1f}  {stormy.ends}", file=text)
    if region:
        print(f"  metastable (a calm and a stormy state both persist): at {', '.join(f'{x:g}' for x in region)} x "
              f"capacity ({min(region) * capacity:,.1f} to {max(region) * capacity:,.1f} setups/s)", file=text)
    else:
        print("  no metastable load: at every load tried, both starts end in the same state", file=text)
    return {"design": design, "capacity_per_s": round(capacity, 3), "measure_seconds": MEASURE,
            "metastable_loads": region,
            "points": [{"load": p.load, "offered_per_s": round(p.offered, 3), "start": p.start,
                        "goodput_per_s": round(p.goodput, 3), "attempted_per_s": round(p.attempted, 3),
                        "ends": p.ends} for p in points]}


def _write_goodput(name: str, design: str, points: list, data: dict, out: Path, plot: bool) -> list[str]:
    """The curve as CSV (one row per run), and as a PNG unless `plot` is false."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["load", "offered_per_s", "start", "goodput_per_s", "attempted_per_s", "ends"])
    for p in data["points"]:
        w.writerow([p["load"], p["offered_per_s"], p["start"], p["goodput_per_s"], p["attempted_per_s"], p["ends"]])
    path = out / f"{name}.{design}.goodput.csv"
    write_text(path, buf.getvalue())
    written = [str(path)]
    if plot:
        from .storm_plot import goodput_figure, save_figure

        path = out / f"{name}.{design}.goodput.png"
        save_figure(goodput_figure(name, design, points, data["capacity_per_s"], data["metastable_loads"]), path)
        written.append(str(path))
    return written


def series_csv(series) -> str:
    """One row per simulated second: reconnects, reaps, per server latency, backlog, T, I; setups abandoned."""
    servers = series.timeout.shape[1]
    buf = io.StringIO()
    w = csv.writer(buf)
    head = ["second", "reconnects", "rejected", "reaped_valid", "reaped_dead"]
    for kind in ("latency_ms", "backlog_s", "timeout", "interval"):
        head += [f"{kind}_s{s}" for s in range(servers)]
    w.writerow(head + ["abandoned"])
    for t in range(len(series.reconnects)):
        row = [t] + [round(float(x), 3) for x in (series.reconnects[t], series.rejected[t], series.reaped_valid[t],
                                                  series.reaped_dead[t])]
        for arr in (series.latency_ms, series.backlog_s):
            row += [round(float(x), 1) for x in arr[t]]
        row += [int(x) for x in series.timeout[t]] + [int(x) for x in series.interval[t]]
        w.writerow(row + [round(float(series.abandoned[t]), 3) if series.abandoned is not None else 0])
    return buf.getvalue()
