"""A run as a timeline a person reads in a minute.

One line per meaningful event, prefixed with the clock (``t=  82s``; in a
fleet that counts milliseconds, ``t= 300002ms``, and every other time of the
timeline is in milliseconds too):
handshakes, refreshes, replies, load changes, faults and recoveries, dropped
sockets, GC rounds and reaps. Ticks are not shown: their effect is the clock.
Whenever a server's T/I changes, a ``T/I:`` line shows every server's. A reap
of a *valid* client (`stormcheck.model.fleet.is_valid` on the state before the
step) is marked ``VIOLATION`` and explained: the reaper path, the age it saw,
the cutoff arithmetic, why the client was valid and why the cutoff was wrong.
The timeline ends with each server's T/I at the final state.

Stacks other than Faye (`Heartbeat`) are told in their own words: heartbeats
instead of held connects, a liveness timer instead of GC rounds. During a
configuration rollout a ``configs:`` line shows, whenever it changes, which
configuration (A or B, with its T/I) every server's advice and judge and every
client runs: a mixed fleet is where the parameters diverge.

Output depends on nothing but the run and the parameters, and no line is
longer than `WIDTH` characters.
"""

from __future__ import annotations

import textwrap
from typing import Any

from fractions import Fraction

from stormcheck import count
from stormcheck.model.events import (
    Adjusted,
    Began,
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
    Restarted,
    Reconfigured,
    Swept,
    Upgraded,
)
from stormcheck.model.fleet import cutoff_text, is_valid, reply_level
from stormcheck.model.rollout import CONFIG_NAMES, describe_phases
from stormcheck.model.params import Params
from stormcheck.model.state import CRASHED, CUT, HELD, REJOIN, RETRY, WAITING, Action, State

from .run import Run, session_ages, true_age

__all__ = ["render_timeline", "clock", "WIDTH", "cutoff_expr", "reap_text", "level_text", "server_status"]

WIDTH = 100
_WHAT = {"both": "advice and reaper", "advice": "advice only", "reaper": "reaper only"}


def clock(now: int, unit: str = "s") -> str:
    """The clock prefix of a timeline line: ``t=  82s  `` (``t= 300002ms  `` in milliseconds)."""
    return f"t={now:{4 if unit == 's' else 7}d}{unit}  "


class _Out:
    """Collects lines, wrapping each at WIDTH under its clock prefix (times in `unit`)."""

    def __init__(self, unit: str = "s") -> None:
        self.lines: list[str] = []
        self.unit = unit

    def say(self, now: int | None, text: str, indent: int = 0) -> None:
        prefix = clock(now, self.unit) if now is not None else ""
        first = prefix + " " * indent
        rest = " " * (len(first) + 2)
        self.lines.extend(textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest) or [first])

    def plain(self, text: str) -> None:
        self.lines.extend(textwrap.wrap(text, WIDTH, subsequent_indent="  ") or [""])


def level_text(params: Params, level: int) -> str:
    """A load level as its advice, ``T=45 I=1``."""
    lvl = params.levels[level]
    return f"T={lvl.timeout} I={lvl.interval}"


def server_status(srv, unit: str) -> str:
    """Whether a server is up, back (its loss over, the restore due) or down, and for how long."""
    return "up" if srv.down == 0 else ("back now" if srv.down < 0 else f"down {srv.down}{unit} more")


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


def _config(params: Params, level: int) -> str:
    lvl = params.levels[level]
    return f"{CONFIG_NAMES[level]} ({lvl.timeout}/{lvl.interval})"


def _configs(params: Params, state: State) -> str:
    """Which configuration each server (advice, judge) and each client runs, in a rollout."""
    parts = []
    for s, srv in enumerate(state.servers):
        text = f"s{s} {_config(params, srv.adv)}"
        if srv.reap != srv.adv:
            text += f" judge {CONFIG_NAMES[srv.reap]}"
        parts.append(text)
    if params.heartbeat.client_owned:
        for c, cl in enumerate(state.clients):
            parts.append(f"c{c} {CONFIG_NAMES[cl.session.hs_level]}" if cl.session else f"c{c} -")
    return "configs (T/I): " + "  ".join(parts)


