"""The report's synthesis section: where the parameters stop being safe (Z3).

Two plots per scenario, both from `checkers.z3_synth` (proved regions, with
certified runs just outside):

* the **safe region** of the static fleet over timeout x interval at the
  scenario's RTT bound (the scenario's own ``[ranges]`` when it has them for
  both), with the scenario's point marked;
* for a design that adjusts and whose reapers judge by their own server's
  timeout (the 2015 per-server adjuster, fleet-wide), the **adjuster
  thresholds**: the average subscribe latency at which each reaper path
  starts reaping valid sessions, drawn over the advice the adjuster gives, with
  the scenario's load levels marked.
"""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")  # a report is built without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stormcheck.properties.core import Inconclusive  # noqa: E402
from stormcheck.checkers.z3_synth import SynthesisError, safe_region  # noqa: E402
from stormcheck.model.params import DESIGNS, adjuster_advice  # noqa: E402
from stormcheck.model.scenario import ScenarioError, scenario_from_dict  # noqa: E402

from . import jobs  # noqa: E402
from .report_core import ReportContext, Section  # noqa: E402
from .synth_cmd import threshold_jobs, thresholds_from  # noqa: E402
from .report_html import esc, figure_image, img_html, img_markdown  # noqa: E402

__all__ = ["synth_section", "synth_jobs"]


