"""A run as a message-sequence diagram, drawn as SVG.

One vertical lane per client, per server and one for the shared session
store (the Redis every server reaps from). Time runs downwards, one row per
event of the run, labelled with the clock (ticks are not drawn: their effect
is the clock). Messages are arrows between lanes:

* handshake and connect: client -> server (a connect that refreshes the
  session also draws server -> store);
* reply and 401 refusal: server -> client; a closed socket: dashed;
* reap: server -> store, red and thick when the client was valid (the
  property's violation), grey when it was not (crashed or cut off: correct);
* GC rounds: server -> store.

Adjuster changes, faults and recoveries are notes on the lane they concern.
The rows of the fatal step (the run's last step, which the engines end on)
sit on a highlighted band; in a lasso (a run whose end returns to an earlier
state, as a liveness counterexample does) a dashed line marks where the
repeating part begins.

The SVG is plain XML with no external references (fonts are generic
families), so it can be inlined in an XHTML page or saved as a file.
"""

from __future__ import annotations

from html import escape
from typing import Any

from stormcheck.model.events import (
    Adjusted,
    Dropped,
    Fault,
    Handshake,
    QueueDropped,
    Reaped,
    Struck,
    Resumed,
    Recovered,
    Refreshed,
    Refused,
    Replied,
    Swept,
)
from stormcheck.model.fleet import is_valid
from stormcheck.model.params import Params
from stormcheck.traces.run import Run, session_ages, true_age

__all__ = ["sequence_diagram", "lanes"]

LANE_GAP = 150  # px between lane centres
LEFT = 90  # px for the clock column
TOP = 50  # px for the lane heads
ROW = 30  # px per event row
CHAR = 6.3  # px per character of the 11 px label font, for sizing notes

FATAL = "#c62828"
ARROW = "#37474f"
NOTE = "#fff8e1"


def lanes(params: Params) -> list[str]:
    """Lane names, left to right: clients, a proxy between them and the servers, servers, then a shared store.

    The store has a lane only where sessions live in one (`Heartbeat.store`
    "shared"): with sessions local to their socket, what a server records or
    reaps is drawn on its own lane.
    """
    proxy = ["proxy"] if any(j.side == "proxy" for j in params.judges) else []
    store = ["store"] if params.heartbeat.store != "local" else []
    return [f"c{c}" for c in range(params.clients)] + proxy + [f"s{s}" for s in range(params.servers)] + store


def _lane_title(params: Params, name: str) -> str:
    if name == "store":
        return "shared store"
    if name == "proxy":
        return next(j.name for j in params.judges if j.side == "proxy")
    return name