def _configs_key(params: Params, state: State) -> tuple:
    clients = tuple(cl.session.hs_level if cl.session else -1 for cl in state.clients)
    return _tuning_key(state), clients if params.heartbeat.client_owned else ()


def _faye(params: Params) -> bool:
    return params.heartbeat.faye


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
    if not _faye(params):
        text = _stack_event_text(params, action, ev)
        if text is not None:
            return text
    if isinstance(ev, Began):
        return f"ROLLOUT phase {ev.phase} begins: {ev.label}"
    if isinstance(ev, Restarted):
        what = {"both": "", "judge": " (judge only)", "advice": " (advice only)"}.get(ev.what, f" ({ev.what})")
        down = f"; unreachable for {ev.down}{params.unit}" if ev.down else ""
        return f"s{ev.server} restarts into {_config(params, ev.level)}{what}{down}"
    if isinstance(ev, Reconfigured):
        what = {"both": "", "judge": " (judge only)", "advice": " (advice only)"}.get(ev.what, f" ({ev.what})")
        return f"s{ev.server} takes {_config(params, ev.level)}{what} live, without a restart (no socket drops)"
    if isinstance(ev, Upgraded):
        how = {"release": "the client release", "advice": "the advice of its reply",
               "reconnect": "its reconnect"}.get(ev.how, ev.how)
        return f"c{ev.client} now runs {_config(params, ev.level)}, by {how}"
    if isinstance(ev, Handshake):
        return f"c{ev.client} re-handshakes on s{ev.server} (new id, re-subscribes); advised T={ev.timeout} I={ev.interval}"
    if isinstance(ev, Refreshed):
        u = params.unit
        return f"s{ev.server} refreshes c{ev.client} (age {ev.age}{u}) and holds its connect for {ev.hold}{u}"
    if isinstance(ev, Replied):
        wait = ev.interval + max(action.value, 0)
        return f"s{ev.server} answers c{ev.client}: T={ev.timeout} I={ev.interval}; next connect in {wait}{params.unit}"
    if isinstance(ev, Refused):
        return f"s{ev.server} refuses c{ev.client}'s connect: 401 unknown client (advice: handshake)"
    if isinstance(ev, Adjusted):
        return _adjusted_text(params, action, ev)
    if isinstance(ev, Fault):
        if ev.kind == "server-loss":
            return f"FAULT s{ev.who} loses connectivity for {ev.duration}{params.unit}"
        if ev.kind == "client-crash":
            return f"FAULT c{ev.who} crashes (gone for good; its session lingers)"
        return f"FAULT c{ev.who}'s network is cut off for {ev.duration}{params.unit}"
    if isinstance(ev, Recovered):
        if ev.kind == "server-loss":
            return f"s{ev.who} is reachable again"
        return f"c{ev.who}'s network is back"
    if isinstance(ev, Dropped):
        if ev.server < 0:
            return f"c{ev.client} finds no server reachable; retries in {ev.retry_in}{params.unit}"
        return f"c{ev.client}'s socket on s{ev.server} closes ({ev.reason}); retries in {ev.retry_in}{params.unit}"
    if isinstance(ev, Resumed):
        return (f"c{ev.client} reconnects to s{ev.server} {ev.age}{params.unit} after its socket closed and resumes its "
                f"session (within the {params.heartbeat.resume_window}{params.unit} window)")
    if isinstance(ev, Struck):
        return (f"s{ev.server} counts c{ev.client}'s heartbeat as early: {ev.spacing}{params.unit} after the previous one "
                f"< the minimum {ev.min_spacing}{params.unit} (strike {ev.strikes}; {params.heartbeat.strikes} tolerated)")
    if isinstance(ev, Swept):
        mult = cutoff_text(params.gc_mult)
        return f"GC round on s{ev.server} (lock winner): cutoff {mult} x {ev.timeout} = {ev.cutoff}"
    return str(ev)


