"""The report's storm section: recovery per design and mitigation, and the time series.

For each scenario of the report that has a ``[storm]`` table (the fleet at
full size is a scenario's choice, not something to guess), every reported
design the simulation supports runs under the scenario's own reconnect
policy and each mitigation (`checkers.recovery.storm_run`, ranked by `rank_rows`): the table
ranks them by recovery time, and one plot per design shows reconnects/s per
mitigation, each server's T, the adjuster's latency and the sessions reaped
valid and dead. The lasso half of the question (can a storm sustain itself
at all) is in the verdict matrix, as `storm_subsides` under the exhaustive
engine, with its trace among the violations. Where the scenario's clients
have a setup deadline (`model.setup`), the section also draws the goodput
curve of its own design (`checkers.goodput`) and names the metastable region.
"""

from __future__ import annotations

import re

from stormcheck import count
from stormcheck.checkers.goodput import LOADS, MEASURE, STARTS, capacity_per_s, check_curve, goodput_run, metastable_loads
from stormcheck.checkers.recovery import CALM_FACTOR, SETTLE, mitigations, rank_rows, simulated_designs, storm_run
from stormcheck.model.load import StormError
from stormcheck.model.params import DESIGNS
from stormcheck.model.storm import check_cycle
from stormcheck.model.storm_scenario import storm_params

from . import jobs
from .report_core import ReportContext, Section
from .report_html import (esc, figure_image, img_html, img_markdown, md_cell, prose, table_html, table_markdown,
                          verdict_html)

__all__ = ["storm_section", "storm_jobs"]

HEADERS = ("design", "rank", "mitigation", "verdict", "recovery", "peak reconnects/s",
           "valid sessions reaped (whole run)", "max T (s)")
# What the verdict is about, and what it is not: a reviewer reads "holds"
# beside tens of thousands of valid sessions reaped.
VERDICT_NOTE = (
    "The verdict is about recovery only: <em>holds</em> means the fleet was calm again within W of the fault's end "
    "and stayed calm; <em>violated</em>, that it was not. It does not mean no harm was done: <em>valid sessions "
    "reaped</em> counts every healthy client's session a reaper destroyed over the whole run, nearly all of them "
    "during the storm, before recovery (once calm, none is: calm requires it). A mitigation can therefore hold and "
    "still cut tens of thousands of healthy clients on the way back; that harm is what no_valid_reap, in the "
    "verdict matrix, is about. The plots show each mitigation's run alone (the fault shaded red, its end a red "
    "line, the window W green, the recovery instant a dark green line), then the run as configured.")


def _runs(ctx: ReportContext, scenario) -> tuple[dict, dict, list[jobs.Job]]:
    """The designs simulated for `scenario`, those refused (and why), and one job per design x mitigation."""
    named = [d for d in ctx.designs[scenario.name] if DESIGNS.get(d)]
    covered, refused = simulated_designs({d: scenario.with_design(d).params for d in named})
    if not covered:
        return covered, refused, []
    storm = storm_params(scenario)
    for params in covered.values():
        check_cycle(params, storm, scenario.source)  # a cycle longer than the run: refused, not simulated
    todo = [jobs.Job(f"storm {scenario.name}/{d}/{m.name}", storm_run, (d, covered[d], storm, m.name))
            for d in covered for m in mitigations(storm)]
    return covered, refused, todo + _curve_jobs(scenario, covered, storm)[1]


def _curve_jobs(scenario, covered: dict, storm) -> tuple[str | None, list[jobs.Job]]:
    """The design whose goodput curve the section draws, and its runs (none without a setup deadline)."""
    design = scenario.design.name if scenario.design.name in covered else next(iter(covered), None)
    if design is None or not storm.setup.deadline:
        return None, []
    try:
        check_curve(covered[design], storm)
    except StormError:  # no fault to start a storm from, or too short a run: no curve, said in the text
        return None, []
    return design, [jobs.Job(f"storm {scenario.name}/{design}/goodput/{load:g}/{start}", goodput_run,
                             (covered[design], storm, load, start)) for load in LOADS for start in STARTS]


def storm_jobs(ctx: ReportContext) -> list[jobs.Job]:
    """The section's independent runs (every simulation), to run ahead with the cells."""
    return [job for scenario in ctx.scenarios if "storm" in scenario.config for job in _runs(ctx, scenario)[2]]


