"""The sections a report has today: matrix, agreement, violations, replays, what was searched.

Each is a section builder (`stormcheck.report_core.SectionBuilder`): it reads
the engine results in the context and returns a `Section` in XHTML and
Markdown. The synthesis plot and the storm sections are added the same way
(`stormcheck.report.register_section`) when their engines exist.
"""

from __future__ import annotations

import platform
import re

from stormcheck import count
from stormcheck.checkers import SEEDED_ENGINES
from stormcheck.checkers.result import examples_searched
from stormcheck.model.events import Reaped
from stormcheck.model.fleet import cutoff_text, is_valid
from stormcheck.properties.core import ALWAYS, Verdict
from stormcheck.properties.protocol import by_name, next_refresh_age, reap_margin
from stormcheck.traces.run import session_ages, true_age
from stormcheck.traces.timeline import clock, cutoff_expr, reap_text, render_timeline

from .msc import sequence_diagram
from .output import run_scenario
from .report_agreement import NOT_CHECKED, combined_verdict, design_agreement, engine_verdict
from .report_core import Cell, Image, ReportContext, Section
from .report_html import (esc, img_html, img_markdown, md_cell, prose, table_html, table_markdown, trace_link_html,
                          verdict_html)

__all__ = ["matrix_section", "agreement_section", "violations_section", "replay_section", "searched_section",
           "DEFAULT_SECTIONS"]


def _designs(ctx: ReportContext):
    """(scenario name, design, [cell per engine]) in report order."""
    for sc in ctx.scenarios:
        for design in ctx.designs[sc.name]:
            cells = [ctx.cell(sc.name, design, e) for e in ctx.engines]
            yield sc.name, design, [c for c in cells if c is not None]


def _names(cells: list[Cell]) -> list[str]:
    """The property names reported for one design (every engine got the same ones)."""
    return [p.name for p in cells[0].result.properties] if cells else []


def _md_verdict(verdict: object, basis: str = "") -> str:
    return f"**{verdict}**" + (f" ({md_cell(basis)})" if basis else "")


# ---------------------------------------------------------------- verdict matrix


def _verdict_md(r) -> str:
    """A property result as a Markdown cell: like the page's, "not checked" apart from inconclusive."""
    return _md_verdict(NOT_CHECKED if not r.checked else r.verdict, r.basis)


def _prop_cell(scenario: str, design: str, engine: str, r) -> str:
    attrs = (f' data-scenario="{esc(scenario)}" data-design="{esc(design)}" data-property="{esc(r.name)}"'
             f' data-engine="{esc(engine)}"')
    return verdict_html(NOT_CHECKED if not r.checked else r.verdict, r.basis, attrs)


def matrix_section(ctx: ReportContext) -> Section:
    """Scenario x design x property x engine: the verdict and the bound or proof behind it."""
    heads = ["scenario", "design", *ctx.engines, "combined verdict", "engines"]
    summary_h, summary_md = [], []
    rows_h, parts_md = [], []
    prop_heads = ["property", *ctx.engines]
    for scenario, design, cells in _designs(ctx):
        word, agreed = design_agreement(cells, _names(cells))
        verdict, decided = combined_verdict(cells, agreed)
        overall = [verdict_html(engine_verdict(c)) for c in cells]
        summary_h.append([(esc(scenario), "design"), (esc(design), "design"), *overall, verdict_html(verdict, decided),
                          (esc(word), word.replace(" ", "-"))])
        summary_md.append([md_cell(scenario), md_cell(design), *[_md_verdict(engine_verdict(c)) for c in cells],
                           _md_verdict(verdict, decided), word])
        rows_h.append(f"{esc(scenario)} / {esc(design)}")
        rows_md = []
        for name in _names(cells):
            p = by_name(name)
            res = [c.result.get(name) for c in cells]
            rows_h.append([(esc(f"{p.name} ({p.modality})"), "property"),
                           *[_prop_cell(scenario, design, c.engine, r) for c, r in zip(cells, res)]])
            rows_md.append([md_cell(f"{p.name} ({p.modality})"), *[_verdict_md(r) for r in res]])
        parts_md.append(f"#### {scenario} / {design}\n\n" + table_markdown(prop_heads, rows_md))
    intro = ("Each engine's verdict per design is the worst over the properties it checks (violated, else "
             "inconclusive, else holds); the combined verdict is the worst over the properties of what the "
             "evidence of all engines supports, and names the engines that decided it. <em>holds</em> is claimed "
             "only for a complete search, a proof, or within a stated bound; a search that ran out of budget, or a "
             "random search that found nothing, is <em>inconclusive</em>. <em>not checked by this engine</em>: the "
             "engine does not check that property at all (the symbolic and Hypothesis engines and liveness, a "
             "fleet the symbolic encoding does not cover); it has no say in the verdict.")
    html = (f"<p>{intro}</p><h3>Per design</h3>" + table_html(heads, summary_h, id="design-verdicts")
            + "<h3>Per property</h3>" + table_html(prop_heads, rows_h, id="verdict-matrix"))
    md = (re.sub(r"</?em>", "*", intro) + "\n\n### Per design\n\n" + table_markdown(heads, summary_md)
          + "\n### Per property\n\n" + "\n".join(parts_md))
    return Section("verdicts", "Verdict matrix", html, md)