def _stack_event_text(params: Params, action: Action, ev: Any) -> str | None:
    """Events whose Faye wording would mislead for another stack (None: the common wording)."""
    hb = params.heartbeat
    if isinstance(ev, Handshake):
        return f"c{ev.client} connects to s{ev.server} (new session)"
    if isinstance(ev, Refreshed) and hb.hold == "none":
        return f"s{ev.server} gets c{ev.client}'s heartbeat (age {ev.age}{params.unit})"
    if isinstance(ev, Replied) and hb.hold == "none":
        wait = ev.interval + max(action.value, 0)
        return (f"c{ev.client}'s heartbeat is answered (I={ev.interval}); the next one reaches s{ev.server} in "
                f"{wait}{params.unit}")
    if isinstance(ev, Swept):
        if hb.cutoff_from == "client":
            return f"the liveness check of s{ev.server}'s sockets runs (each by its client's cutoff)"
        return f"s{ev.server}'s liveness timer checks its sockets: cutoff {ev.cutoff}{params.unit} of silence"
    return None


def _adjusted_text(params: Params, action: Action, ev: Adjusted) -> str:
    what = f"T={ev.timeout} I={ev.interval} ({_WHAT.get(ev.what, ev.what)})"
    if ev.server < 0:
        how = "reapers first when raising, advice first when lowering" if params.design.tuner == "fleet-staged" else (
            f"every server within {params.design.propagation_delay}{params.unit}")
        return f"fleet load {ev.load_ms} ms: target T={ev.timeout} I={ev.interval}, adopted {how}"
    if action.kind == "load" and action.server >= 0:
        return f"s{ev.server} load {ev.load_ms} ms: adjuster sets {what}"
    if action.kind == "load":
        return f"fleet load {ev.load_ms} ms: s{ev.server} sets {what}"
    if action.kind == "deadline":
        return f"propagation deadline: s{ev.server} adopts {what}"
    return f"s{ev.server} adopts the fleet's {what}"


def cutoff_expr(params: Params, ev: Reaped) -> str:
    """``1.6 x 45 = 72``, or with an interval term ``1 x 5 + 1 x 25 = 30``."""
    if ev.judged_by == "proxy":
        return f"idle timeout {ev.cutoff}"
    mult = params.gc_mult if ev.path == "gc" else params.publish_mult
    k = params.heartbeat.interval_multiplier
    if ev.judged_by == "handshake":
        judge = next(j for j in params.judges if j.side == ev.path)
        mult, k = judge.multiplier, judge.interval_multiplier
    if k == 0:
        return f"{cutoff_text(mult)} x {ev.timeout} = {ev.cutoff}"
    interval = Fraction(ev.cutoff) - mult * ev.timeout  # the judged level's k x I
    return f"{cutoff_text(mult)} x {ev.timeout} + {cutoff_text(k)} x {cutoff_text(interval / k)} = {ev.cutoff}"


