"""The plot of a sweep: the verdict at each grid point, and the boundary the symbolic engine proves.

One key: a strip of cells along it. Two or more: a grid over the first two,
each cell the worst verdict over the remaining keys (said in the title).
The proved boundary is the edge between grid points inside and outside the
proved-safe region, drawn as a line; when there is none, the note under the
plot says why.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: CI and servers have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_sweep", "VERDICTS"]

# Worst last: a cell over several points shows the worst of them.
VERDICTS = ("holds", "inconclusive", "failed", "violated")
COLOURS = ("#c8e6c9", "#fff8e1", "#cfd8dc", "#f4c7c3")


def plot_sweep(path: str, title: str, proof: str, grid: dict, rows: list[dict], boundary: dict | None) -> None:
    """Write the plot as PNG to `path` (a temporary path the caller renames into place)."""
    keys = list(grid)
    xkey, ykey = keys[0], (keys[1] if len(keys) > 1 else None)
    xs, ys = grid[xkey], (grid[ykey] if ykey else [0])
    worst = np.zeros((len(ys), len(xs)), dtype=int)
    inside = np.ones((len(ys), len(xs)), dtype=bool)
    for n, row in enumerate(rows):
        i, j = (ys.index(row["point"][ykey]) if ykey else 0), xs.index(row["point"][xkey])
        worst[i, j] = max(worst[i, j], VERDICTS.index(row["verdict"]))
        if boundary is not None:
            inside[i, j] &= bool(boundary["inside"][n])
    fig, ax = plt.subplots(figsize=(7.5, 5 if ykey else 2.6))
    cmap = matplotlib.colors.ListedColormap(COLOURS)
    ax.pcolormesh(_edges(xs), _edges(ys), worst, cmap=cmap, vmin=-0.5, vmax=len(VERDICTS) - 0.5)
    drawn = _draw_boundary(ax, xs, ys, inside) if boundary is not None else 0
    ax.set_xlabel(xkey)
    if ykey:
        ax.set_ylabel(ykey)
    else:
        ax.set_yticks([])
    rest = f" (worst over {', '.join(keys[2:])})" if len(keys) > 2 else ""
    ax.set_title(title + rest, fontsize=9)
    handles = [matplotlib.patches.Patch(color=c, label=v) for v, c in zip(VERDICTS, COLOURS)
               if VERDICTS.index(v) in worst]
    if drawn:  # a legend entry for a line only where one is drawn; the note says why not
        handles.append(matplotlib.lines.Line2D([], [], color="#1a237e", linewidth=2, label="proved boundary"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.text(0.01, 0.01, _wrap(proof), fontsize=7, va="bottom")
    fig.subplots_adjust(bottom=0.2 if ykey else 0.4, right=0.78)
    fig.savefig(path, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)


def _edges(values: list[int]) -> np.ndarray:
    """Cell edges around each value: halfway to its neighbours."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _draw_boundary(ax, xs: list[int], ys: list[int], inside: np.ndarray) -> int:
    """A line along every cell edge with the proved region on one side only; how many were drawn."""
    ex, ey = _edges(xs), _edges(ys)
    style = {"color": "#1a237e", "linewidth": 2}
    rows, cols = inside.shape
    drawn = 0
    for i in range(rows):
        for j in range(cols - 1):
            if inside[i, j] != inside[i, j + 1]:
                ax.plot([ex[j + 1]] * 2, [ey[i], ey[i + 1]], **style)
                drawn += 1
    for i in range(rows - 1):
        for j in range(cols):
            if inside[i, j] != inside[i + 1, j]:
                ax.plot([ex[j], ex[j + 1]], [ey[i + 1]] * 2, **style)
                drawn += 1
    return drawn


def _wrap(text: str, width: int = 120) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])
