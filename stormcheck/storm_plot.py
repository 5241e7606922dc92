"""Plots of storm simulations (matplotlib, no display needed).

One figure per design, read at the width of a report page (about 1100 px):

* a grid of small panels, one per mitigation, each with the reconnects/s of
  that run alone, on one shared scale: the fault (shaded), its end, the
  window W after it in which the fleet must be calm again, the calm level,
  and the instant the run recovered (or "never");
* under it, the run as configured: each server's timeout T, the adjuster's
  latency per server and the sessions reaped. Servers differ in colour *and*
  line style, so lines that coincide (servers that agree) stay visible.

And, for ``storm --goodput``, the goodput curve (`checkers.goodput`): setups
completed per second against the offered rate, from a calm and a stormy
start, the metastable region shaded.

Legends sit outside the data, text is at least `MIN_FONT` points.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: CI and servers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .output import atomic_path  # noqa: E402

__all__ = ["plot_design", "design_figure", "goodput_figure", "save_figure", "MIN_FONT"]

MIN_FONT = 9  # points: at the report's 110 dpi shown at 1100 px, about 13 px
_SERVER_STYLES = (("#1565c0", "-", 2.6), ("#e65100", "--", 2.0), ("#2e7d32", ":", 2.4), ("#6a1b9a", "-.", 1.8))
_FAULT, _WINDOW, _RECOVERED, _CALM = "#ef9a9a", "#c8e6c9", "#1b5e20", "#757575"


def _minute(x: np.ndarray) -> np.ndarray:
    """Per-minute means, so a 2-hour run reads at a glance."""
    n = len(x) // 60 * 60
    return x[:n].reshape(-1, 60, *x.shape[1:]).mean(axis=1)


def save_figure(fig, path: Path) -> None:
    """Save `fig` as PNG atomically (temporary file, then rename)."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_design(path: Path, scenario: str, design: str, rows: list[dict], within: int | None = None) -> None:
    """Write `design_figure` as a PNG at `path`."""
    save_figure(design_figure(scenario, design, rows, within), path)


def _server_style(k: int) -> dict:
    colour, style, width = _SERVER_STYLES[k % len(_SERVER_STYLES)]
    return {"color": colour, "linestyle": style, "linewidth": width}


def _marks(ax, fault: tuple[int, int, str], within: int | None) -> None:
    """The fault (shaded, `Series.fault_label` its legend; none if empty), its end (a line) and the window W after it."""
    start, end, label = fault
    if not label:
        return
    ax.axvspan(start / 60, end / 60, color=_FAULT, alpha=0.8, lw=0, label=label)
    ax.axvline(end / 60, color="#c62828", lw=1.2, label="fault ends")
    if within:
        ax.axvspan(end / 60, (end + within) / 60, color=_WINDOW, alpha=0.6, lw=0,
                   label=f"window W = {within} s: must recover in it")


def _same_lines(series: np.ndarray) -> list[list[int]]:
    """Servers grouped by identical series (columns), so lines that coincide are drawn once and named together."""
    groups: list[list[int]] = []
    for k in range(series.shape[1]):
        for g in groups:
            if np.allclose(series[:, g[0]], series[:, k]):
                g.append(k)
                break
        else:
            groups.append([k])
    return groups