def reap_text(params: Params, pre: State, ev: Reaped, now: int, exact: bool = True) -> str:
    path = {"gc": "GC", "publish": "publish path", "existence": "existence check"}.get(ev.path, ev.path)
    if not _faye(params):
        path = "liveness timer" if ev.judged_by != "client" else "client-side liveness check"
    cl = pre.clients[ev.client]
    crossed = -((-Fraction(ev.cutoff)).__floor__())  # ceil: ages are whole time units
    since = f" (past it since t={now - (ev.age - crossed)})" if exact and ev.age > crossed else ""
    age = f"{ev.age}{params.unit}" if exact else f">= {ev.age}{params.unit} (past the age cap when the run began)"
    if ev.path == "resume":
        who = f"valid c{ev.client}" if is_valid(pre, ev.client) else f"c{ev.client} ({cl.phase})"
        return (f"s{ev.server} finds {who}'s session expired: its socket closed {ev.age}{params.unit} ago >= the resume "
                f"window {ev.cutoff}{params.unit}; the session, its subscriptions and what was queued for it are gone")
    if ev.path == "spacing":
        who = f"valid c{ev.client}" if is_valid(pre, ev.client) else f"c{ev.client} ({cl.phase})"
        return (f"s{ev.server} closes {who}'s connection (GOAWAY too_many_pings): heartbeat {ev.age}{params.unit} after the "
                f"previous one < the minimum {ev.cutoff}{params.unit}, strike {params.heartbeat.strikes + 1} > "
                f"{params.heartbeat.strikes} tolerated")
    if ev.path in ("client", "proxy"):
        who = f"valid c{ev.client}" if is_valid(pre, ev.client) else f"c{ev.client} ({cl.phase})"
        judge = next(j for j in params.judges if j.side == ev.path)
        if ev.path == "client":
            return (f"{who} gives up on s{ev.server} (its own check, by its handshake's values): "
                    f"silence {age} >= {cutoff_expr(params, ev)}{since}")
        return (f"proxy {judge.name} cuts {who}'s connection to s{ev.server}: "
                f"idle {age} >= {cutoff_expr(params, ev)}{since}")
    if is_valid(pre, ev.client):
        who = f"valid c{ev.client}"
    else:
        who = f"c{ev.client} ({ {CRASHED: 'crashed', CUT: 'network cut off'}.get(cl.phase, cl.phase)})"
    text = f"s{ev.server} {path} reaps {who}: age {age} >= {cutoff_expr(params, ev)}"
    # The model reaps at the end of a tick (the worst case for the session);
    # say since when the age was past the cutoff.
    return text + since


# ---------------------------------------------------------------- violations


def _valid_because(params: Params, pre: State, c: int, now: int, hist: _History) -> str:
    cl = pre.clients[c]
    if cl.phase == HELD:
        s, hold, at = hist.held.get(c, (cl.server, cl.timer, None))
        since = f"hold {hold}{params.unit} set at t={at}" if at is not None else f"{cl.timer}{params.unit} of hold left"
        return f"s{cl.server} holds its connect until t={now + cl.timer} ({since})"
    if cl.phase == WAITING:
        ans = hist.answered.get(c)
        told = f"s{ans[0]} answered it at t={ans[3]} with T={ans[1]} I={ans[2]}; " if ans else ""
        word = "connect" if params.heartbeat.hold == "timeout" else "heartbeat"
        return f"{told}its next {word} is due at t={now + cl.timer}, on schedule"
    if cl.phase == REJOIN:
        return f"it was refused with 401 and re-handshakes at t={now + cl.timer}, after the advised interval"
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
    if ev.path == "resume":
        return (f"the session outlives its socket by {ev.cutoff}{params.unit} only, while c{ev.client}'s reconnect "
                f"comes {params.retry}{params.unit} + RTT {_choices(params.rtt)}{params.unit} after the close")
    if ev.path == "spacing":
        own = params.levels[cl.session.hs_level].interval if cl.session else "?"
        return (f"s{ev.server} wants heartbeats at least {ev.cutoff}{params.unit} apart while c{ev.client} runs "
                f"its own I={own} (+ RTT {_choices(params.rtt)}{params.unit}): every one that lands sooner is a strike")
    if ev.path in ("client", "proxy") and cl.server >= 0:
        every = params.levels[reply_level(params, pre, ev.client)].interval
        if ev.path == "client":
            return (f"c{ev.client} judges by what its handshake told it (T={ev.timeout}) while s{cl.server} "
                    f"now sends beats every I={every}")
        return f"the proxy's idle timeout {ev.cutoff}{params.unit} is shorter than the heartbeat period I={every} + RTT"
    if ev.judged_by == "client":
        text = f"the check judges by c{ev.client}'s own T={ev.timeout}"
    elif ev.judged_by == "session":
        when = "at handshake" if params.design.record == "handshake" else "at its last refresh"
        text = f"s{ev.server} judges by the T={ev.timeout} recorded with the session {when}"
    else:
        text = f"s{ev.server} judges by its own T={ev.timeout}"
    advice = _advice_followed(params, pre, ev.client, hist)
    hb = params.heartbeat
    if advice and not hb.faye and cl.phase == HELD:
        # Ping style: the interval the client waits next, whoever sets it.
        advice = (advice[0], advice[1], params.levels[reply_level(params, pre, ev.client)].interval)
    if advice and hb.interval_from == "client" and cl.session:
        text += f" while c{ev.client} runs its own I={params.levels[cl.session.hs_level].interval}"
    elif advice and hb.cutoff_from == "client" and cl.server >= 0:
        text += f" while s{cl.server} sends beats every I={params.levels[pre.servers[cl.server].adv].interval}"
    elif advice:
        text += f" while {advice[0]} advised T={advice[1]} I={advice[2]}"
    held = hist.held.get(ev.client)
    if cl.phase in (HELD, WAITING) and held and advice and held[1] != advice[1] and hb.hold == "timeout":
        # A hold set under an older, longer T: the server's doing, not the client's.
        verb = "but holds" if cl.phase == HELD else "after holding"
        text += f" {verb} c{ev.client}'s connect for {held[1]}{params.unit} (set at t={held[2]})"
    if cl.phase not in (HELD, WAITING) or not cl.session:
        return text
    # Ages as the reaper saw them (its own clock), like the cutoff.
    if cl.phase == HELD:
        interval = advice[2] if advice else 0
        due = ev.age + cl.timer + interval + params.rtt_max
        ends = f"in {cl.timer}{params.unit}" if cl.timer else "now"
        how = f"the hold ends {ends}, then I={interval} + RTT<={params.rtt_max}"
    else:
        due = ev.age + cl.timer
        word = "connect" if params.heartbeat.hold == "timeout" else "heartbeat"
        how = f"its {word} arrives in {cl.timer}{params.unit}" if cl.timer else f"its {word} arrives now"
    where = "past" if due > Fraction(ev.cutoff) else "right at"
    return text + (f"; c{ev.client}'s next refresh comes at age <= {due}{params.unit} ({how}), {where} the cutoff "
                   f"{ev.cutoff}")


