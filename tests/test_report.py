"""`stormcheck report`: the design-review page, its Markdown twin and its traces.

One report of the 2015 fleet under all six designs with all three engines is
built once for the module, with a small Hypothesis budget (about a minute,
mostly the symbolic engine). Cheaper properties (bad input, atomic writes,
progress, a trace that does not replay, plug-in sections) use
exhaustive-only reports, which take well under a second.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stormcheck import report
from stormcheck.cli import main
from stormcheck.model.params import DESIGNS
from stormcheck.model.scenario import load_scenario
from stormcheck.msc import sequence_diagram
from stormcheck.properties.protocol import PROPERTIES
from stormcheck.report_core import Section
from stormcheck.traces.export import replay_trace
from stormcheck.traces.itf import Trace, plain_integers

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "counterexamples" / "manifest.json").read_text())
XHTML = "{http://www.w3.org/1999/xhtml}"
ENGINES = ("exhaustive", "hypothesis", "symbolic")
# The safety and reachability properties, for the quick reports. The module's
# full report has liveness too (the default where no depth bound is stated).
SAFETY = [w for p in PROPERTIES for w in ("--property", p.name)]


@pytest.fixture(scope="module")
def gitter(tmp_path_factory) -> Path:
    """The gitter-2015 report: all six designs, all three engines."""
    out = tmp_path_factory.mktemp("report") / "gitter"
    rc = main(["report", "gitter-2015", "--design", "all", "--out", str(out), "--examples", "60", "--quiet"])
    assert rc == 0
    return out


def _xml(folder: Path) -> ET.Element:
    return _xml_file(folder / "report.html")


def _xml_file(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _text(el: ET.Element) -> str:
    return "".join(el.itertext()).strip()


def _html_table(root: ET.Element, table_id: str) -> list[list[ET.Element]]:
    table = root.find(f".//{XHTML}table[@id='{table_id}']")
    assert table is not None, f"no table #{table_id}"
    return [row.findall(f"{XHTML}td") for row in table.iter(f"{XHTML}tr") if row.findall(f"{XHTML}td")]


def _cell_verdict(td: ET.Element) -> str:
    span = td.find(f"{XHTML}span[@data-verdict]")
    return span.get("data-verdict") if span is not None else _text(td)


def html_matrix(root: ET.Element) -> dict[tuple, str]:
    """(scenario, design, property, engine) -> verdict, from the page's per-property matrix."""
    table = root.find(f".//{XHTML}table[@id='verdict-matrix']")
    assert table is not None, "no table #verdict-matrix"
    return {(s.get("data-scenario"), s.get("data-design"), s.get("data-property"), s.get("data-engine")):
            s.get("data-verdict") for s in table.iter(f"{XHTML}span") if s.get("data-engine")}


def md_matrix(text: str) -> dict[tuple, str]:
    """The same mapping from the Markdown twin's per-property tables, one per scenario and design."""
    part = text.split("### Per property", 1)[1].split("\n## ", 1)[0]
    out, engines, group = {}, [], None
    for line in part.splitlines():
        if line.startswith("#### "):
            group = line[5:].split(" / ")
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if not line.startswith("| "):
            continue
        if line.startswith("| property"):
            engines = cells[1:]
            continue
        for engine, cell in zip(engines, cells[1:]):
            out[group[0], group[1], cells[0].split(" ")[0], engine] = re.match(r"\*\*([\w ]+)\*\*", cell).group(1)
    return out


