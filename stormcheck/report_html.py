"""Rendering a report: one XHTML page and its Markdown twin.

The page is XHTML (every element closed, attributes quoted, only the XML
entities), so an XML parser checks it and a browser renders it as HTML5.
It is self-contained: the CSS is inline and every image is embedded as a
``data:`` URI, so the file can be mailed or opened offline. The Markdown
twin carries the same sections and tables and links the images written
under ``img/``.

Text from the engines is plain text in which a command or a name may be
quoted Markdown-style, in backticks; `prose` renders those as ``<code>`` (the
Markdown twin keeps them as they are), so no backtick shows on the page.

Section builders use the small helpers here (`esc`, `prose`, `table_html`,
`table_markdown`, `img_html`, `img_markdown`, `verdict_html`,
`figure_image`) so every section looks alike and stays well-formed.
"""

from __future__ import annotations

import base64
import io
import re
from html import escape
from typing import Iterable, Sequence

from .report_core import Image, ReportContext, Section

__all__ = [
    "esc",
    "prose",
    "verdict_html",
    "table_html",
    "table_markdown",
    "md_cell",
    "img_html",
    "trace_link_html",
    "img_markdown",
    "figure_image",
    "render_html",
    "render_markdown",
]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #212121; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #37474f; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #cfd8dc; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #cfd8dc; padding: .3em .5em; vertical-align: top; text-align: left; }
th { background: #eceff1; }
.verdict { font-weight: bold; white-space: nowrap; }
.holds { color: #1b5e20; background: #e8f5e9; }
.violated { color: #b71c1c; background: #ffebee; }
.inconclusive { color: #8d6e00; background: #fff8e1; }
.not-checked { color: #607d8b; background: #f5f5f5; font-weight: normal; font-style: italic; }
tr.group th { background: #cfd8dc; text-align: left; }
td.design, td.property { white-space: nowrap; }
code { font-size: .95em; background: #f1f3f4; padding: 0 .2em; }
img { max-width: 100%; height: auto; }
.basis { display: block; font-weight: normal; color: #546e7a; font-size: .85em; white-space: normal; }
.agree { color: #1b5e20; } .disagree { color: #b71c1c; font-weight: bold; }
pre { background: #fafafa; border: 1px solid #e0e0e0; padding: .6em; overflow-x: auto; font-size: .85em; }
.fatal { background: #ffebee; border-left: 4px solid #c62828; padding: .4em .8em; }
.msc { overflow-x: auto; border: 1px solid #e0e0e0; margin: .6em 0; }
.msc img { max-width: none; }
nav ol { columns: 2; }
footer { margin-top: 3em; color: #78909c; font-size: .85em; }
"""


def esc(text: object) -> str:
    """`text` as XHTML character data or attribute value."""
    return escape(str(text), quote=True)


def prose(text: object) -> str:
    """`text` as XHTML character data, with each `backticked` span set as ``<code>``."""
    parts = re.split(r"`([^`\n]+)`", str(text))
    return "".join(f"<code>{esc(p)}</code>" if i % 2 else esc(p) for i, p in enumerate(parts))


def verdict_html(verdict: object, basis: str = "", attrs: str = "") -> str:
    """A verdict as a coloured cell body, with the basis under it.

    `verdict` is a `Verdict` or ``"not checked"`` (the engine does not check
    the property); `attrs` are extra attributes for the verdict's span.
    """
    v = str(verdict)
    cls = v.replace(" ", "-")
    shown = "not checked by this engine" if v == "not checked" else v
    below = f'<span class="basis">{prose(basis)}</span>' if basis else ""
    return f'<span class="verdict {esc(cls)}" data-verdict="{esc(v)}"{attrs}>{esc(shown)}</span>{below}'


def table_html(headers: Sequence[str], rows: Iterable[Sequence[str]], *, id: str = "", cls: str = "") -> str:
    """A table; `headers` are text, each row's cells are XHTML fragments.

    A cell given as ``(fragment, css_class)`` gets that class on its ``td``.
    A row given as a plain string is a group heading: one ``th`` across
    the table.
    """
    attrs = (f' id="{esc(id)}"' if id else "") + (f' class="{esc(cls)}"' if cls else "")
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        if isinstance(row, str):
            body.append(f'<tr class="group"><th colspan="{len(headers)}">{row}</th></tr>')
            continue
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                cells.append(f'<td class="{esc(cell[1])}">{cell[0]}</td>')
            else:
                cells.append(f"<td>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def md_cell(text: object) -> str:
    """`text` made safe for one Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_markdown(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown (GFM) table; cells are Markdown text (use `md_cell` on plain text)."""
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def img_html(image: Image) -> str:
    """`image` embedded in the page as a ``data:`` URI."""
    data = base64.b64encode(image.data).decode("ascii")
    return f'<img src="data:{esc(image.mime)};base64,{data}" alt="{esc(image.alt)}"/>'


def trace_link_html(ctx: ReportContext, path: str, text: str) -> str:
    """A link that downloads the trace written at `path` (relative to the report folder), embedded in the page.

    Traces are small (tens of kB) and a page is mailed or attached on its
    own far more often than its folder: an embedded trace still downloads
    then, where a relative link would be dead. ``data-path`` keeps the
    trace's place in the folder, where the Markdown twin links it.
    """
    data = base64.b64encode((ctx.folder / path).read_bytes()).decode("ascii")
    name = path.rsplit("/", 1)[-1]
    return (f'<a class="trace" href="data:application/json;base64,{data}" download="{esc(name)}" '
            f'data-path="{esc(path)}" title="{esc(name)}: embedded in this page">{esc(text)}</a>')


def img_markdown(image: Image) -> str:
    """A Markdown link to `image` as written under ``img/``."""
    alt = image.alt.replace("[", "(").replace("]", ")")
    return f"![{alt}](img/{image.name})"


def figure_image(fig, name: str, alt: str) -> Image:
    """A matplotlib figure as a PNG `Image` (the figure is closed).

    For sections that plot (a safe region, storm time series). Use the
    ``Agg`` backend (``matplotlib.use("Agg")``): a report is built without
    a display.
    """
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Image(name, buf.getvalue(), "image/png", alt)


def _title(ctx: ReportContext) -> str:
    names = ", ".join(s.name for s in ctx.scenarios)
    return f"stormcheck design review: {names}"


def render_html(ctx: ReportContext, sections: Sequence[Section]) -> str:
    """The whole page: title, contents, every section, footer."""
    title = _title(ctx)
    toc = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{s.html}</section>' for s in sections)
    when = ctx.started.strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">'
        f'<head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{esc(title)}</h1><nav><ol>{toc}</ol></nav>{body}"
        f"<footer>stormcheck {esc(ctx.version)}, built {esc(when)}. "
        f"The same report in Markdown: report.md, beside this page in the report folder (it links the files "
        f"under img/ and traces/, so it needs the folder; this page needs nothing else).</footer>"
        "</body></html>\n"
    )


def render_markdown(ctx: ReportContext, sections: Sequence[Section]) -> str:
    """The Markdown twin: the same sections in the same order."""
    parts = [f"# {_title(ctx)}\n"]
    parts += [f"{i}. [{s.title}](#{s.key})" for i, s in enumerate(sections, start=1)]
    parts.append("")
    for s in sections:
        parts.append(f'<a id="{s.key}"></a>\n\n## {s.title}\n\n{s.markdown.rstrip()}\n')
    when = ctx.started.strftime("%Y-%m-%d %H:%M %Z")
    parts.append(f"---\nstormcheck {ctx.version}, built {when}.\n")
    return "\n".join(parts)