def _as_reap(ev: QueueDropped) -> Reaped:
    # The published engine's publish path judges as the fork's does; only
    # what it does to the subscriber differs.
    return Reaped(ev.client, ev.server, "publish", ev.age, ev.timeout, ev.cutoff, ev.judged_by)


def _queue_text(params: Params, pre: State, ev: QueueDropped, now: int, exact: bool = True) -> str:
    text = reap_text(params, pre, _as_reap(ev), now, exact).replace(" reaps ", " drops the message queue of ", 1)
    if not ev.lost:
        return text + f"; s{ev.holder} had flushed the queue down c{ev.client}'s socket first: the message was delivered"
    if ev.holder >= 0:
        return text + (f"; the session survives, the message is lost: the delete came before s{ev.holder}, "
                       f"which holds c{ev.client}'s socket, flushed the queue (a race it loses when it lags)")
    return text + "; the session survives, the message is lost"


def _lost(pre: State, ev: Any) -> bool:
    """A step event that `no_message_loss` or `no_valid_reap` counts against a valid client."""
    if isinstance(ev, QueueDropped):
        return ev.lost and is_valid(pre, ev.client)
    return isinstance(ev, Reaped) and is_valid(pre, ev.client)


def _violation(out: _Out, params: Params, pre: State, ev: Any, i: int, now: int, hist: _History,
               exact: bool = True) -> None:
    if isinstance(ev, QueueDropped):
        out.say(now, f"VIOLATION (step {i}): {_queue_text(params, pre, ev, now, exact)}")
        ev = _as_reap(ev)
    else:
        out.say(now, f"VIOLATION (step {i}): {reap_text(params, pre, ev, now, exact)}")
    out.say(None, f"c{ev.client} was valid: {_valid_because(params, pre, ev.client, now, hist)}", 9)
    out.say(None, f"the cutoff was wrong: {_wrong_because(params, pre, ev, hist)}", 9)


# ---------------------------------------------------------------- whole run


def _choices(values, most: int = 8) -> str:
    """``1/2/3``; a long list (a scenario may give thousands) as its ends and its length."""
    if len(values) <= most:
        return "/".join(map(str, values))
    return f"{'/'.join(map(str, values[:3]))}/.../{values[-1]} ({len(values):,} choices)"