class _Canvas:
    """Collects SVG elements; every text goes through `escape`."""

    def __init__(self, names: list[str], uid: str) -> None:
        self.uid = uid  # prefixes marker ids: several diagrams may share one page
        self.shared = "store" in names  # sessions in a shared store, else each in its server
        self.x = {name: LEFT + LANE_GAP // 2 + i * LANE_GAP for i, name in enumerate(names)}
        self.width = LEFT + LANE_GAP * len(names)
        self.parts: list[str] = []

    def text(self, x: float, y: float, s: str, *, anchor: str = "middle", color: str = ARROW,
             weight: str = "normal", size: int = 11) -> None:
        self.parts.append(
            f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" font-size="{size}" fill="{color}" '
            f'font-weight="{weight}">{escape(s)}</text>'
        )

    def arrow(self, a: str, b: str, y: float, label: str, *, color: str = ARROW, dashed: bool = False,
              width: float = 1.2) -> None:
        x1, x2 = self.x[a], self.x[b]
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        marker = f"{self.uid}-{'fatal' if color == FATAL else 'head'}"
        self.parts.append(
            f'<line x1="{x1}" y1="{y:.0f}" x2="{x2}" y2="{y:.0f}" stroke="{color}" stroke-width="{width}"{dash} '
            f'marker-end="url(#{marker})"/>'
        )
        self.text((x1 + x2) / 2, y - 4, label, color=color, weight="bold" if color == FATAL else "normal")

    def to_store(self, server: str, y: float, label: str, **how) -> None:
        """What a server writes to or reaps from its sessions: an arrow to the shared store, or a note on itself."""
        if self.shared:
            self.arrow(server, "store", y, label, **how)
        else:
            self.note(server, y, label, color=how.get("color", ARROW))

    def fleet_lane(self) -> str:
        """Where a fleet-wide note goes: the shared store, else the first server."""
        return "store" if self.shared else next(n for n in self.x if n.startswith("s"))

    def note(self, lane: str, y: float, label: str, *, color: str = ARROW) -> None:
        w = len(label) * CHAR + 10
        x = self.x[lane] - w / 2
        self.parts.append(
            f'<rect x="{x:.0f}" y="{y - 13:.0f}" width="{w:.0f}" height="18" rx="3" fill="{NOTE}" '
            f'stroke="{color}" stroke-width="0.8"/>'
        )
        self.text(self.x[lane], y, label, color=color)


def _rows(run: Run, cap: int) -> list[tuple[int, int, Any, Any]]:
    """(step index, clock, event, state before the step) for every event, in order.

    Events carry the sessions' true ages, not the ages the model saturates at `cap`.
    """
    times, states, rows = run.times(), run.states, []
    ages = session_ages(run, cap)
    for i, (_, st) in enumerate(run.steps, start=1):
        rows.extend((i, times[i], true_age(states[i - 1], ages[i - 1], ev)[0], states[i - 1]) for ev in st.events)
    return rows


def _draw_event(cv: _Canvas, y: float, ev: Any, pre: Any, unit: str = "s") -> None:
    # A handshake or a refreshing connect also writes the session to the
    # store: drawn on the same row, since it is the same instant.
    if isinstance(ev, Handshake):
        cv.arrow(f"c{ev.client}", f"s{ev.server}", y, f"handshake: T={ev.timeout} I={ev.interval}")
        cv.to_store(f"s{ev.server}", y, f"new session c{ev.client}")
    elif isinstance(ev, Refreshed):
        cv.arrow(f"c{ev.client}", f"s{ev.server}", y, f"connect, held {ev.hold}{unit}")
        cv.to_store(f"s{ev.server}", y, f"refresh c{ev.client} (age {ev.age}{unit})")
    elif isinstance(ev, Replied):
        cv.arrow(f"s{ev.server}", f"c{ev.client}", y, f"reply: T={ev.timeout} I={ev.interval}")
    elif isinstance(ev, Refused):
        cv.arrow(f"s{ev.server}", f"c{ev.client}", y, "401 unknown client")
    elif isinstance(ev, Dropped):
        if ev.server < 0:
            cv.note(f"c{ev.client}", y, f"no server up; retry in {ev.retry_in}{unit}")
        else:
            cv.arrow(f"s{ev.server}", f"c{ev.client}", y, f"socket closed ({ev.reason})", dashed=True)
    elif isinstance(ev, Resumed):
        cv.arrow(f"c{ev.client}", f"s{ev.server}", y, f"reconnect, resumes its session ({ev.age}s after the close)")
    elif isinstance(ev, Reaped) and ev.path == "resume":
        valid = is_valid(pre, ev.client)
        label = f"session of {'valid ' if valid else ''}c{ev.client} expired: closed {ev.age}s ago >= {ev.cutoff}s"
        cv.to_store(f"s{ev.server}", y, label, color=FATAL if valid else "#9e9e9e", width=2.6 if valid else 1.2)
    elif isinstance(ev, Struck):
        cv.note(f"s{ev.server}", y, f"early ping c{ev.client}: {ev.spacing}s < {ev.min_spacing}s (strike {ev.strikes})")
    elif isinstance(ev, Reaped) and ev.path == "spacing":
        valid = is_valid(pre, ev.client)
        label = f"GOAWAY too_many_pings to {'valid ' if valid else ''}c{ev.client}: {ev.age}s < {ev.cutoff}s apart"
        cv.arrow(f"s{ev.server}", f"c{ev.client}", y, label, color=FATAL if valid else "#9e9e9e",
                 width=2.6 if valid else 1.2)
    elif isinstance(ev, Reaped) and ev.path in ("client", "proxy"):
        # A judge beside the servers': the client closes its own socket, or the proxy cuts the connection.
        valid = is_valid(pre, ev.client)
        who = "gives up" if ev.path == "client" else f"cuts {'valid ' if valid else ''}c{ev.client}"
        label = f"{who}: silent {ev.age}{unit} >= {ev.cutoff}{unit}"
        src, dst = (f"c{ev.client}", f"s{ev.server}") if ev.path == "client" else ("proxy", f"c{ev.client}")
        cv.arrow(src, dst, y, label, color=FATAL if valid else "#9e9e9e", width=2.6 if valid else 1.2)
    elif isinstance(ev, Reaped):
        valid = is_valid(pre, ev.client)
        label = f"reap {'valid ' if valid else ''}c{ev.client} ({ev.path}): age {ev.age}{unit} >= {ev.cutoff}"
        color = FATAL if valid else "#9e9e9e"
        if cv.shared:
            cv.arrow(f"s{ev.server}", "store", y, label, color=color, width=2.6 if valid else 1.2)
        else:  # the server's own liveness timer closes the socket it holds
            cv.arrow(f"s{ev.server}", f"c{ev.client}", y, label, color=color, width=2.6 if valid else 1.2)
    elif isinstance(ev, QueueDropped):
        valid = is_valid(pre, ev.client) and ev.lost
        fate = "message lost" if ev.lost else f"s{ev.holder} flushed it first"
        label = (f"drop queue of {'valid ' if valid else ''}c{ev.client} (publish): age {ev.age}{unit} >= {ev.cutoff}; "
                 f"{fate}")
        cv.to_store(f"s{ev.server}", y, label, color=FATAL if valid else "#9e9e9e", width=2.6 if valid else 1.2)
    elif isinstance(ev, Swept):
        cv.to_store(f"s{ev.server}", y, f"GC round: cutoff {ev.cutoff}")
    elif isinstance(ev, Adjusted):
        lane = f"s{ev.server}" if ev.server >= 0 else cv.fleet_lane()
        what = {"both": "advice+reaper", "advice": "advice", "reaper": "reaper"}.get(ev.what, ev.what)
        if ev.server < 0:
            cv.note(lane, y, f"fleet target T={ev.timeout} I={ev.interval}")
        else:
            cv.note(lane, y, f"T={ev.timeout} I={ev.interval} ({what})")
    elif isinstance(ev, Fault):
        lane = f"s{ev.who}" if ev.kind == "server-loss" else f"c{ev.who}"
        what = {"server-loss": f"down {ev.duration}{unit}", "client-crash": "crashed",
                "client-cut": f"cut {ev.duration}{unit}"}
        cv.note(lane, y, f"FAULT: {what.get(ev.kind, ev.kind)}", color=FATAL)
    elif isinstance(ev, Recovered):
        lane = f"s{ev.who}" if ev.kind == "server-loss" else f"c{ev.who}"
        cv.note(lane, y, "back")
    else:  # an event kind this diagram does not know yet: still shown, as text
        cv.text(cv.width / 2, y, str(ev))


def sequence_diagram(run: Run, params: Params, *, fatal: int | None = None, title: str = "", uid: str = "msc") -> str:
    """Draw `run` under `params` as an SVG message-sequence diagram.

    Parameters
    ----------
    run : Run
        The run; its events are what is drawn.
    params : Params
        The fleet: how many client and server lanes, and the unit of its times.
    fatal : int, optional
        The step (1-based, as in the timeline's "VIOLATION (step 12)") to
        highlight; default the last step.
    title : str
        The diagram's accessible title.
    uid : str
        Prefix of the diagram's element ids, unique per page (letters,
        digits and dashes).

    Returns
    -------
    str
        A standalone ``<svg>`` element (SVG namespace declared).
    """
    fatal = len(run) if fatal is None else fatal
    names = lanes(params)
    cv = _Canvas(names, uid)
    rows = _rows(run, params.age_cap)
    height = TOP + ROW * (len(rows) + 1)
    band = [k for k, (i, *_rest) in enumerate(rows) if i == fatal]
    if band:
        y0 = TOP + ROW * band[0] + 4
        cv.parts.append(f'<rect x="0" y="{y0}" width="{cv.width}" height="{ROW * len(band)}" fill="#ffebee"/>')
        cv.text(4, y0 + 12, f"step {fatal}", anchor="start", color=FATAL, weight="bold", size=10)
    for name, x in cv.x.items():
        cv.parts.append(f'<line x1="{x}" y1="{TOP - 12}" x2="{x}" y2="{height}" stroke="#b0bec5" '
                        f'stroke-dasharray="2,3"/>')
        w = 96 if name == "store" else 60
        cv.parts.append(f'<rect x="{x - w // 2}" y="8" width="{w}" height="26" rx="4" fill="#eceff1" '
                        f'stroke="{ARROW}"/>')
        cv.text(x, 26, _lane_title(params, name), weight="bold", size=12)
    if run.loop is not None:  # a lasso: the steps after state `loop` repeat forever
        first = next((k for k, (i, *_rest) in enumerate(rows) if i > run.loop), len(rows))
        y = TOP + ROW * first + 8
        cv.parts.append(f'<line x1="0" y1="{y}" x2="{cv.width}" y2="{y}" stroke="{FATAL}" stroke-dasharray="8,4"/>')
        cv.text(cv.width - 4, y - 3, f"from here the run repeats forever (back to state {run.loop})",
                anchor="end", color=FATAL, size=10)
    last_time = None
    for k, (i, now, ev, pre) in enumerate(rows):
        y = TOP + ROW * (k + 1)
        if now != last_time:
            cv.text(LEFT - 8, y, f"t={now}{params.unit}", anchor="end")
            last_time = now
        _draw_event(cv, y, ev, pre, params.unit)
    defs = (
        '<defs>'
        f'<marker id="{uid}-head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto" '
        'markerUnits="userSpaceOnUse">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{ARROW}"/></marker>'
        f'<marker id="{uid}-fatal" markerWidth="10" markerHeight="10" refX="9" refY="5" orient="auto" '
        'markerUnits="userSpaceOnUse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{FATAL}"/></marker>'
        '</defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{cv.width}" height="{height}" '
        f'viewBox="0 0 {cv.width} {height}" font-family="sans-serif" role="img">'
        f'<title>{escape(title or "message-sequence diagram")}</title>'
        f'<rect x="0" y="0" width="{cv.width}" height="{height}" fill="#ffffff"/>'
        + defs + "".join(cv.parts) + "</svg>"
    )
