"""A run as a timeline a person reads in a minute.

One line per meaningful event, prefixed with the clock (``t=  82s``):
handshakes, refreshes, replies, load changes, faults and recoveries, dropped
sockets, GC rounds and reaps. Ticks are not shown: their effect is the clock.
Whenever a server's T/I changes, a ``T/I:`` line shows every server's. A reap
of a *valid* client (`stormcheck.model.fleet.is_valid` on the state before the
step) is marked ``VIOLATION`` and explained: the reaper path, the age it saw,
the cutoff arithmetic, why the client was valid and why the cutoff was wrong.
The timeline ends with each server's T/I at the final state.

Output depends on nothing but the run and the parameters, and no line is
longer than `WIDTH` characters.
"""

from __future__ import annotations

import textwrap
from typing import Any

from stormcheck.model.events import (
    Adjusted,
    Dropped,
    Fault,
    Handshake,
    Reaped,
    Recovered,
    Refreshed,
    Refused,
    Replied,
    Swept,
)
from stormcheck.model.fleet import cutoff_text, is_valid, reply_level
from stormcheck.model.params import Params
from stormcheck.model.state import CRASHED, CUT, HELD, RETRY, WAITING, Action, State

from .run import Run

__all__ = ["render_timeline", "WIDTH"]

WIDTH = 100
_WHAT = {"both": "advice and reaper", "advice": "advice only", "reaper": "reaper only"}


def _clock(now: int) -> str:
    return f"t={now:4d}s  "