def _header(out: _Out, run: Run, params: Params, title: str, focus: Any) -> None:
    out.plain(f"== {title} ==" if title else "== stormcheck timeline ==")
    levels = "; ".join(f"{lv.avg_ms} ms -> T={lv.timeout} I={lv.interval}" for lv in params.levels)
    out.plain(
        f"fleet: {count(params.servers, 'server')}, {count(params.clients, 'client')},"
        f" design {params.design.name}; RTT {_choices(params.rtt)}{params.unit}; retry {params.retry}{params.unit}"
    )
    if params.rollout is not None:
        configs = "; ".join(f"{CONFIG_NAMES[i]}: T={lv.timeout} I={lv.interval}" for i, lv in enumerate(params.levels))
        out.plain(f"rollout {configs}; phases: {describe_phases(params.rollout.phases, params.unit)}")
    else:
        out.plain(f"adjuster levels: {levels}")
    if not params.heartbeat.faye:
        hb = params.heartbeat
        k = f" + {cutoff_text(hb.interval_multiplier)} x I" if hb.interval_multiplier else ""
        out.plain(
            f"heartbeat: hold {hb.hold}; interval from the {hb.interval_from}; cutoff {cutoff_text(params.gc_mult)} x T{k}"
            f" from the {hb.cutoff_from}; {hb.store} sessions; paths {', '.join(hb.paths)}"
        )
    if params.heartbeat.interval_term == "in-use":
        out.plain("the servers' cutoffs add the interval each server's own ping schedule uses now")
    if params.heartbeat.resume_window:
        out.plain(f"resumption: a session outlives its socket by {params.heartbeat.resume_window}{params.unit}; a reconnect "
                  "within that time, to any server, resumes it")
    if params.heartbeat.min_spacing:
        out.plain(f"lower bound: a server closes a connection whose heartbeats come sooner than "
                  f"{params.heartbeat.min_spacing}{params.unit} apart more than {params.heartbeat.strikes} times")
    for judge in params.judges:
        if judge.side == "proxy":
            out.plain(f"judge: proxy {judge.name}, idle timeout {judge.timeout}{params.unit} "
                      "(every heartbeat resets it)")
        else:
            out.plain(f"judge: the {judge.name} itself, {cutoff_text(judge.multiplier)} x T + "
                      f"{cutoff_text(judge.interval_multiplier)} x I as told at its handshake")
    if focus is not None:
        verdict = getattr(focus, "verdict", "")
        line = f"property {getattr(focus, 'name', focus)}"
        if getattr(focus, "modality", ""):
            line += f" ({focus.modality})"
        line += f": {verdict}" if verdict != "" else ""
        if getattr(focus, "basis", ""):
            line += f" - {focus.basis}"
        out.plain(line)
    out.plain(f"{count(len(run), 'step')} over {run.times()[-1]}{params.unit}")
    if params.unit != "s":
        out.plain(f"every time above and below is in {params.unit}: clock, ages, T, I, RTT and cutoffs")
    out.plain("")


def _start(out: _Out, params: Params, state: State) -> None:
    for c, cl in enumerate(state.clients):
        where = f" by s{cl.server}" if cl.server >= 0 else ""
        if cl.phase == HELD and params.heartbeat.hold == "none":
            # A ping/pong stack answers a heartbeat at once: "held (0s left)" said a hold it does not have.
            out.say(0, f"start: c{c} connected to s{cl.server}, its heartbeat arriving now")
        else:
            out.say(0, f"start: c{c} {cl.phase}{where} ({cl.timer}{params.unit} left)")
    out.say(0, _configs(params, state) if params.rollout is not None else _tuning(params, state))


def _age_text(age: int | None, unit: str) -> str:
    if age is None:
        return "no session"
    return f"session age {age}{unit}" if age >= 0 else f"session age >= {-age}{unit}"


