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

from stormcheck.properties.core import Inconclusive
from stormcheck.model.params import DESIGNS, TIME_UNITS, adjuster_advice
from stormcheck.model.scenario import ScenarioError, scenario_from_dict

from . import jobs
from .report_core import ReportContext, Section
from .report_html import esc, figure_image, img_html, img_markdown, prose
from .synth_cmd import threshold_jobs, thresholds_from
from .terms import axis_label, in_terms

__all__ = ["synth_section", "synth_jobs"]


def _region_scenario(scenario):
    """The scenario under 'off', ranged over timeout x interval around its own values."""
    cfg = copy.deepcopy(scenario.config)
    cfg["scenario"]["design"] = "off"
    cfg.pop("design", None)
    cfg.pop("rollout", None)
    own = cfg.get("ranges", {})
    t0, i0, per = scenario.params.t0, scenario.params.i0, TIME_UNITS[scenario.params.unit]
    ranges = {"timeout": own.get("timeout", [max(1, t0 // 4), max(t0 * 3, 30 * per)]),
              "interval": own.get("interval", [0, max(i0 * 3, 30 * per)])}
    cfg["ranges"] = ranges
    return scenario_from_dict(cfg, scenario.source)


MIN_FONT = 9  # points; the figures are shown at about their natural size


def _plotting():
    """matplotlib (headless: a report is built without a display), its pyplot, and NumPy.

    Loaded when a figure is drawn, not when the CLI starts: every command
    imports this module, few draw.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt
    import numpy as np

    return matplotlib, plt, np


def _region_figure(scenario, region):
    matplotlib, plt, np = _plotting()
    (tlo, thi), (ilo, ihi) = region.ranges["timeout"], region.ranges["interval"]
    unit = scenario.params.unit
    # One cell per value up to GRID values an axis (a range in milliseconds spans
    # thousands): each cell is the value at its left/bottom edge, so a cell is
    # drawn green only where that value is proved.
    ts, is_ = _axis(np, tlo, thi), _axis(np, ilo, ihi)
    grid = np.array([[region.contains({"timeout": int(t), "interval": int(i)}) for t in ts] for i in is_])
    fig, ax = plt.subplots(figsize=(8, 4.8))
    # A margin around the searched range, so nothing sits on the axes' edge;
    # the margin is grey: not searched.
    px, py = max(2.0, (thi - tlo) * 0.05), max(1.5, (ihi - ilo) * 0.07)
    ax.set_facecolor("#e0e0e0")
    ax.imshow(grid, origin="lower", aspect="auto", extent=(tlo - 0.5, thi + 0.5, ilo - 0.5, ihi + 0.5),
              cmap=matplotlib.colors.ListedColormap(["#f4c7c3", "#c8e6c9"]), vmin=0, vmax=1)
    ax.set_xlim(tlo - 0.5 - px, thi + 0.5 + px)
    ax.set_ylim(ilo - 0.5 - py, ihi + 0.5 + py)
    patches = [matplotlib.patches.Patch(color="#c8e6c9", label="proved safe"),
               matplotlib.patches.Patch(color="#f4c7c3", label="outside the proved region"),
               matplotlib.patches.Patch(color="#e0e0e0", label="not searched")]
    ax.plot([scenario.params.t0], [scenario.params.i0], marker="*", markersize=16, color="#1a237e", linestyle="none",
            label=f"{scenario.name}: T0={scenario.params.t0}, I0={scenario.params.i0}")
    if region.outside is not None and "timeout" in region.outside:
        ax.plot([region.outside["timeout"]], [region.outside["interval"]], marker="X", markersize=11,
                color="#b71c1c", markeredgecolor="white", linestyle="none",
                label=f"just outside (T0={region.outside['timeout']}, I0={region.outside['interval']}): "
                      "a certified run reaps a valid session")
    ax.set_xlabel(axis_label(scenario, "timeout", "T0"), fontsize=MIN_FONT + 1)
    ax.set_ylabel(axis_label(scenario, "interval", "I0"), fontsize=MIN_FONT + 1)
    ax.tick_params(labelsize=MIN_FONT)
    ax.set_title(f"static fleet, RTT <= {max(scenario.params.rtt)} {unit}: where T0 and I0 are proved safe",
                 fontsize=MIN_FONT + 2)
    handles = patches + ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2,
              frameon=False)
    return fig


GRID = 200  # cells an axis, at most (each is one evaluation of the constraint, about 0.2 ms)


def _step(lo: int, hi: int) -> int:
    """The spacing of the values an axis from `lo` to `hi` samples: 1, or wider so that at most GRID fit."""
    return max(1, -(-(hi - lo + 1) // GRID))


def _axis(np, lo: int, hi: int):
    """The values an axis of the region figure samples: every one, or GRID evenly spaced from `lo`."""
    return np.arange(lo, hi + 1, _step(lo, hi))


def _region_note(scenario, region) -> str:
    """What the plotted ranges are and where they come from, for the page."""
    (tlo, thi), (ilo, ihi) = region.ranges["timeout"], region.ranges["interval"]
    u, per = scenario.params.unit, TIME_UNITS[scenario.params.unit]
    own = scenario.config.get("ranges", {})
    whence = ("the scenario's own [ranges]" if "timeout" in own and "interval" in own else
              f"around the scenario's point (T0 from a quarter of its {scenario.params.t0} {u} to three times it, "
              f"I0 from 0 to three times its {scenario.params.i0} {u}; each upper end at least {30 * per} {u})")
    steps = {"T0": _step(tlo, thi), "I0": _step(ilo, ihi)}
    sampled = [f"{name} every {step} {u}" for name, step in steps.items() if step > 1]
    cells = (f"Each cell is drawn by the value at its lower-left corner ({', '.join(sampled)}): green there "
             f"means proved safe at that value; the constraint above states the region exactly. "
             if sampled else "")
    return (f"The region is searched for a static fleet (design off, no adjuster: the timeout and interval stay as "
            f"set) over timeout T0 from {tlo} to {thi} {u} and interval I0 from {ilo} to {ihi} {u}, {whence}; the "
            f"RTT up to {max(scenario.params.rtt)} {u} and everything else as the scenario states. Green: proved "
            f"safe for every value in it, any number of clients; red: outside the proved region (the cross is a "
            f"point there where Z3 found a run, replayed through the model, that reaps a valid session); grey: not "
            f"searched. {cells}").rstrip()


def _s(ms: int) -> str:
    return f"{ms / 1000:g} s"


def _threshold_figure(scenario, thresholds):
    _, plt, np = _plotting()
    p = scenario.params
    threshold_ms = scenario.config["load"]["threshold_ms"]
    top = max([p.levels[-1].avg_ms] + [t.load_ms or 0 for t in thresholds]) * 1.3
    xs = np.linspace(0, top, 400)
    rtt = max(p.rtt)
    ages = [sum(adjuster_advice(int(x), p.t0, p.i0, threshold_ms)) + rtt for x in xs]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(xs / 1000, ages, color="#1565c0", lw=2, label="next refresh age: T + I + RTT advised at this latency")
    for path, mult, colour in (("publish/existence", p.publish_mult, "#e65100"), ("gc", p.gc_mult, "#6a1b9a")):
        ax.axhline(float(mult) * p.t0, color=colour, linestyle="--",
                   label=f"{path} cutoff of a server at base: {float(mult):g} x {p.t0} s")
    at: dict[int, list[str]] = {}
    for t in thresholds:
        if t.load_ms is not None:
            at.setdefault(t.load_ms, []).append(t.path)
    for n, (load_ms, paths) in enumerate(sorted(at.items())):
        ax.axvline(load_ms / 1000, color="#b71c1c", linewidth=1,
                   label="latency at which a path starts reaping valid sessions" if n == 0 else None)
        ax.annotate(f"{' + '.join(paths)}: {_s(load_ms)}", (load_ms / 1000, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -4), textcoords="offset points", rotation=90, fontsize=MIN_FONT, va="top", ha="left",
                    color="#b71c1c")
    ax.plot([lv.avg_ms / 1000 for lv in p.levels], [lv.timeout + lv.interval + rtt for lv in p.levels],
            marker="o", markersize=8, color="#1a237e", linestyle="none",
            label="the scenario's load levels (" + ", ".join(_s(lv.avg_ms) for lv in p.levels) + ")")
    ax.set_xlabel("average subscribe latency the adjuster sees (s)", fontsize=MIN_FONT + 1)
    ax.set_ylabel("session age (s)", fontsize=MIN_FONT + 1)
    ax.tick_params(labelsize=MIN_FONT)
    ax.set_title(f"{scenario.name}: where each reaper path starts reaping valid sessions", fontsize=MIN_FONT + 2)
    ax.legend(fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False)
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
    from stormcheck.checkers.z3_synth import SynthesisError, safe_region  # Z3: only for a report that shows this

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
            parts_h.append(f"<p>Safe region: not computed ({prose(err)}).</p>")
            parts_md.append(f"Safe region: not computed ({err}).\n")
        if region is not None:
            image = figure_image(_region_figure(scenario, region), f"{scenario.name}.region.png",
                                 f"{scenario.name}: proved-safe region over timeout and interval")
            images.append(image)
            note = _region_note(scenario, region)
            text = "\n".join([region.text(), *in_terms(scenario, region)])
            parts_h.append(f"<pre>{esc(text)}</pre><p>{prose(note)}</p><p>{img_html(image)}</p>")
            parts_md.append(f"```\n{text}\n```\n\n{note}\n\n{img_markdown(image)}\n")
        design = _threshold_design(ctx, scenario)
        if design is not None:
            try:
                with ctx.stage(f"{scenario.name}/{design}/synth: adjuster thresholds") as outcome:
                    thresholds = thresholds_from(ctx.run_jobs(threshold_jobs(scenario.with_design(design))))
                    outcome["text"] = ", ".join(f"{t.path} {t.load_ms} ms" for t in thresholds)
            except (SynthesisError, Inconclusive) as err:
                html.append(f"<h3>{esc(scenario.name)}</h3>" + "".join(parts_h)
                            + f"<p>Adjuster thresholds: inconclusive ({prose(err)}).</p>")
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