# ---------------------------------------------------------------- the page itself


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_html_is_well_formed_and_self_contained(gitter):
    root = _xml(gitter)  # raises on any markup error
    assert root.tag == f"{XHTML}html"
    html = (gitter / "report.html").read_text(encoding="utf-8")
    # Viewable offline: no script, no stylesheet link, every image inline.
    assert "<script" not in html and "<link" not in html
    imgs = list(root.iter(f"{XHTML}img"))
    assert imgs and all(img.get("src").startswith("data:image/") for img in imgs)
    for el in root.iter():
        for attr in ("src", "href"):
            assert not (el.get(attr) or "").startswith(("http:", "https:", "//")), el.get(attr)


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_markdown_twin_has_the_same_verdict_matrix(gitter):
    html = html_matrix(_xml(gitter))
    md = md_matrix((gitter / "report.md").read_text(encoding="utf-8"))
    assert html == md
    for design in DESIGNS:
        for prop in PROPERTIES:
            for engine in ENGINES:
                assert html["gitter-2015", design, prop.name, engine] in ("holds", "violated", "inconclusive",
                                                                          "not checked")


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_gitter_2015_all_designs_each_engine_and_the_engines_agree(gitter):
    root = _xml(gitter)
    matrix = html_matrix(root)
    expected = {c["design"]: c["verdicts"] for c in MANIFEST["checks"] if c["scenario"] == "gitter-2015"}
    assert set(expected) == set(DESIGNS)
    for design, verdicts in expected.items():
        for prop, verdict in verdicts.items():
            assert matrix["gitter-2015", design, prop, "exhaustive"] == verdict, (design, prop)
        # Every engine shows a verdict for every design; none contradicts the exhaustive one.
        for engine in ENGINES:
            shown = matrix["gitter-2015", design, "no_valid_reap", engine]
            assert shown in ("holds", "violated", "inconclusive")
            if engine == "hypothesis":  # a random search never proves: it finds, or it is inconclusive
                assert shown in (verdicts["no_valid_reap"], "inconclusive") and shown != "holds"
    per_design = {(_text(t[0]), _text(t[1])): [_cell_verdict(td) for td in t[2:6]] + [_text(t[6])]
                  for t in _html_table(root, "design-verdicts")}
    assert set(per_design) == {("gitter-2015", d) for d in DESIGNS}
    heads = root.findall(f".//{XHTML}h3[@data-agreement]")
    assert {h.get("data-design") for h in heads} == set(DESIGNS)
    for h in heads:
        design = h.get("data-design")
        assert h.get("data-agreement") == "agree", _text(h)
        assert per_design["gitter-2015", design][4] == "agree"
        assert per_design["gitter-2015", design][3] == expected[design]["no_valid_reap"]  # the combined verdict
        assert f"no_valid_reap {expected[design]['no_valid_reap']}" in _text(h), _text(h)
    # The 2015 design: both engines that can prove find the violation (the
    # Hypothesis budget here is too small to count on; see the next test).
    assert matrix["gitter-2015", "per-server", "no_valid_reap", "symbolic"] == "violated"