def _mitigation_panel(ax, row: dict, fault, within, top: float) -> None:
    rec, s = row["recovery"], row["series"]
    minutes = np.arange(len(s.reconnects) // 60)
    _marks(ax, fault, within)
    calm = rec.baseline * 1.5 + 1
    ax.axhline(calm, color=_CALM, lw=1, linestyle=(0, (4, 3)), label="calm level")
    ax.plot(minutes, _minute(s.reconnects), color="#263238", lw=1.4, label="reconnects/s (1-min mean)")
    if rec.recovered_at is not None:
        ax.axvline(rec.recovered_at / 60, color=_RECOVERED, lw=2.2, label="recovered")
        took = f"recovered {rec.seconds} s after the fault"
    else:
        took = "never recovered"
    ax.set_title(f"{row['mitigation']}: {rec.verdict}, {took}", fontsize=MIN_FONT + 1, loc="left")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(0, top)
    ax.tick_params(labelsize=MIN_FONT)
    ax.grid(alpha=0.3)


def design_figure(scenario: str, design: str, rows: list[dict], within: int | None = None):
    """One design's storm: reconnects/s per mitigation (small multiples), then the configured run's T, latency, reaps.

    `rows` are `checkers.recovery.storm_table` rows of one design (ranked);
    `within` is W, ``[storm] subside_within`` (None: not marked).
    """
    configured = next(r for r in rows if r["mitigation"] == "as configured")
    s = configured["series"]
    fault = (*s.fault[:2], s.fault_label)
    minutes = np.arange(len(s.reconnects) // 60)
    cols = 2
    grid_rows = -(-len(rows) // cols)
    fig = plt.figure(figsize=(11, 3.0 * grid_rows + 9.5))
    spec = fig.add_gridspec(grid_rows + 3, cols, height_ratios=[2.6] * grid_rows + [2.4, 2.4, 2.4], hspace=0.55,
                            wspace=0.12, top=0.93)
    top = max(float(_minute(r["series"].reconnects).max()) for r in rows) * 2
    first = None
    for i, row in enumerate(rows):
        ax = fig.add_subplot(spec[i // cols, i % cols], sharex=first, sharey=first)
        first = first or ax
        _mitigation_panel(ax, row, fault, within, top)
        if i % cols == 0:
            ax.set_ylabel("reconnects/s", fontsize=MIN_FONT)
    handles = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=MIN_FONT,
               bbox_to_anchor=(0.5, 0.945), frameon=False)
    fig.suptitle(f"{scenario} / {design}: reconnects per mitigation (minutes since the run began)",
                 fontsize=MIN_FONT + 3, y=0.99)
    axes = [fig.add_subplot(spec[grid_rows + k, :], sharex=first) for k in range(3)]
    for ax in axes:
        _marks(ax, fault, within)
        ax.tick_params(labelsize=MIN_FONT)
        ax.grid(alpha=0.3)
    for ax, series in ((axes[0], _minute(s.timeout)), (axes[1], _minute(s.latency_ms) / 1000)):
        for k, same in enumerate(_same_lines(series)):
            label = " = ".join(f"s{j}" for j in same) + (" (same)" if len(same) > 1 else "")
            ax.plot(minutes, series[:, same[0]], label=label, **_server_style(k))
    axes[0].set_title("the run as configured: each server's timeout T (s)", fontsize=MIN_FONT + 1, loc="left")
    axes[1].set_title("the run as configured: the adjuster's mean subscribe latency per server (s)",
                      fontsize=MIN_FONT + 1, loc="left")
    axes[2].plot(minutes, _minute(s.reaped_valid) * 60, label="valid", color="#c62828", lw=2)
    axes[2].plot(minutes, _minute(s.reaped_dead) * 60, label="dead", color="#546e7a", lw=1.6, linestyle="--")
    axes[2].set_title("the run as configured: sessions reaped per minute", fontsize=MIN_FONT + 1, loc="left")
    axes[2].set_yscale("symlog", linthresh=10)
    axes[2].set_xlabel("minutes since the run began", fontsize=MIN_FONT)
    for ax in axes:
        mine = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels()) if lab.startswith(("s", "valid", "dead"))
                and not lab.startswith("fault")]
        ax.legend([h for h, _ in mine], [lab for _, lab in mine], fontsize=MIN_FONT, loc="upper left",
                  bbox_to_anchor=(1.005, 1.0), frameon=False)
    return fig


def goodput_figure(scenario: str, design: str, points: list, capacity: float, metastable: list[float]):
    """Goodput against offered load, from a calm and from a stormy start; the metastable region shaded."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for start, style in (("calm", {"color": "#1565c0", "marker": "o", "linestyle": "-"}),
                         ("stormy", {"color": "#c62828", "marker": "s", "linestyle": "--"})):
        mine = sorted((p for p in points if p.start == start), key=lambda p: p.offered)
        ax.plot([p.offered for p in mine], [p.goodput for p in mine], label=f"from a {start} start", **style)
    top = max(p.offered for p in points)
    ax.plot([0, top], [0, top], color=_CALM, linestyle=":", linewidth=1.2, label="goodput = offered")
    ax.axvline(capacity, color=_CALM, linewidth=1.2)
    ax.annotate("capacity", (capacity, 0), xytext=(4, 4), textcoords="offset points", fontsize=MIN_FONT)
    if metastable:
        ax.axvspan(min(metastable) * capacity, max(metastable) * capacity, color="#fff3e0", zorder=0,
                   label="metastable: both persist")
    ax.set_xlabel("offered setups/s (page reloads)", fontsize=MIN_FONT + 1)
    ax.set_ylabel("goodput: setups/s completed", fontsize=MIN_FONT + 1)
    ax.set_title(f"{scenario} / {design}: goodput vs offered load", fontsize=MIN_FONT + 2)
    ax.tick_params(labelsize=MIN_FONT)
    ax.legend(fontsize=MIN_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
