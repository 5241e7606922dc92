"""Plots of storm simulations (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: CI and servers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .output import atomic_path  # noqa: E402

__all__ = ["plot_design", "design_figure", "save_figure"]


def _minute(x: np.ndarray) -> np.ndarray:
    """Per-minute means, so a 2-hour run reads at a glance."""
    n = len(x) // 60 * 60
    return x[:n].reshape(-1, 60, *x.shape[1:]).mean(axis=1)


def save_figure(fig, path: Path) -> None:
    """Save `fig` as PNG atomically (temporary file, then rename)."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=90)
    finally:
        plt.close(fig)


def plot_design(path: Path, scenario: str, design: str, rows: list[dict]) -> None:
    """Write `design_figure` as a PNG at `path`."""
    save_figure(design_figure(scenario, design, rows), path)


def design_figure(scenario: str, design: str, rows: list[dict]):
    """Four panels for one design: reconnects/s per mitigation, then T_s, latency and reaps of the configured run."""
    configured = next(r for r in rows if r["mitigation"] == "as configured")
    s = configured["series"]
    minutes = np.arange(len(s.reconnects) // 60)
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    start, end, server = s.fault
    for ax in axes:
        if server >= 0:
            ax.axvspan(start / 60, end / 60, color="#f4c7c3", label="fault" if ax is axes[0] else None)
    ax = axes[0]
    for row in rows:
        rec = row["recovery"]
        took = f"{rec.seconds} s" if rec.seconds is not None else "never"
        ax.plot(minutes, _minute(row["series"].reconnects), label=f"{row['mitigation']} (recovers: {took})")
    ax.set_ylabel("reconnects/s")
    ax.set_yscale("symlog", linthresh=10)
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"{scenario} / {design}: the fleet through the fault")
    for k in range(s.timeout.shape[1]):
        axes[1].plot(minutes, _minute(s.timeout[:, k]), label=f"T server {k}")
        axes[2].plot(minutes, _minute(s.latency_ms[:, k]) / 1000, label=f"server {k}")
    axes[1].set_ylabel("timeout T_s (s)")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[2].set_ylabel("adjuster mean latency (s)")
    axes[2].legend(fontsize=7, loc="upper right")
    axes[3].plot(minutes, _minute(s.reaped_valid) * 60, label="valid sessions reaped / min", color="#c0392b")
    axes[3].plot(minutes, _minute(s.reaped_dead) * 60, label="dead sessions reaped / min", color="#7f8c8d")
    axes[3].set_ylabel("sessions / min")
    axes[3].set_yscale("symlog", linthresh=10)
    axes[3].legend(fontsize=7, loc="upper right")
    axes[3].set_xlabel("minutes (configured policy, panels 2-4)")
    fig.tight_layout()
    return fig