@pytest.mark.slow
def test_default_hypothesis_budget_finds_the_2015_violation(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--engine", "hypothesis", "--out", str(out), "--quiet", *SAFETY])
    assert rc == 0
    matrix = html_matrix(_xml(out))
    assert matrix["gitter-2015", "per-server", "no_valid_reap", "hypothesis"] == "violated"
    assert list((out / "traces").glob("gitter-2015.per-server.no_valid_reap.hypothesis.itf.json"))


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_every_trace_shown_replays(gitter, capsys):
    root = _xml(gitter)
    html_links = {a.get("data-path") for a in root.iter(f"{XHTML}a") if a.get("class") == "trace"}
    md_links = set(re.findall(r"\]\((traces/[^)]+\.itf\.json)\)", (gitter / "report.md").read_text()))
    assert html_links and html_links == md_links
    violated = {(d, p) for (_, d, p, _), v in html_matrix(root).items() if v == "violated"}
    for design, prop in violated:  # every violation is shown with a trace
        assert any(f".{design}.{prop}." in link for link in html_links), (design, prop)
    for link in sorted(html_links):
        path = gitter / link
        trace = Trace.read(path)
        scenario = load_scenario("gitter-2015", design=trace.meta["design"])
        replay_trace(trace, scenario.params)  # raises if it does not replay
        assert main(["replay", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_violation_shows_sequence_diagram_and_cutoff_arithmetic(gitter):
    root = _xml(gitter)
    section = root.find(f".//{XHTML}section[@id='violations']")
    text = _text(section)
    # The 2015 arithmetic, from the Reaped event of the fatal step: 1.6 x 45 = 72 against an age of 101 s.
    assert "cutoff = 1.6 x T = 1.6 x 45 = 72 s; the age it saw was 101 s" in text
    assert len(list(section.iter(f"{XHTML}pre"))) == len(list(section.iter(f"{XHTML}img")))
    svgs = sorted((gitter / "img").glob("*.msc.svg"))
    assert svgs
    svg = ET.parse(svgs[0]).getroot()
    labels = [_text(t) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert {"c0", "s0", "s1", "s2", "shared store"} <= set(labels)
    assert any(label.startswith("reap valid c0") for label in labels)


def test_sequence_diagram_marks_the_fatal_reap():
    sc = load_scenario("gitter-2015")
    trace = Trace.read(ROOT / "counterexamples" / "gitter-2015.per-server.no_valid_reap.itf.json")
    run = replay_trace(trace, sc.params)
    svg = ET.fromstring(sequence_diagram(run, sc.params, uid="t"))
    ns = "{http://www.w3.org/2000/svg}"
    fatal = [ln for ln in svg.iter(f"{ns}line") if ln.get("stroke") == "#c62828"]
    assert len(fatal) == 1 and fatal[0].get("marker-end") == "url(#t-fatal)"
    assert any(_text(t) == f"step {len(run)}" for t in svg.iter(f"{ns}text"))


# ---------------------------------------------------------------- building


def _quick(tmp_path, *extra):
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--engine", "exhaustive", "--out", str(out), "--skip", "storms", *SAFETY,
               *extra])
    return rc, out


def test_liveness_lasso_is_shown_and_replays(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--engine", "exhaustive", "--design", "fleet-wide", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0
    names = {p for (_, _, p, _) in html_matrix(_xml(out))}
    liveness = sorted(names - {p.name for p in PROPERTIES})
    if not liveness:
        pytest.skip("the model defines no liveness property")
    matrix = html_matrix(_xml(out))
    violated = [n for n in liveness if matrix["gitter-2015", "fleet-wide", n, "exhaustive"] == "violated"]
    if not violated:
        pytest.skip(f"no liveness property is violated on gitter-2015/fleet-wide: {', '.join(liveness)}")
    for name in violated:
        stem = f"gitter-2015.fleet-wide.{name}.exhaustive"
        assert re.search(rf"^replay {re.escape(stem)} \.\.\. replays, \d+ steps; its \d+-step cycle repeats "
                         rf"forever and violates {name}", err, re.M), err
        svg = (out / "img" / f"{stem}.msc.svg").read_text()
        assert "repeats forever" in svg


def test_progress_one_line_per_stage_and_quiet(tmp_path, capsys):
    rc, out = _quick(tmp_path, "--design", "per-server", "--design", "off")
    err = capsys.readouterr().err
    assert rc == 0
    # Each cell's verdicts counted, as the page's matrix shows them property by property.
    assert re.search(r"^gitter-2015/per-server/exhaustive \.\.\. violated 2, holds 2 \(\d+\.\d s\)$", err, re.M), err
    assert re.search(r"^gitter-2015/off/exhaustive \.\.\. holds 4 \(\d+\.\d s\)$", err, re.M), err
    assert re.search(r"^replay gitter-2015\.per-server\.no_valid_reap\.exhaustive \.\.\. replays", err, re.M), err
    rc, out = _quick(tmp_path, "--quiet")
    assert rc == 0 and capsys.readouterr().err == ""


def test_rebuild_replaces_the_report_and_leaves_no_temporaries(tmp_path, capsys):
    rc, out = _quick(tmp_path, "--quiet", "--design", "per-server")
    assert rc == 0 and list((out / "traces").glob("*.per-server.*"))
    rc, out = _quick(tmp_path, "--quiet", "--design", "off")
    assert rc == 0
    assert not (out / "traces").exists()  # 'off' has no violation to show; nothing of the old report is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("argv, message", [
    (["nope"], "nope: is not a preset name"),
    (["gitter-2015", "--design", "bogus"], "--design 'bogus': unknown design"),
    (["gitter-2015", "--examples", "0"], "--examples 0: must be a whole number >= 1"),
    (["gitter-2015", "--max-seconds", "-1"], "--max-seconds -1: must be > 0"),  # as typed, not -1.0
    (["gitter-2015", "--max-seconds", "-0.5"], "--max-seconds -0.5: must be > 0"),
    (["gitter-2015", "--property", "nope"], "--property: no property named 'nope'"),
    (["gitter-2015", "--engine", "exhaustive", "--examples", "5"],
     "--examples 5: only used by --engine hypothesis, which this report does not run (it runs exhaustive); "
     "add --engine hypothesis or leave --examples out"),
    (["gitter-2015", "--engine", "hypothesis", "--engine", "symbolic", "--max-seconds", "5"],
     "--max-seconds 5: only used by --engine exhaustive, which this report does not run (it runs hypothesis, "
     "symbolic)"),
    (["gitter-2015", "--engine", "exhaustive", "--symbolic-steps", "9"], "--symbolic-steps 9: only used by"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "r"
    rc = main(["report", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and message in err, err
    assert not out.exists()


def test_the_rebuild_command_gives_a_seed_only_where_an_engine_uses_it(tmp_path, capsys):
    # Exhaustive alone draws nothing: its rebuild command must not carry the --seed the report now refuses.
    # Nor does "What was searched" list a seed or a budget that no engine of the report read.
    rc, out = _quick(tmp_path, "--quiet", "--design", "off")
    page = (out / "report.md").read_text()
    assert rc == 0 and "--seed" not in page and not re.search(r"\| seed \| \d", page)  # the facts' row
    assert "budget: exhaustive" in page and "budget: hypothesis" not in page and "--examples" not in page
    rc = main(["report", "static-45", "--engine", "hypothesis", "--seed", "5", "--examples", "2",
               "--hypothesis-steps", "3", "--property", "no_valid_reap", "--skip", "storms", "--skip", "synthesis",
               "--out", str(tmp_path / "h"), "--quiet"])
    page = (tmp_path / "h" / "report.md").read_text()
    assert rc == 0 and "--seed 5 --examples 2 --hypothesis-steps 3" in page and "| seed | 5 |" in page
    assert "budget: hypothesis" in page and "budget: exhaustive" not in page and "--max-seconds" not in page


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc, _ = _quick(tmp_path, "--quiet")
    assert rc == 2 and "not a stormcheck report" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_trace_that_does_not_replay_fails_the_build(tmp_path, capsys, monkeypatch):
    # Tamper with every trace as it is written: the clock of its last state
    # is off by one, which replay must notice.
    original = Trace.write

    def tampered(self, path):
        original(self, path)
        doc = plain_integers(json.loads(Path(path).read_text()))
        doc["states"][-1]["now"] += 1
        Path(path).write_text(json.dumps(doc))

    monkeypatch.setattr(Trace, "write", tampered)
    rc, out = _quick(tmp_path, "--design", "per-server", "--quiet")
    err = capsys.readouterr().err
    assert rc == 1 and "report not written" in err and "does not replay" in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_registered_section_appears_in_both_formats(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "SECTION_BUILDERS", list(report.SECTION_BUILDERS))

    def designs_counted(ctx):
        n = sum(len(d) for d in ctx.designs.values())
        return Section("counted", "Designs counted", f"<p>{n} designs</p>", f"{n} designs\n")

    report.register_section(designs_counted)
    report.register_section(designs_counted)  # once only
    assert report.SECTION_BUILDERS.count(designs_counted) == 1
    assert report.SECTION_BUILDERS[-1].__name__ == "searched_section"  # stays last
    rc, out = _quick(tmp_path, "--quiet", "--design", "all")
    assert rc == 0
    assert _text(_xml(out).find(f".//{XHTML}section[@id='counted']")).endswith("6 designs")
    assert "## Designs counted\n\n6 designs" in (out / "report.md").read_text()


# ---------------------------------------------------------------- rendering in a browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _pixels(png: Path):
    import matplotlib.image as mpimg

    return mpimg.imread(png)[..., :3]  # floats in [0, 1]


def _distinct_colours(png: Path) -> int:
    import numpy as np

    flat = (_pixels(png) * 255).astype("uint8").reshape(-1, 3)
    return len(np.unique(flat, axis=0))


def _ink(png: Path) -> float:
    """The share of pixels clearly darker than the white page."""
    return float((_pixels(png).min(axis=2) < 0.9).mean())


_PROBE = """<script>window.addEventListener("load", function () {
  var out = {height: document.documentElement.scrollHeight, figures: []};
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i], r = im.getBoundingClientRect();
    out.figures.push({alt: im.alt, natural: [im.naturalWidth, im.naturalHeight],
                      box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]});
  }
  var p = document.createElement("pre"); p.id = "probe"; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
});</script>"""


def _browser(tmp_path) -> str:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); CI runs this check")
    return browser


def _headless(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _figures_as_laid_out(browser: str, page: Path, tmp_path: Path) -> dict:
    """Every <img> of `page` as the browser lays it out at 1280 px wide: natural size and box on the page."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    proc = _headless(browser, tmp_path, "--window-size=1280,2400", "--virtual-time-budget=10000", "--dump-dom",
                     probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_renders_in_headless_chromium(gitter, tmp_path):
    browser = _browser(tmp_path)
    shot = tmp_path / "page.png"
    proc = _headless(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,2400",
                     (gitter / "report.html").as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    # A page with one line of text (an error) shows about 85 colours, all
    # anti-aliasing, and under 0.1 % ink; the report's first screen has
    # tables of coloured verdicts: over a thousand colours, several % ink.
    assert _distinct_colours(shot) > 400
    assert _ink(shot) > 0.02


# The plots are drawn with text of at least 9 pt at 110 dpi (about 14 px);
# shown at 3/4 of their natural size or more, that text stays >= 10 px.
SMALLEST_SCALE = 0.75


@pytest.mark.slow  # shares the module report (about a minute to build)
def test_every_figure_is_shown_at_a_readable_size(gitter, tmp_path):
    import numpy as np

    browser = _browser(tmp_path)
    laid_out = _figures_as_laid_out(browser, gitter / "report.html", tmp_path)
    figures = {f["alt"]: f for f in laid_out["figures"]}
    images = sorted(p.name for p in (gitter / "img").iterdir())
    assert len(laid_out["figures"]) == len(images) == len(figures)  # every figure is on the page, once
    plots = [f for f in figures.values() if "message-sequence" not in f["alt"]]
    assert len(plots) == 2 + len(DESIGNS)  # region, thresholds, a storm per design
    for f in figures.values():
        (nw, nh), (x, y, w, h) = f["natural"], f["box"]
        assert w >= min(nw, 600) and h > 100, f  # not squeezed into a thumbnail
        assert w / nw >= SMALLEST_SCALE and abs(w / nw - h / nh) < 0.02, f  # scaled, if at all, evenly
        assert x >= 0 and x + w <= 1280, f  # no figure runs off the page
    # The whole page, screenshotted at its full height: each figure's box
    # on it is painted (drawn, not blank), as a reviewer would see it.
    shot = tmp_path / "full.png"
    height = min(int(laid_out["height"]) + 10, 60000)
    proc = _headless(browser, tmp_path, f"--screenshot={shot}", f"--window-size=1280,{height}",
                     (gitter / "report.html").as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    pixels = _pixels(shot)
    for f in plots:
        x, y, w, h = (int(round(v)) for v in f["box"])
        crop = pixels[y:y + h, x:x + w]
        assert crop.shape[0] == h and crop.shape[1] == w, (f["alt"], crop.shape)
        assert float((crop.min(axis=2) < 0.9).mean()) > 0.03, f["alt"]  # ink: lines, text, shaded regions
        flat = (crop * 255).astype("uint8").reshape(-1, 3)
        assert len(np.unique(flat, axis=0)) > 200, f["alt"]


def test_synthesis_and_storm_sections(gitter):
    # The Z3 section: the proved region with the scenario's point, and the
    # adjuster thresholds; the storm section: the recovery table per design
    # and a plot per simulated design (fleet-wide-staged is not simulated).
    md = (gitter / "report.md").read_text()
    assert "T0 + I0 + rtt_max < ceil(1.6 x T0)" in md
    assert re.search(r"publish path: valid sessions reaped once avg subscribe latency >= \d+ ms", md)
    images = {p.name for p in (gitter / "img").iterdir()}
    assert {"gitter-2015.region.png", "gitter-2015.thresholds.png"} <= images
    simulated = [d for d in DESIGNS if d != "fleet-wide-staged"]
    assert {f"gitter-2015.{d}.storm.png" for d in simulated} <= images
    # The storm verdict is about recovery; the page says what it does not cover.
    storms = _text(_xml(gitter).find(f".//{XHTML}section[@id='storms']"))
    assert "valid sessions reaped (whole run)" in storms
    assert "The verdict is about recovery only" in storms and "that harm is what no_valid_reap" in storms
    # The safe region's ranges are explained beside the plot.
    synthesis = _text(_xml(gitter).find(f".//{XHTML}section[@id='synthesis']"))
    assert re.search(r"over timeout T0 from \d+ to \d+ s and interval I0 from \d+ to \d+ s", synthesis), synthesis
    root = _xml(gitter)
    rows = [[_text(td) for td in tr.findall(f"{XHTML}td")] for tr in root.iter(f"{XHTML}tr")]
    storm = {(r[0], r[2]): r[3] for r in rows if len(r) == 8 and r[2] in ("as configured", "admission")}
    assert storm["per-server", "as configured"].startswith("violated")
    assert storm["off", "as configured"].startswith("holds")
    assert storm["per-server", "admission"].startswith("holds")


# ---------------------------------------------------------------- reading the page


def test_matrix_tells_not_checked_from_inconclusive(tmp_path, capsys):
    # The symbolic engine does not check storm_subsides (a liveness property):
    # its cell says so, and it has no say in the engine's verdict on the
    # design, which it proved safe. The combined verdict names who decided.
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--design", "off", "--engine", "exhaustive", "--engine", "symbolic",
               "--skip", "storms", "--skip", "synthesis", "--out", str(out), "--quiet"])
    assert rc == 0
    root = _xml(out)
    matrix = html_matrix(root)
    assert matrix["gitter-2015", "off", "storm_subsides", "symbolic"] == "not checked"
    assert matrix["gitter-2015", "off", "storm_subsides", "exhaustive"] == "holds"
    assert matrix["gitter-2015", "off", "no_valid_reap", "symbolic"] == "holds"
    (row,) = _html_table(root, "design-verdicts")
    assert [_cell_verdict(td) for td in row[2:5]] == ["holds", "holds", "holds"]
    assert "not checked by this engine" in _text(_html_table(root, "verdict-matrix")[-1][2])
    combined = _text(row[4])
    assert "decided by exhaustive (5 of 5 properties), symbolic (4 of 5 properties)" in combined, combined
    assert md_matrix((out / "report.md").read_text()) == matrix


def test_no_markdown_backticks_on_the_page(tmp_path, capsys):
    # Engine texts quote commands Markdown-style (`stormcheck storm`): the page
    # sets them as <code>, the Markdown twin keeps them.
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--design", "off", "--engine", "exhaustive", "--engine", "hypothesis",
               "--examples", "5", "--skip", "storms", "--out", str(out), "--quiet"])
    assert rc == 0
    root = _xml(out)
    def prose(el):  # the text of `el` outside <pre> and <code>
        if el.tag not in (f"{XHTML}pre", f"{XHTML}code"):
            yield el.text or ""
            for child in el:
                yield from prose(child)
                yield child.tail or ""

    stray = [t for t in prose(root) if "`" in t]
    assert not stray, stray[:3]
    codes = [_text(c) for c in root.iter(f"{XHTML}code")]
    assert "stormcheck storm" in codes
    assert "`stormcheck storm`" in (out / "report.md").read_text()


def test_searches_say_in_words_what_the_symbolic_engine_did(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--design", "per-server", "--engine", "symbolic", "--skip", "storms",
               "--skip", "synthesis", "--out", str(out), "--quiet", *SAFETY])
    assert rc == 0
    section = _text(_xml(out).find(f".//{XHTML}section[@id='searched']"))
    assert "proof cti" not in section and "BMC" not in section and "per depth" not in section
    assert "no_valid_reap: no proof: the invariant admits a bad step (" in section, section
    assert re.search(r"then bounded search up to 12 steps: [\d.]+ s", section), section
    assert "counterexample to induction" in section  # the note under the table says what that means


def test_trace_links_work_from_the_page_alone(tmp_path, capsys):
    # A page mailed without its folder: every trace link carries the trace
    # itself (a data: URI to download), byte for byte the file in traces/.
    rc, out = _quick(tmp_path, "--quiet", "--design", "per-server")
    assert rc == 0
    root = _xml(out)
    links = [a for a in root.iter(f"{XHTML}a") if a.get("class") == "trace"]
    assert links
    for a in links:
        head, _, data = a.get("href").partition(",")
        assert head == "data:application/json;base64", head
        assert base64.b64decode(data) == (out / a.get("data-path")).read_bytes()
        assert a.get("download") == Path(a.get("data-path")).name
    assert "embedded" in _text(root.find(f".//{XHTML}section[@id='replays']"))
    mailed = tmp_path / "mailed.html"
    shutil.copy(out / "report.html", mailed)
    hrefs = [el.get("href") for el in _xml_file(mailed).iter() if el.get("href")]
    assert all(h.startswith(("#", "data:")) for h in hrefs), [h[:40] for h in hrefs if not h.startswith("data:")]


def test_a_proxy_cut_is_explained_and_drawn_as_the_proxy_s():
    # proxies/nginx-websockets-ping-90: nginx's idle timeout cuts a connection whose pings come
    # every 90 s. The violation section states the cut as the timeline does (the proxy's idle
    # timeout, not a server reaper's T), and the sequence diagram draws the proxy's lane and no
    # shared store (sessions live with their sockets). Control: the 2015 fleet keeps its store lane.
    from stormcheck.checkers.bfs import check_bfs
    from stormcheck.properties.protocol import no_valid_reap
    from stormcheck.report_sections import _arithmetic

    sc = load_scenario("proxies/nginx-websockets-ping-90")
    run = check_bfs(sc.params, (no_valid_reap,)).get("no_valid_reap").run
    text = " ".join(_arithmetic("no_valid_reap", run, sc.params))
    assert "proxy nginx cuts valid c0's connection" in text and "idle" in text
    assert "reaper judges" not in text and "judged with T" not in text
    ns = "{http://www.w3.org/2000/svg}"
    labels = [_text(t) for t in ET.fromstring(sequence_diagram(run, sc.params, uid="p")).iter(f"{ns}text")]
    assert "nginx" in labels and "shared store" not in labels
    assert any(label.startswith("cuts valid c0: silent") for label in labels)
    gitter = load_scenario("gitter-2015")
    g_run = replay_trace(Trace.read(ROOT / "counterexamples" / "gitter-2015.per-server.no_valid_reap.itf.json"),
                         gitter.params)
    g_labels = [_text(t) for t in ET.fromstring(sequence_diagram(g_run, gitter.params, uid="g")).iter(f"{ns}text")]
    assert "shared store" in g_labels and "nginx" not in g_labels
    assert "cutoff = 1.6 x T = 1.6 x 45 = 72 s" in " ".join(_arithmetic("no_valid_reap", g_run, gitter.params))



def test_a_hypothesis_cell_counts_its_examples_as_check_does(capsys):
    """--examples 300 on static-45 (seed 1) runs 323: Hypothesis remakes the runs it stops part way. The
    report's searched column says so as `check --engine hypothesis` does, not a plain 323."""
    from stormcheck.checkers.hypo import check_hypothesis
    from stormcheck.checkers.result import CheckResult
    from stormcheck.cli import _print_result
    from stormcheck.properties.protocol import no_valid_reap
    from stormcheck.report_core import Cell
    from stormcheck.report_sections import _searched

    sc = load_scenario("static-45")
    result = check_hypothesis(sc, (no_valid_reap,), seed=1, examples=300, steps=30)
    st = result.stats
    assert st["cut_short"] > 0 and st["examples"] - st["cut_short"] == 300
    said = f"{st['examples']:,} examples of <= 30 steps ({st['cut_short']:,} beyond the budget of whole runs)"
    _print_result(sc, result, {}, quiet=True)
    assert said in capsys.readouterr().out
    assert _searched(Cell(sc, "hypothesis", result, 0.0)).startswith(said + ", ")
    # Runs replayed while shrinking a counterexample are said apart too, beside those beyond the budget.
    both = CheckResult("hypothesis", sc.name, sc.design.name, result.properties,
                       {**st, "examples": 400, "cut_short": 23, "shrinking": 77})
    assert _searched(Cell(sc, "hypothesis", both, 0.0)).startswith(
        "400 examples of <= 30 steps (23 beyond the budget of whole runs; 77 shrinking a counterexample), ")


def test_progress_line_counts_the_cell_in_the_pages_words(tmp_path, capsys):
    # The Hypothesis engine does not check liveness: the page says "not checked", and so does the line.
    out = tmp_path / "r"
    rc = main(["report", "gitter-2015", "--engine", "hypothesis", "--property", "no_valid_reap", "--property",
               "storm_subsides", "--examples", "5", "--hypothesis-steps", "10", "--skip", "storms", "--skip",
               "synthesis", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0
    page = html_matrix(ET.parse(out / "report.html").getroot())
    words = [page["gitter-2015", "per-server", p, "hypothesis"] for p in ("no_valid_reap", "storm_subsides")]
    assert words[1] == "not checked"
    counted = ", ".join(f"{w} {words.count(w)}" for w in dict.fromkeys(words))
    assert f"gitter-2015/per-server/hypothesis ... {counted} (" in err, err


def test_report_offers_the_engines_it_runs():
    r = report.add_parser(argparse.ArgumentParser().add_subparsers())
    with pytest.raises(SystemExit):
        r.parse_args(["--engine", "compositional"])  # not among the three a report runs
    shown = " ".join(r.format_help().split())
    assert "--engine {exhaustive,hypothesis,symbolic}" in shown
    assert "default: all three, exhaustive, hypothesis, symbolic" in shown