def _final(out: _Out, params: Params, state: State, now: int, ages: tuple) -> None:
    out.plain("")
    out.plain(f"final state at t={now}{params.unit}:")
    if not params.heartbeat.faye:
        _final_stack(out, params, state, ages)
        return
    pub, gc = cutoff_text(params.publish_mult), cutoff_text(params.gc_mult)
    w = _advised_width(params, state)
    header = f"  {'server':<8}{'advised':<{w}}{'reaper T':<10}{'publish cutoff':<16}{'GC cutoff':<11}status"
    out.plain(header)
    for s, srv in enumerate(state.servers):
        t = params.levels[srv.reap].timeout
        status = server_status(srv, params.unit)
        out.plain(
            f"  {'s' + str(s):<8}{level_text(params, srv.adv):<{w}}{t:<10}"
            f"{cutoff_text(params.publish_mult * t):<16}{cutoff_text(params.gc_mult * t):<11}{status}"
        )
    out.plain(f"  (publish/existence cutoff = {pub} x T, GC cutoff = {gc} x T)")
    for c, cl in enumerate(state.clients):
        where = f" on s{cl.server}" if cl.server >= 0 else ""
        out.plain(f"  c{c}: {cl.phase}{where}, timer {cl.timer}{params.unit}, {_age_text(ages[c], params.unit)}")


def _advised_width(params: Params, state: State) -> int:
    """The final table's "advised" column: 16 wide, or wider for T/I in milliseconds."""
    return max(16, *(len(level_text(params, srv.adv)) + 2 for srv in state.servers))


def _final_stack(out: _Out, params: Params, state: State, ages: tuple) -> None:
    by_client = params.heartbeat.cutoff_from == "client"
    w = _advised_width(params, state)
    out.plain(f"  {'server':<8}{'advised':<{w}}{'judge T':<10}{'cutoff':<11}status")
    for s, srv in enumerate(state.servers):
        t = params.levels[srv.reap].timeout
        cutoff = "per client" if by_client else cutoff_text(params.cutoff("gc", srv.reap))
        status = server_status(srv, params.unit)
        out.plain(f"  {'s' + str(s):<8}{level_text(params, srv.adv):<{w}}{'-' if by_client else t:<10}{cutoff:<11}{status}")
    for c, cl in enumerate(state.clients):
        where = f" on s{cl.server}" if cl.server >= 0 else ""
        sess = _age_text(ages[c], params.unit)
        own = ""
        if params.heartbeat.client_owned and cl.session:
            own = f", runs {level_text(params, cl.session.hs_level)}"
        out.plain(f"  c{c}: {cl.phase}{where}, timer {cl.timer}{params.unit}, {sess}{own}")


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
    out = _Out(params.unit)
    _header(out, run, params, title, focus)
    times = run.times()
    _start(out, params, run.initial)
    hist = _History()
    pre = run.initial
    ages = session_ages(run, params.age_cap)  # the ages a reader expects, not the saturated ones
    for i, (action, st) in enumerate(run.steps, start=1):
        now = times[i]
        if run.loop is not None and i - 1 == run.loop:
            out.say(times[i - 1], f"-- the cycle starts here (state {run.loop}) --")
        for ev in st.events:
            ev, exact = true_age(pre, ages[i - 1], ev)
            if _lost(pre, ev):
                _violation(out, params, pre, ev, i, now, hist, exact)
            elif isinstance(ev, Reaped):
                out.say(now, reap_text(params, pre, ev, now, exact))
            elif isinstance(ev, QueueDropped):
                out.say(now, _queue_text(params, pre, ev, now, exact))
            else:
                out.say(now, _event_text(params, action, ev))
            hist.note(now, ev)
        if params.rollout is not None:
            if _configs_key(params, st.state) != _configs_key(params, pre):
                out.say(now, _configs(params, st.state))
        elif _tuning_key(st.state) != _tuning_key(pre):
            out.say(now, _tuning(params, st.state))
        pre = st.state
    if run.loop is not None:
        out.say(times[-1], f"-- the run returns to state {run.loop} (t={times[run.loop]}{params.unit}) and repeats "
                           "forever --")
    _final(out, params, pre, times[-1], ages[-1])
    return "\n".join(line.rstrip() for line in out.lines) + "\n"