def storm_section(ctx: ReportContext) -> Section | None:
    from .storm_plot import design_figure  # matplotlib: only for a report that shows this

    html, md, images = [], [], []
    for scenario in ctx.scenarios:
        if "storm" not in scenario.config:
            continue
        covered, refused, todo = _runs(ctx, scenario)
        designs = list(covered)
        skipped_h = "".join(f"<p>{esc(d)}: not simulated: {prose(why)}.</p>" for d, why in refused.items())
        skipped_md = "".join(f"{d}: not simulated: {why}.\n\n" for d, why in refused.items())
        if not designs:
            if refused:
                html.append(f"<h3>{esc(scenario.name)}</h3>{skipped_h}")
                md.append(f"### {scenario.name}\n\n{skipped_md}")
            continue
        storm = storm_params(scenario)
        curve_design, curve_jobs = _curve_jobs(scenario, covered, storm)
        with ctx.stage(f"{scenario.name}/storm: {count(len(designs), 'design')} x {len(mitigations(storm))} runs each") as outcome:
            got = ctx.run_jobs(todo)
            points = got[len(got) - len(curve_jobs):]
            got = got[:len(got) - len(curve_jobs)]
            failed = [g for g in got + points if isinstance(g, jobs.Failed)]
            if failed:  # a ranking without some of its runs would mislead
                outcome["text"] = "failed"
                html.append(f"<h3>{esc(scenario.name)}</h3><p>Not simulated: {esc('; '.join(map(str, failed)))}.</p>")
                md.append(f"### {scenario.name}\n\nNot simulated: {'; '.join(map(str, failed))}.\n")
                continue
            rows = rank_rows(got)
            stuck = sum(r["recovery"].verdict.value == "violated" for r in rows)
            outcome["text"] = f"{len(rows) - stuck} of {len(rows)} runs recover"
        intro = (f"{storm.clients:,} clients on {scenario.params.servers} servers, simulated for {storm.horizon} s "
                 f"(fluid model); the fault starts at t={storm.fault_at} s; W = {storm.subside_within} s. "
                 f"Recovered: from then on, reconnects/s (one-minute mean) within {CALM_FACTOR} x the page-reload "
                 f"baseline + 1, every server's T/I at base, no valid session reaped, no setup abandoned at its "
                 f"client's deadline, seen for {SETTLE} s.")
        table_rows_h, table_rows_md = [], []
        for r in rows:
            rec = r["recovery"]
            took = f"{rec.seconds} s" if rec.seconds is not None else "never"
            cells = [r["design"], str(r["rank"]), r["mitigation"], None, took, f"{rec.peak_reconnects:,.0f}",
                     f"{rec.reaped_valid:,}", str(rec.max_timeout)]
            table_rows_h.append([esc(c) if c is not None else verdict_html(rec.verdict, rec.basis) for c in cells])
            table_rows_md.append([md_cell(c) if c is not None else md_cell(f"{rec.verdict}: {rec.basis}")
                                  for c in cells])
        html.append(f"<h3>{esc(scenario.name)}</h3><p>{prose(intro)}</p><p class=\"note\">{VERDICT_NOTE}</p>"
                    + table_html(HEADERS, table_rows_h, cls="storm") + skipped_h)
        md.append(f"### {scenario.name}\n\n{intro}\n\n{re.sub(r'</?em>', '*', VERDICT_NOTE)}\n\n"
                  + table_markdown(HEADERS, table_rows_md) + "\n" + skipped_md)
        if curve_design:
            h, m, image = _curve(scenario.name, curve_design, points, capacity_per_s(covered[curve_design], storm))
            html.append(h)
            md.append(m)
            images.append(image)
        for design in designs:
            mine = [r for r in rows if r["design"] == design]
            image = figure_image(design_figure(scenario.name, design, mine, storm.subside_within),
                                 f"{scenario.name}.{design}.storm.png",
                                 f"{scenario.name} / {design}: reconnects per mitigation, then T, latency and reaps "
                                 "of the run as configured")
            images.append(image)
            html.append(f"<p>{img_html(image)}</p>")
            md.append(img_markdown(image) + "\n")
    if not html:
        return None
    return Section("storms", "Storms: recovery after the fault", "".join(html), "\n".join(md), tuple(images))


def _curve(name: str, design: str, points: list, capacity: float):
    """The goodput curve's paragraph, table and figure: (html, markdown, image)."""
    from .storm_plot import goodput_figure

    region = metastable_loads(points)
    said = (f"metastable at {', '.join(f'{x:g}' for x in region)} x capacity ({min(region) * capacity:,.1f} to "
            f"{max(region) * capacity:,.1f} setups/s): at the same offered load a calm fleet stays calm and a stormy "
            f"one stays stormy" if region else "no metastable load: at every load tried both starts end alike")
    intro = (f"Goodput (setups completed, not abandoned, per second) against the offered rate of fresh setups, "
             f"{design} as configured, fleet capacity {capacity:,.1f} setups/s; each load run from a calm start (no "
             f"fault) and a stormy one (the fault), judged over its last {MEASURE} s: {said}.")
    headers = ("load (x capacity)", "offered/s", "calm start: goodput/s", "ends", "stormy start: goodput/s", "ends")
    by = {(p.load, p.start): p for p in points}
    cells = [[f"{load:g}", f"{by[load, 'calm'].offered:,.1f}", f"{by[load, 'calm'].goodput:,.1f}",
              by[load, "calm"].ends, f"{by[load, 'stormy'].goodput:,.1f}", by[load, "stormy"].ends]
             for load in dict.fromkeys(p.load for p in points)]
    image = figure_image(goodput_figure(name, design, points, capacity, region), f"{name}.{design}.goodput.png",
                         f"{name} / {design}: goodput against offered load from a calm and a stormy start")
    html = (f"<p>{prose(intro)}</p>" + table_html(headers, [[esc(c) for c in row] for row in cells], cls="storm")
            + f"<p>{img_html(image)}</p>")
    md = f"{intro}\n\n" + table_markdown(headers, [[md_cell(c) for c in row] for row in cells]) + "\n" \
        + img_markdown(image) + "\n"
    return html, md, image