# ---------------------------------------------------------------- agreement


def agreement_section(ctx: ReportContext) -> Section:
    """Per design: do the engines agree, and on what; per property the evidence."""
    html, md = [], []
    for scenario, design, cells in _designs(ctx):
        word, agreed = design_agreement(cells, _names(cells))
        main = agreed["no_valid_reap"].verdict
        said = {c.engine: c.result.get("no_valid_reap").verdict for c in cells if c.result.get("no_valid_reap").checked}
        unchecked = [c.engine for c in cells if not c.result.get("no_valid_reap").checked]
        if word == "disagree":
            bad = [n for n, a in agreed.items() if a.contradicts]
            head = f"{scenario} / {design}: the engines DISAGREE on {', '.join(bad)}"
        else:
            lead = {"agree": "the engines agree", "one engine": "one engine decided",
                    "undecided": "no engine decided"}[word]
            by = [e for e, v in said.items() if v == main and v != Verdict.INCONCLUSIVE]
            bounded = [f"{e} says {v} within its bound" for e, v in said.items()
                       if v not in (main, Verdict.INCONCLUSIVE)]
            undecided = [e for e, v in said.items() if v == Verdict.INCONCLUSIVE]
            head = f"{scenario} / {design}: {lead}; no_valid_reap {main} ({', '.join(by) or 'no engine'})"
            head += "".join(f"; {b}" for b in bounded)
            head += f"; undecided: {', '.join(undecided)}" if undecided else ""
            head += f"; not checked by {', '.join(unchecked)}" if unchecked else ""
        cls = word.replace(" ", "-")
        items = "".join(f"<li><strong>{esc(n)}</strong>: {prose(a.text)}</li>" for n, a in agreed.items())
        html.append(f'<h3 class="{cls}" data-scenario="{esc(scenario)}" data-design="{esc(design)}" '
                    f'data-agreement="{cls}">{prose(head)}</h3><ul>{items}</ul>')
        md.append(f"### {head}\n\n" + "".join(f"- **{n}**: {a.text}\n" for n, a in agreed.items()))
    intro = ("Two verdicts contradict each other only when their evidence overlaps: a run of n steps against "
             "a search that was complete, or bounded at n steps or more. A bounded search that stopped "
             "short of the shortest run is consistent with it; an inconclusive verdict contradicts nothing.")
    return Section("agreement", "Engine agreement", f"<p>{prose(intro)}</p>" + "".join(html),
                   intro + "\n\n" + "\n".join(md))


# ---------------------------------------------------------------- violations


