"""The report's plots, read as a reviewer reads them: one panel per thing to compare, legends off the data,
every mark explained, one unit per quantity, text large enough.

The figures are built from real inputs (a short storm simulation of the 2015
fleet; the 2015 scenario's adjuster) and a stand-in for the Z3 region, and
inspected through matplotlib: where each legend lies, what each line is.
How the page shows them is tests/test_report.py's browser test.
"""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from stormcheck.checkers.recovery import storm_table  # noqa: E402
from stormcheck.model.scenario import load_scenario  # noqa: E402
from stormcheck.model.storm_scenario import storm_params  # noqa: E402
from stormcheck.report_synth import MIN_FONT, _region_figure, _threshold_figure  # noqa: E402
from stormcheck.storm_plot import design_figure  # noqa: E402


@pytest.fixture(scope="module")
def gitter():
    return load_scenario("gitter-2015")


@pytest.fixture(scope="module")
def storm_rows(gitter):
    storm = storm_params(gitter, clients=5000, horizon=2400)
    return storm_table({"per-server": gitter.params}, storm), storm


def _boxes(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return renderer


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _legends(fig):
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def _assert_legends_off_the_data(fig):
    renderer = _boxes(fig)
    legends = _legends(fig)
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not _overlaps(box, ax.get_window_extent(renderer)), (legend.get_texts()[0].get_text(),
                                                                        ax.get_title(loc="left"))


def _assert_text_large_enough(fig):
    _boxes(fig)
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT]
    assert not small, small[:5]


def test_storm_figure_one_panel_per_mitigation_with_the_fault_window_and_recovery(storm_rows):
    rows, storm = storm_rows
    fig = design_figure("gitter-2015", "per-server", rows, storm.subside_within)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    for row in rows:  # each mitigation alone in a panel, its verdict in the title
        (title,) = [t for t in titles if t.startswith(row["mitigation"] + ":")]
        assert str(row["recovery"].verdict) in title
    labels = {lab for legend in _legends(fig) for lab in (t.get_text() for t in legend.get_texts())}
    assert {"fault ends", f"window W = {storm.subside_within} s: must recover in it", "calm level"} <= labels
    if any(r["recovery"].recovered_at is not None for r in rows):
        assert "recovered" in labels
    # Each mitigation panel draws the end of the fault where it is.
    end = rows[0]["series"].fault[1] / 60
    for ax in fig.axes[:len(rows)]:
        xs = [ln.get_xdata()[0] for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_label() == "fault ends"]
        assert xs == [pytest.approx(end)]
    _assert_legends_off_the_data(fig)
    _assert_text_large_enough(fig)
    plt.close(fig)


def test_storm_figure_tells_the_servers_apart(storm_rows):
    rows, storm = storm_rows
    fig = design_figure("gitter-2015", "per-server", rows, storm.subside_within)
    (timeout,) = [ax for ax in fig.axes if "timeout T" in ax.get_title(loc="left")]
    lines = [ln for ln in timeout.get_lines() if ln.get_label().startswith("s")]
    assert len(lines) >= 2
    styles = {(ln.get_color(), ln.get_linestyle()) for ln in lines}
    assert len(styles) == len(lines)  # colour and dash differ, so coinciding lines stay visible
    assert len({ln.get_linestyle() for ln in lines}) == len(lines)
    named = sorted(s for ln in lines for s in ln.get_label().split(" (")[0].split(" = "))
    assert named == [f"s{k}" for k in range(rows[0]["series"].timeout.shape[1])]  # every server named once
    plt.close(fig)


def _region():
    # A stand-in for `safe_region`'s answer on gitter-2015: its ranges, its
    # constraint (T0 + I0 + 2 < ceil(1.6 x T0)) and its point just outside,
    # which lies on the lowest timeout searched.
    ranges = {"timeout": (11, 135), "interval": (0, 30)}
    return SimpleNamespace(ranges=ranges, outside={"timeout": 11, "interval": 6},
                           contains=lambda v: v["timeout"] + v["interval"] + 2 < -(-16 * v["timeout"] // 10))


def test_region_figure_keeps_marks_off_the_edges_and_the_legend_off_the_region(gitter):
    fig = _region_figure(gitter, _region())
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for ln in ax.get_lines():
        for x, y in zip(ln.get_xdata(), ln.get_ydata()):
            assert x0 + 0.02 * (x1 - x0) < x < x1 - 0.02 * (x1 - x0), ln.get_label()
            assert y0 + 0.02 * (y1 - y0) < y < y1 - 0.02 * (y1 - y0), ln.get_label()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"proved safe", "outside the proved region", "not searched"} <= set(labels)
    _assert_legends_off_the_data(fig)
    _assert_text_large_enough(fig)
    plt.close(fig)


def test_threshold_figure_one_unit_and_every_mark_in_the_legend(gitter):
    thresholds = [SimpleNamespace(path="publish", load_ms=16563), SimpleNamespace(path="existence", load_ms=16563),
                  SimpleNamespace(path="gc", load_ms=25938)]
    fig = _threshold_figure(gitter, thresholds)
    ax = fig.axes[0]
    assert ax.get_xlabel().endswith("(s)")
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert not [t for t in texts if " ms" in t], texts  # the axis is in seconds: so is every label
    assert any("16.563 s" in t for t in texts)
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    for ln in ax.get_lines():
        if ln.get_marker() not in (None, "None", "", " "):  # the dots: the scenario's load levels
            assert ln.get_label() in legend, ln.get_label()
    assert isinstance(ax.get_lines()[0], Line2D)
    _assert_legends_off_the_data(fig)
    _assert_text_large_enough(fig)
    plt.close(fig)
