"""The report's storm section: recovery per design and mitigation, and the time series.

For each scenario of the report that has a ``[storm]`` table (the fleet at
full size is a scenario's choice, not something to guess), every reported
design the simulation supports runs under the scenario's own reconnect
policy and each mitigation (`checkers.recovery.storm_run`, ranked by `rank_rows`): the table
ranks them by recovery time, and one plot per design shows reconnects/s per
mitigation, each server's T, the adjuster's latency and the sessions reaped
valid and dead. The lasso half of the question (can a storm sustain itself
at all) is in the verdict matrix, as `storm_subsides` under the exhaustive
engine, with its trace among the violations.
"""

from __future__ import annotations

import re

from stormcheck.checkers.recovery import CALM_FACTOR, SETTLE, mitigations, rank_rows, simulated_designs, storm_run
from stormcheck.model.params import DESIGNS
from stormcheck.model.storm import storm_params

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
    todo = [jobs.Job(f"storm {scenario.name}/{d}/{m.name}", storm_run, (d, covered[d], storm, m.name))
            for d in covered for m in mitigations(storm)]
    return covered, refused, todo


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
        with ctx.stage(f"{scenario.name}/storm: {len(designs)} design(s) x {len(mitigations(storm))} runs each") as outcome:
            got = ctx.run_jobs(todo)
            failed = [g for g in got if isinstance(g, jobs.Failed)]
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