def _arithmetic(prop_name: str, run, params) -> list[str]:
    """The fatal step spelled out: which reaper cut, at what age, by which T and why that was wrong."""
    if not run.steps:
        return [f"The initial state already violates {prop_name}: {by_name(prop_name).description}"]
    pre, (action, st) = run.states[-2], run.steps[-1]
    ages = session_ages(run, params.age_cap)[-2]  # true ages, not the ones the model saturates
    lines, u = [], params.unit  # every time below is in the fleet's unit
    now = run.times()[-1]
    for ev in st.events:
        if not (isinstance(ev, Reaped) and is_valid(pre, ev.client)):
            continue
        saturated, ev = ev.age, true_age(pre, ages, ev)[0]
        if ev.path not in ("gc", "publish"):
            # A judge beside the servers' reapers (the client's own check, a proxy), a resume window, a
            # minimum spacing: the timeline's statement of the cut, word for word.
            lines.append(f"Step {len(run)}: {reap_text(params, pre, ev, now)}.")
            continue
        m = cutoff_text(params.gc_mult if ev.path == "gc" else params.publish_mult)
        k = params.heartbeat.interval_multiplier
        symbols = f"{m} x T" + (f" + {cutoff_text(k)} x I" if k else "")
        by = {"server": "its own server's T", "session": "the T recorded with the session",
              "client": "the client's own T"}.get(ev.judged_by, ev.judged_by)
        lines.append(f"Step {len(run)}: s{ev.server}'s {ev.path} reaper judges c{ev.client}'s session by {by}: "
                     f"cutoff = {symbols} = {cutoff_expr(params, ev)} {u}; the age it saw was {ev.age} {u} >= "
                     f"{ev.cutoff} {u}, so it reaped.")
        due = next_refresh_age(params, pre, ev.client)
        if due is not None:
            due += ev.age - saturated
            late = due - float(ev.cutoff)
            where = f"{late:g} {u} past" if late > 0 else ("right at" if late == 0 else f"{-late:g} {u} before")
            lines.append(f"c{ev.client} was valid: its next refresh would land at session age <= {due} {u}, "
                         f"{where} the cutoff {ev.cutoff} {u}.")
    prop = by_name(prop_name)
    margin = reap_margin(params, st.state) if prop.over == "state" else None
    if not lines and margin is not None and margin <= 0:
        lines.append(f"Step {len(run)} ({action}) reaches a state where a valid client's next refresh lands "
                     f"{-margin} {u} past an up server's reaper cutoff (margin {margin} {u}). "
                     f"The property requires: {prop.description}")
    elif not lines:
        lines.append(f"Step {len(run)} ({action}) is where the run violates {prop_name}. "
                     f"The property requires: {prop.description}")
    if run.loop is not None:
        lines.append(f"The run is a lasso: after step {len(run)} it returns to state {run.loop} and repeats forever.")
    return lines


def _timeline_html(text: str, last_time: int, unit: str) -> str:
    """The timeline with the fatal paragraph (VIOLATION, or the last instant's lines) marked."""
    lines, out, marking = text.splitlines(), [], False
    has_violation = any("VIOLATION" in ln for ln in lines)
    for ln in lines:
        starts = ln.startswith("t=")
        if starts or not ln.startswith(" "):
            marking = ("VIOLATION" in ln) if has_violation else ln.startswith(clock(last_time, unit).rstrip())
        out.append(f'<strong class="fatal">{esc(ln)}</strong>' if marking and ln else esc(ln))
    return "<pre>" + "\n".join(out) + "</pre>"


def _one_violation(ctx: ReportContext, scenario: str, design: str, cells: list[Cell], name: str, k: int):
    found = [(len(c.result.get(name).run), i, c) for i, c in enumerate(cells)
             if c.result.get(name).verdict == Verdict.VIOLATED and c.result.get(name).run is not None]
    if not found:
        return None
    found.sort(key=lambda t: t[:2])
    best = found[0][2]
    prop = best.result.get(name)
    shown = [ctx.show_trace(c, c.result.get(name)) for _, _, c in found]  # every run mentioned replays
    fleet = run_scenario(best.scenario, prop).params
    run = prop.run
    title = f"{scenario} / {design}: {name} violated ({count(len(run), 'step')}, {best.engine})"
    timeline = render_timeline(run, fleet, title=shown[0].name, focus=prop)
    svg = sequence_diagram(run, fleet, title=title, uid=f"msc{k}")
    image = Image(f"{shown[0].name}.msc.svg", svg.encode("utf-8"), "image/svg+xml",
                  f"message-sequence diagram of {scenario} / {design}, {name}")
    arith = _arithmetic(name, run, fleet)
    others = [f"{s.engine} ({count(s.steps, 'step')})" for s in shown[1:]]
    links_h = " ".join(trace_link_html(ctx, s.itf, f"{s.engine} trace") for s in shown)
    links_md = " ".join(f"[{s.engine} trace]({s.itf})" for s in shown)
    also = f"Also found by {', '.join(others)}. " if others else ""
    html = (f"<h3>{esc(title)}</h3><p>The shortest trace is the {esc(best.engine)} engine's. {esc(also)}"
            f"Traces (ITF, embedded in this page; replayable with <code>stormcheck replay</code>): {links_h}</p>"
            + "".join(f'<p class="fatal">{prose(a)}</p>' for a in arith)
            + f'<div class="msc">{img_html(image)}</div>' + _timeline_html(timeline, run.times()[-1], fleet.unit))
    md = (f"### {title}\n\nThe shortest trace is the {best.engine} engine's. {also}"
          f"Traces (ITF, replayable with `stormcheck replay`): {links_md}\n\n"
          + "".join(f"> {a}\n>\n" for a in arith)
          + f"\n{img_markdown(image)}\n\n```\n{timeline}```\n")
    return html, md, image