class _Out:
    """Collects lines, wrapping each at WIDTH under its clock prefix."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, now: int | None, text: str, indent: int = 0) -> None:
        prefix = _clock(now) if now is not None else ""
        first = prefix + " " * indent
        rest = " " * (len(first) + 2)
        self.lines.extend(textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest) or [first])

    def plain(self, text: str) -> None:
        self.lines.extend(textwrap.wrap(text, WIDTH, subsequent_indent="  ") or [""])


def _ti(params: Params, level: int) -> str:
    lvl = params.levels[level]
    return f"T={lvl.timeout} I={lvl.interval}"


def _tuning(params: Params, state: State) -> str:
    """Every server's advised T/I, and its reaper's T where that differs."""
    parts = []
    for s, srv in enumerate(state.servers):
        adv, reap = params.levels[srv.adv], params.levels[srv.reap]
        text = f"s{s} {adv.timeout}/{adv.interval}"
        if srv.reap != srv.adv:
            text += f" (reaper T={reap.timeout})"
        parts.append(text)
    return "T/I: " + "  ".join(parts)


def _tuning_key(state: State) -> tuple:
    return tuple((srv.adv, srv.reap) for srv in state.servers)


class _History:
    """What the timeline needs to remember: when each client was last served."""

    def __init__(self) -> None:
        self.held: dict[int, tuple[int, int, int]] = {}  # client -> (server, hold, set at)
        self.answered: dict[int, tuple[int, int, int, int]] = {}  # client -> (server, T, I, at)
        self.dropped: dict[int, tuple[str, int]] = {}  # client -> (reason, at)

    def note(self, now: int, ev: Any) -> None:
        if isinstance(ev, Refreshed):
            self.held[ev.client] = (ev.server, ev.hold, now)
        elif isinstance(ev, Handshake):
            self.held[ev.client] = (ev.server, ev.timeout, now)
        elif isinstance(ev, Replied):
            self.answered[ev.client] = (ev.server, ev.timeout, ev.interval, now)
        elif isinstance(ev, Dropped):
            self.dropped[ev.client] = (ev.reason, now)


# ---------------------------------------------------------------- one event


def _event_text(params: Params, action: Action, ev: Any) -> str:
    if isinstance(ev, Handshake):
        return f"c{ev.client} re-handshakes on s{ev.server} (new id, re-subscribes); advised T={ev.timeout} I={ev.interval}"
    if isinstance(ev, Refreshed):
        return f"s{ev.server} refreshes c{ev.client} (age {ev.age}s) and holds its connect for {ev.hold}s"
    if isinstance(ev, Replied):
        wait = ev.interval + max(action.value, 0)
        return f"s{ev.server} answers c{ev.client}: T={ev.timeout} I={ev.interval}; next connect in {wait}s"
    if isinstance(ev, Refused):
        return f"s{ev.server} refuses c{ev.client}'s connect: 401 unknown client (advice: handshake)"
    if isinstance(ev, Adjusted):
        return _adjusted_text(params, action, ev)
    if isinstance(ev, Fault):
        if ev.kind == "server-loss":
            return f"FAULT s{ev.who} loses connectivity for {ev.duration}s"
        if ev.kind == "client-crash":
            return f"FAULT c{ev.who} crashes (gone for good; its session lingers)"
        return f"FAULT c{ev.who}'s network is cut off for {ev.duration}s"
    if isinstance(ev, Recovered):
        if ev.kind == "server-loss":
            return f"s{ev.who} is reachable again"
        return f"c{ev.who}'s network is back"
    if isinstance(ev, Dropped):
        if ev.server < 0:
            return f"c{ev.client} finds no server reachable; retries in {ev.retry_in}s"
        return f"c{ev.client}'s socket on s{ev.server} closes ({ev.reason}); retries in {ev.retry_in}s"
    if isinstance(ev, Swept):
        mult = cutoff_text(params.gc_mult)
        return f"GC round on s{ev.server} (lock winner): cutoff {mult} x {ev.timeout} = {ev.cutoff}"
    return str(ev)


def _adjusted_text(params: Params, action: Action, ev: Adjusted) -> str:
    what = f"T={ev.timeout} I={ev.interval} ({_WHAT.get(ev.what, ev.what)})"
    if ev.server < 0:
        how = "reapers first when raising, advice first when lowering" if params.design.tuner == "fleet-staged" else (
            f"every server within {params.design.propagation_delay}s")
        return f"fleet load {ev.load_ms} ms: target T={ev.timeout} I={ev.interval}, adopted {how}"
    if action.kind == "load" and action.server >= 0:
        return f"s{ev.server} load {ev.load_ms} ms: adjuster sets {what}"
    if action.kind == "load":
        return f"fleet load {ev.load_ms} ms: s{ev.server} sets {what}"
    if action.kind == "deadline":
        return f"propagation deadline: s{ev.server} adopts {what}"
    return f"s{ev.server} adopts the fleet's {what}"


def _reap_text(params: Params, pre: State, ev: Reaped, now: int) -> str:
    mult = params.gc_mult if ev.path == "gc" else params.publish_mult
    path = {"gc": "GC", "publish": "publish path", "existence": "existence check"}.get(ev.path, ev.path)
    cl = pre.clients[ev.client]
    if is_valid(pre, ev.client):
        who = f"valid c{ev.client}"
    else:
        who = f"c{ev.client} ({ {CRASHED: 'crashed', CUT: 'network cut off'}.get(cl.phase, cl.phase)})"
    text = f"s{ev.server} {path} reaps {who}: age {ev.age}s >= {cutoff_text(mult)} x {ev.timeout} = {ev.cutoff}"
    # The model reaps at the end of a tick (the worst case for the session);
    # say since when the age was past the cutoff. A saturated age tells nothing.
    crossed = -((-mult * ev.timeout).__floor__())  # ceil: ages are whole seconds
    if cl.session and cl.session.age < params.age_cap and ev.age > crossed:
        text += f" (past it since t={now - (ev.age - crossed)})"
    return text


# ---------------------------------------------------------------- violations


def _valid_because(params: Params, pre: State, c: int, now: int, hist: _History) -> str:
    cl = pre.clients[c]
    if cl.phase == HELD:
        s, hold, at = hist.held.get(c, (cl.server, cl.timer, None))
        since = f"hold {hold}s set at t={at}" if at is not None else f"{cl.timer}s of hold left"
        return f"s{cl.server} holds its connect until t={now + cl.timer} ({since})"
    if cl.phase == WAITING:
        ans = hist.answered.get(c)
        told = f"s{ans[0]} answered it at t={ans[3]} with T={ans[1]} I={ans[2]}; " if ans else ""
        return f"{told}its next connect is due at t={now + cl.timer}, on schedule"
    if cl.phase == RETRY:
        reason, at = hist.dropped.get(c, ("its socket dropped", None))
        when = f" at t={at}" if at is not None else ""
        return f"its socket closed{when} ({reason}); it retries at t={now + cl.timer} as told"
    return f"it is {cl.phase}"


def _advice_followed(params: Params, pre: State, c: int, hist: _History) -> tuple[str, int, int] | None:
    """(who, T, I) of the advice the client is following, if it has any."""
    cl = pre.clients[c]
    if cl.phase == HELD and cl.server >= 0:
        lvl = params.levels[reply_level(params, pre, c)]
        return f"s{cl.server}", lvl.timeout, lvl.interval
    if c in hist.answered:
        s, t, i, _ = hist.answered[c]
        return f"s{s}", t, i
    return None


def _wrong_because(params: Params, pre: State, ev: Reaped, hist: _History) -> str:
    cl = pre.clients[ev.client]
    if ev.judged_by == "session":
        when = "at handshake" if params.design.record == "handshake" else "at its last refresh"
        text = f"s{ev.server} judges by the T={ev.timeout} recorded with the session {when}"
    else:
        text = f"s{ev.server} judges by its own T={ev.timeout}"
    advice = _advice_followed(params, pre, ev.client, hist)
    if advice:
        text += f" while {advice[0]} advised T={advice[1]} I={advice[2]}"
    held = hist.held.get(ev.client)
    if cl.phase in (HELD, WAITING) and held and advice and held[1] != advice[1]:
        # A hold set under an older, longer T: the server's doing, not the client's.
        verb = "but holds" if cl.phase == HELD else "after holding"
        text += f" {verb} c{ev.client}'s connect for {held[1]}s (set at t={held[2]})"
    if cl.phase not in (HELD, WAITING) or not cl.session:
        return text
    # Ages as the reaper saw them (its own clock), like the cutoff.
    if cl.phase == HELD:
        interval = advice[2] if advice else 0
        due = ev.age + cl.timer + interval + params.rtt_max
        ends = f"in {cl.timer}s" if cl.timer else "now"
        how = f"the hold ends {ends}, then I={interval} + RTT<={params.rtt_max}"
    else:
        due = ev.age + cl.timer
        how = f"its connect arrives in {cl.timer}s" if cl.timer else "its connect arrives now"
    mult = params.gc_mult if ev.path == "gc" else params.publish_mult
    where = "past" if due > mult * ev.timeout else "right at"
    return text + f"; c{ev.client}'s next refresh comes at age <= {due}s ({how}), {where} the cutoff {ev.cutoff}"


def _violation(out: _Out, params: Params, pre: State, ev: Reaped, i: int, now: int, hist: _History) -> None:
    out.say(now, f"VIOLATION (step {i}): {_reap_text(params, pre, ev, now)}")
    out.say(None, f"c{ev.client} was valid: {_valid_because(params, pre, ev.client, now, hist)}", 9)
    out.say(None, f"the cutoff was wrong: {_wrong_because(params, pre, ev, hist)}", 9)


# ---------------------------------------------------------------- whole run


def _header(out: _Out, run: Run, params: Params, title: str, focus: Any) -> None:
    out.plain(f"== {title} ==" if title else "== stormcheck timeline ==")
    levels = "; ".join(f"{lv.avg_ms} ms -> T={lv.timeout} I={lv.interval}" for lv in params.levels)
    out.plain(
        f"fleet: {_count(params.servers, 'server')}, {_count(params.clients, 'client')},"
        f" design {params.design.name}; RTT {'/'.join(map(str, params.rtt))}s; retry {params.retry}s"
    )
    out.plain(f"adjuster levels: {levels}")
    if focus is not None:
        verdict = getattr(focus, "verdict", "")
        line = f"property {getattr(focus, 'name', focus)}"
        if getattr(focus, "modality", ""):
            line += f" ({focus.modality})"
        line += f": {verdict}" if verdict != "" else ""
        if getattr(focus, "basis", ""):
            line += f" - {focus.basis}"
        out.plain(line)
    out.plain(f"{len(run)} steps over {run.times()[-1]}s")
    out.plain("")


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _start(out: _Out, params: Params, state: State) -> None:
    for c, cl in enumerate(state.clients):
        where = f" by s{cl.server}" if cl.server >= 0 else ""
        out.say(0, f"start: c{c} {cl.phase}{where} ({cl.timer}s left)")
    out.say(0, _tuning(params, state))


def _final(out: _Out, params: Params, state: State, now: int) -> None:
    out.plain("")
    out.plain(f"final state at t={now}s:")
    pub, gc = cutoff_text(params.publish_mult), cutoff_text(params.gc_mult)
    header = f"  {'server':<8}{'advised':<16}{'reaper T':<10}{'publish cutoff':<16}{'GC cutoff':<11}status"
    out.plain(header)
    for s, srv in enumerate(state.servers):
        t = params.levels[srv.reap].timeout
        status = "up" if srv.down == 0 else ("back now" if srv.down < 0 else f"down {srv.down}s more")
        out.plain(
            f"  {'s' + str(s):<8}{_ti(params, srv.adv):<16}{t:<10}"
            f"{cutoff_text(params.publish_mult * t):<16}{cutoff_text(params.gc_mult * t):<11}{status}"
        )
    out.plain(f"  (publish/existence cutoff = {pub} x T, GC cutoff = {gc} x T)")
    for c, cl in enumerate(state.clients):
        where = f" on s{cl.server}" if cl.server >= 0 else ""
        sess = f"session age {cl.session.age}s" if cl.session else "no session"
        out.plain(f"  c{c}: {cl.phase}{where}, timer {cl.timer}s, {sess}")


def render_timeline(run: Run, params: Params, title: str = "", focus: Any = None) -> str:
    """Render `run` under `params` as plain text, one line per event.

    Parameters
    ----------
    run : Run
        The run to render (``run.loop`` is shown as the cycle it closes).
    params : Params
        The fleet it ran under: levels, multipliers and design for the text.
    title : str
        First line of the output.
    focus : PropertyResult-like or None
        When given, its ``name``, ``modality``, ``verdict`` and ``basis``
        are shown under the title.

    Returns
    -------
    str
        The timeline, ending with a newline; identical for identical input.
    """
    out = _Out()
    _header(out, run, params, title, focus)
    times = run.times()
    _start(out, params, run.initial)
    hist = _History()
    pre = run.initial
    for i, (action, st) in enumerate(run.steps, start=1):
        now = times[i]
        if run.loop is not None and i - 1 == run.loop:
            out.say(times[i - 1], f"-- the cycle starts here (state {run.loop}) --")
        for ev in st.events:
            if isinstance(ev, Reaped) and is_valid(pre, ev.client):
                _violation(out, params, pre, ev, i, now, hist)
            elif isinstance(ev, Reaped):
                out.say(now, _reap_text(params, pre, ev, now))
            else:
                out.say(now, _event_text(params, action, ev))
            hist.note(now, ev)
        if _tuning_key(st.state) != _tuning_key(pre):
            out.say(now, _tuning(params, st.state))
        pre = st.state
    if run.loop is not None:
        out.say(times[-1], f"-- the run returns to state {run.loop} (t={times[run.loop]}s) and repeats forever --")
    _final(out, params, pre, times[-1])
    return "\n".join(line.rstrip() for line in out.lines) + "\n"