def _region_scenario(scenario):
    """The scenario under 'off', ranged over timeout x interval around its own values."""
    cfg = copy.deepcopy(scenario.config)
    cfg["scenario"]["design"] = "off"
    cfg.pop("design", None)
    cfg.pop("rollout", None)
    own = cfg.get("ranges", {})
    t0, i0 = scenario.params.t0, scenario.params.i0
    ranges = {"timeout": own.get("timeout", [max(1, t0 // 4), max(t0 * 3, 30)]),
              "interval": own.get("interval", [0, max(i0 * 3, 30)])}
    cfg["ranges"] = ranges
    return scenario_from_dict(cfg, scenario.source)


def _region_figure(scenario, region):
    (tlo, thi), (ilo, ihi) = region.ranges["timeout"], region.ranges["interval"]
    ts, is_ = np.arange(tlo, thi + 1), np.arange(ilo, ihi + 1)
    grid = np.array([[region.contains({"timeout": int(t), "interval": int(i)}) for t in ts] for i in is_])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.imshow(grid, origin="lower", aspect="auto", extent=(tlo - 0.5, thi + 0.5, ilo - 0.5, ihi + 0.5),
              cmap=matplotlib.colors.ListedColormap(["#f4c7c3", "#c8e6c9"]), vmin=0, vmax=1)
    ax.plot([scenario.params.t0], [scenario.params.i0], marker="*", markersize=16, color="#1a237e",
            label=f"{scenario.name}: T0={scenario.params.t0}, I0={scenario.params.i0}")
    if region.outside is not None and "timeout" in region.outside:
        ax.plot([region.outside["timeout"]], [region.outside["interval"]], marker="x", markersize=10,
                color="#b71c1c", label="checked just outside: certified reap")
    ax.set_xlabel("timeout T0 (s)")
    ax.set_ylabel("interval I0 (s)")
    ax.set_title(f"static fleet, RTT <= {max(scenario.params.rtt)} s: proved safe (green), outside the proved "
                 "region (red)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _threshold_figure(scenario, thresholds):
    p = scenario.params
    threshold_ms = scenario.config["load"]["threshold_ms"]
    top = max([p.levels[-1].avg_ms] + [t.load_ms or 0 for t in thresholds]) * 1.3
    xs = np.linspace(0, top, 400)
    rtt = max(p.rtt)
    ages = [sum(adjuster_advice(int(x), p.t0, p.i0, threshold_ms)) + rtt for x in xs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(xs / 1000, ages, color="#1565c0", label="next refresh age: T + I + RTT advised at this load")
    for path, mult, colour in (("publish/existence", p.publish_mult, "#e65100"), ("gc", p.gc_mult, "#6a1b9a")):
        ax.axhline(float(mult) * p.t0, color=colour, linestyle="--",
                   label=f"{path} cutoff of a server at base: {float(mult):g} x {p.t0}")
    at: dict[int, list[str]] = {}
    for t in thresholds:
        if t.load_ms is not None:
            at.setdefault(t.load_ms, []).append(t.path)
    for load_ms, paths in at.items():
        ax.axvline(load_ms / 1000, color="#b71c1c", linewidth=0.8)
        ax.annotate(f"{' + '.join(paths)}: {load_ms} ms", (load_ms / 1000, ax.get_ylim()[0]), rotation=90,
                    fontsize=7, va="bottom", ha="right")
    for level in p.levels:
        ax.plot([level.avg_ms / 1000], [level.timeout + level.interval + rtt], marker="o", color="#1a237e")
    ax.set_xlabel("average subscribe latency the adjuster sees (s)")
    ax.set_ylabel("seconds")
    ax.set_title(f"{scenario.name}: where each reaper path starts reaping valid sessions")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _threshold_design(ctx: ReportContext, scenario) -> str | None:
    """The design whose adjuster thresholds the section shows: the first reported one that adjusts."""
    adjusting = [d for d in ctx.designs[scenario.name]
                 if d in DESIGNS and DESIGNS[d].judge == "server" and DESIGNS[d].tuner in ("per-server", "fleet")]
    return adjusting[0] if adjusting and len(scenario.params.levels) > 1 else None


def synth_jobs(ctx: ReportContext) -> list[jobs.Job]:
    """The section's independent runs (adjuster thresholds, one per reaper path), to run ahead with the cells."""
    return [job for scenario in ctx.scenarios if (design := _threshold_design(ctx, scenario))
            for job in threshold_jobs(scenario.with_design(design))]


def synth_section(ctx: ReportContext) -> Section | None:
    html, md, images = [], [], []
    for scenario in ctx.scenarios:
        parts_h, parts_md = [], []
        try:
            ranged = _region_scenario(scenario)
            with ctx.stage(f"{scenario.name}/synth: safe region") as outcome:
                region = safe_region(ranged)
                outcome["text"] = region.constraint or "no region proved"
        except (SynthesisError, ScenarioError, Inconclusive) as err:  # Inconclusive: not encoded, unknown
            region = None
            parts_h.append(f"<p>Safe region: not computed ({esc(err)}).</p>")
            parts_md.append(f"Safe region: not computed ({err}).\n")
        if region is not None:
            image = figure_image(_region_figure(scenario, region), f"{scenario.name}.region.png",
                                 f"{scenario.name}: proved-safe region over timeout and interval")
            images.append(image)
            parts_h.append(f"<pre>{esc(region.text())}</pre><p>{img_html(image)}</p>")
            parts_md.append(f"```\n{region.text()}\n```\n\n{img_markdown(image)}\n")
        design = _threshold_design(ctx, scenario)
        if design is not None:
            try:
                with ctx.stage(f"{scenario.name}/{design}/synth: adjuster thresholds") as outcome:
                    thresholds = thresholds_from(ctx.run_jobs(threshold_jobs(scenario.with_design(design))))
                    outcome["text"] = ", ".join(f"{t.path} {t.load_ms} ms" for t in thresholds)
            except (SynthesisError, Inconclusive) as err:
                html.append(f"<h3>{esc(scenario.name)}</h3>" + "".join(parts_h)
                            + f"<p>Adjuster thresholds: inconclusive ({esc(err)}).</p>")
                md.append(f"### {scenario.name}\n\n" + "\n".join(parts_md)
                          + f"\nAdjuster thresholds: inconclusive ({err}).\n")
                continue
            text = "\n".join(t.text() for t in thresholds)
            image = figure_image(_threshold_figure(scenario, thresholds), f"{scenario.name}.thresholds.png",
                                 f"{scenario.name}: adjuster input at which each reaper path reaps valid sessions")
            images.append(image)
            parts_h.append(f"<p>Design {esc(design)}:</p><pre>{esc(text)}</pre><p>{img_html(image)}</p>")
            parts_md.append(f"Design {design}:\n\n```\n{text}\n```\n\n{img_markdown(image)}\n")
        html.append(f"<h3>{esc(scenario.name)}</h3>" + "".join(parts_h))
        md.append(f"### {scenario.name}\n\n" + "\n".join(parts_md))
    if not html:
        return None
    return Section("synthesis", "Safe regions (synthesis, Z3)", "".join(html), "\n".join(md), tuple(images))