def violations_section(ctx: ReportContext) -> Section | None:
    """For each violated property: the shortest trace as a timeline and a sequence diagram."""
    html, md, images = [], [], []
    for scenario, design, cells in _designs(ctx):
        for name in _names(cells):
            part = _one_violation(ctx, scenario, design, cells, name, len(images))
            if part is not None:
                html.append(part[0])
                md.append(part[1])
                images.append(part[2])
    if not images:
        return None
    intro = ("For each violation, the shortest trace any engine found: the fatal step's arithmetic, the run "
             "as a message-sequence diagram (clients, servers and the shared session store; the fatal step on "
             "a red band, a reap of a valid client in bold red) and as a timeline.")
    return Section("violations", "Violations", f"<p>{prose(intro)}</p>" + "".join(html),
                   intro + "\n\n" + "\n".join(md), tuple(images))


# ---------------------------------------------------------------- replays


def replay_section(ctx: ReportContext) -> Section | None:
    """Every trace the report shows, replayed through the current model while the report was built."""
    if not ctx.shown:
        return None
    heads = ["trace", "engine", "steps", "replay"]
    rows_h = [[trace_link_html(ctx, s.itf, s.name), esc(s.engine), str(s.steps), prose(s.replay)]
              for s in ctx.shown]
    rows_md = [[f"[{md_cell(s.name)}]({s.itf})", s.engine, str(s.steps), md_cell(s.replay)] for s in ctx.shown]
    intro = ("Each trace above was written as ITF, read back and replayed through the current model, as "
             "`stormcheck replay` does; a trace that did not replay would have stopped the build.")
    where_h = ("Every trace link downloads the trace from this page itself, where it is embedded: the page works "
               "mailed on its own. The same files are under traces/ in the report folder.")
    where_md = "The links point into traces/ beside this file: keep the report folder together."
    return Section("replays", "Traces replayed",
                   f"<p>{prose(intro)}</p><p>{prose(where_h)}</p>" + table_html(heads, rows_h, id="replays"),
                   f"{intro} {where_md}\n\n" + table_markdown(heads, rows_md))


# ---------------------------------------------------------------- what was searched


# What a proof attempt of the symbolic engine (checkers/z3_proof.py) ended with, in words.
_PROOF = {"proved": "proved by an inductive invariant",
          "cti": "no proof: the invariant admits a bad step",
          "unknown": "no proof: the solver gave up"}
SEARCH_NOTES = (
    "How to read the searched column. Exhaustive: states and transitions visited, and whether the search was "
    "complete. Hypothesis: random runs and the steps they took. Symbolic (Z3): per property, first an attempt to "
    "prove it by an inductive invariant, which either closes (proved: any number of clients, unbounded time) or "
    "admits a bad step (a counterexample to induction: not proved, and no evidence of a violation either); "
    "then a bounded search for a run, one solver query per bound (runs up to 12 steps, then up to 16, ...; "
    "witnesses from 4), with each query's seconds.")


def _searched(cell: Cell) -> str:
    st = cell.result.stats
    if cell.engine == "exhaustive":
        bound = f", depth bound {st['depth_bound']}" if st.get("depth_bound") else ""
        return (f"{st.get('states', 0):,} states, {st.get('transitions', 0):,} transitions, depth {st.get('depth')}"
                f"{bound}; {'complete' if st.get('complete') else 'stopped: ' + str(st.get('stopped'))}")
    if cell.engine == "hypothesis":
        return (f"{examples_searched(st)}, {count(st.get('steps', 0), 'step')}"
                f" (budget {st.get('max_examples')} per always property)")
    if cell.engine == "symbolic":
        parts = []
        for name, info in (st.get("properties") or {}).items():
            proof = info.get("proof", {})
            what = f"{_PROOF.get(proof['status'], proof['status'])} ({proof.get('seconds', 0):g} s)" if proof else ""
            queries = info.get("per_depth")
            if queries:
                from stormcheck.checkers.z3_bmc import depth_schedule  # imports z3: only for symbolic cells

                first = 12 if by_name(name).modality == ALWAYS else 4
                bounds = depth_schedule(st.get("depth_bound") or first, first)[:len(queries)]
                what += ((", then " if what else "") + "bounded search up to "
                         + ", ".join(map(str, bounds)) + " steps: " + " + ".join(f"{t:g}" for t in queries) + " s")
            parts.append(f"{name}: {what or 'not searched'}")
        head = f"z3, bound {st.get('depth_bound')} steps, timeout {st.get('timeout_ms')} ms per check"
        return head + ("; " + "; ".join(parts) if parts else "")
    return ", ".join(f"{k} {v}" for k, v in st.items() if isinstance(v, (int, float, str)))


def _versions() -> str:
    from importlib import metadata

    parts = [f"Python {platform.python_version()}"]
    for pkg in ("hypothesis", "z3-solver"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


def searched_section(ctx: ReportContext) -> Section:
    """Bounds, states, examples, solver times, seed and tool versions: what the verdicts rest on."""
    b = ctx.budget
    budgets = {
        "exhaustive": f"the scenario's [search] bounds, at most {b.max_seconds:g} s",
        "hypothesis": f"{b.examples} seeded runs of <= {count(b.hypothesis_steps, 'step')} per always property",
        "symbolic": (f"{count(b.symbolic_steps, 'step')}" if b.symbolic_steps
                     else "the scenario's depth bound, else the engine's default (see Searches)"),
    }
    # The seed and each engine's budget only where an engine of the report reads them.
    facts = [
        ("tool", f"stormcheck {ctx.version} ({_versions()})"),
        ("command", "stormcheck report " + " ".join(ctx.argv) if ctx.argv else "stormcheck report"),
        *([("seed", str(b.seed))] if any(e in SEEDED_ENGINES for e in ctx.engines) else []),
        *((f"budget: {engine}", text) for engine, text in budgets.items() if engine in ctx.engines),
        ("total engine time", f"{sum(c.seconds for c in ctx.cells):.1f} s"),
    ]
    scen_heads = ["scenario", "source", "fleet", "T0 / I0", "RTT", "adjuster levels", "designs"]
    scen_rows = []
    for sc in ctx.scenarios:
        p = sc.params
        levels = "; ".join(f"{lv.avg_ms} ms: T={lv.timeout} I={lv.interval}" for lv in p.levels)
        scen_rows.append([sc.name, sc.source, f"{p.servers} servers, {p.clients} clients", f"{p.t0} / {p.i0} {p.unit}",
                          "/".join(map(str, p.rtt)) + f" {p.unit}", levels, ", ".join(ctx.designs[sc.name])])
    cell_heads = ["scenario", "design", "engine", "searched", "seed", "seconds"]
    cell_rows = [[c.scenario.name, c.design, c.engine, _searched(c), str(c.result.stats.get("seed", "-")),
                  f"{c.seconds:.2f}"] for c in ctx.cells]
    html = (table_html(["what", "value"], [[esc(k), prose(v)] for k, v in facts], id="facts")
            + "<h3>Scenarios</h3>" + table_html(scen_heads, [[prose(x) for x in r] for r in scen_rows])
            + f"<h3>Searches</h3><p>{prose(SEARCH_NOTES)}</p>"
            + table_html(cell_heads, [[prose(x) for x in r] for r in cell_rows], id="searches"))
    md = (table_markdown(["what", "value"], [[md_cell(k), md_cell(v)] for k, v in facts])
          + "\n### Scenarios\n\n" + table_markdown(scen_heads, [[md_cell(x) for x in r] for r in scen_rows])
          + f"\n### Searches\n\n{SEARCH_NOTES}\n\n"
          + table_markdown(cell_heads, [[md_cell(x) for x in r] for r in cell_rows]))
    return Section("searched", "What was searched", html, md)


DEFAULT_SECTIONS = [matrix_section, agreement_section, violations_section, replay_section, searched_section]
