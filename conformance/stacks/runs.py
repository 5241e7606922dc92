"""The real runs a stack scenario is held to: free run, frozen client, rollout.

Each function starts the stack's processes in a `Harness`, drives them for a
bounded number of model seconds and returns an `Outcome` read from what the
processes reported. Durations are multiples of the scenario's own cutoffs so
that every judge has had several chances to fire.
"""

from __future__ import annotations

import time

from stormcheck.model.params import Params
from stormcheck.model.rollout import Phase

from .claims import cutoff
from .harness import Config, Harness, Outcome, freeze, levels, server_config, thaw

__all__ = ["free_run", "frozen_client", "rollout", "live_change", "spacing_run", "RefusedRun", "check_expressible"]


class RefusedRun(ValueError):
    """The real stack cannot express this run (named); refused before anything starts."""


def _settle(params: Params) -> float:
    """Model seconds long enough for every judge of every level to fire twice."""
    return 2 * float(max(cutoff(params, i) for i in range(len(params.levels))))


def free_run(stack, params: Params, seconds: float | None = None) -> Outcome:
    """Configuration A on every server, one healthy client, `seconds` model seconds."""
    a, _ = levels(params)
    seconds = seconds or max(150.0, 2 * _settle(params))
    with Harness(stack, params) as h:
        for i in range(params.servers):
            h.start_server(i, a)
        h.start_client(a)
        h.sleep(seconds)
        return h.verdict(f"free run of {seconds:.0f} model s, {params.servers} servers at T={a.timeout:g} I={a.interval:g}")


def frozen_client(stack, params: Params, config: Config | None = None) -> Outcome:
    """One server, one client frozen (SIGSTOP) right after its connection opens.

    ``observed`` is model seconds from the server's ``open`` to its judge's close.
    """
    a = config or levels(params)[0]
    limit = 3 * float(params.cutoff("gc", 0)) + 60
    with Harness(stack, params) as h:
        server = h.start_server(0, a)
        client = h.start_client(a)
        opened = h.wait_event(server, "open", 60)
        if opened is None:
            raise RuntimeError(f"{stack.key}: the client never connected to the server")
        freeze(client)
        closed = h.wait_event(server, "close", limit, start=opened.at)
        thaw(client)
        if closed is None or not closed.fields.get("judged"):
            what = "was not dropped" if closed is None else f"was closed but not by a judge ({closed.fields})"
            return Outcome("violated", f"frozen client {what} within {limit:.0f} model s",
                           time.monotonic() - h.t0, events=h.events())
        observed = h.model_seconds(closed.at - opened.at)
        return Outcome("holds", f"frozen client dropped {observed:.1f} model s after it connected "
                       f"({closed.fields.get('why', '')})", time.monotonic() - h.t0, observed=observed, events=h.events())


def check_expressible(stack, phases: tuple[Phase, ...]) -> None:
    live = [p for p in phases if p.side == "servers" and p.change == "live"]
    if live and not hasattr(stack, "live_signal"):
        raise RefusedRun(f"{stack.key}: a servers phase with change = \"live\": its real server cannot change "
                         "its settings while it runs; only restarts are run")
    if len(live) > 1:
        raise RefusedRun(f"{stack.key}: {len(live)} live phases; the real servers take one live change")
    for phase in phases:
        if phase.side == "clients" and phase.pickup != "release":
            raise RefusedRun(f"{stack.key}: a clients phase with pickup = {phase.pickup!r} has no real "
                             "counterpart here; only \"release\" (each client reloads) is run")


def rollout(stack, params: Params, phases: tuple[Phase, ...]) -> Outcome:
    """Run `phases` on the real stack: restarts, releases; then wait for every judge to have fired.

    A server restart stops the process (its connections close the library's
    way), waits ``restart`` model s, and starts it again with the part the
    phase moves (judge: its timeout, advice: its interval) at B. A release
    reloads each client with B's settings.
    """
    check_expressible(stack, phases)
    a, b = levels(params)
    judge, advice = [a] * params.servers, [a] * params.servers
    restart = params.rollout.restart
    live = next((p for p in phases if p.side == "servers" and p.change == "live"), None)
    # A live phase's target is handed to each server at its start; the phase signals it.
    live_config = None if live is None else server_config(b if live.part != "advice" else a,
                                                          b if live.part != "judge" else a)
    start = (lambda h, i, c: h.start_server(i, c, live=live_config)) if live else (lambda h, i, c: h.start_server(i, c))
    with Harness(stack, params) as h:
        for i in range(params.servers):
            start(h, i, a)
        h.start_client(a)
        h.sleep(_settle(params) / 2)
        for phase in phases:
            if phase.side == "clients":
                for c in list(h.clients):
                    c.stop()
                    h.clients.remove(c)
                    h.start_client(b)
                h.sleep(min(phase.spread, _settle(params)))  # one client: it reloads at once
                continue
            for first in range(0, params.servers, phase.batch):
                batch = range(first, min(first + phase.batch, params.servers))
                for i in batch:
                    if phase.part in ("both", "judge"):
                        judge[i] = b
                    if phase.part in ("both", "advice"):
                        advice[i] = b
                    if phase.change == "live":
                        h.servers[i].signal(stack.live_signal)
                    else:
                        h.stop_server(i)
                if phase.change != "live":
                    h.sleep(restart)
                    for i in batch:
                        start(h, i, server_config(judge[i], advice[i]))
                h.sleep(phase.pace)
        h.sleep(_settle(params))
        return h.verdict("rollout " + "; ".join(p.label() for p in phases))


def live_change(stack, params: Params, live: Config, before: float = 40.0, after: float | None = None) -> Outcome:
    """Change a running server's settings to `live` without a restart (Engine.IO 4 servers).

    One server at configuration A, one healthy client; `before` model s in,
    the server switches to `live` (SIGUSR1 to the peer); the run goes on for
    `after` model s (default: twice the longest cutoff). Clients keep what
    their handshake told them, so a live interval longer than the client's
    pingInterval + pingTimeout makes the client give up on a healthy server.
    """
    if not hasattr(stack, "live_signal"):
        raise RefusedRun(f"{stack.key}: its real server cannot change its settings while it runs")
    a, _ = levels(params)
    after = after or 2 * float(max(a.timeout + a.interval, live.timeout + live.interval))
    with Harness(stack, params) as h:
        server = h.start_server(0, a, live=live)
        h.start_client(a)
        h.sleep(before)
        server.signal(stack.live_signal)
        h.sleep(after)
        return h.verdict(f"live change T={a.timeout:g} I={a.interval:g} -> T={live.timeout:g} I={live.interval:g} "
                         "without a restart")


def spacing_run(stack, params: Params, client: Config, min_spacing: float, strikes: int, pings: int = 6,
                **server_settings) -> Outcome:
    """One server that closes a client pinging sooner than `min_spacing` model s more than `strikes` times.

    One healthy client pings every ``client.interval`` model s (its keepalive);
    the run lasts `pings` of those intervals after it connects (plus half of
    one). ``violated``: the server's judge closed it; the detail says at which
    of the connection's pings and how many were early (``ping`` events of the
    server with ``early``). `server_settings`: further settings of the stack's server.
    """
    with Harness(stack, params) as h:
        server = h.start_server(0, client, min_spacing=min_spacing, strikes=strikes, **server_settings)
        first = h.start_client(client)
        if h.wait_event(first, "open", max(60.0, 4 * client.interval)) is None:
            raise RuntimeError(f"{stack.key}: the client never connected to the server")
        h.sleep((pings + 0.5) * client.interval)
        what = (f"{pings} keepalive intervals, client keepalive {client.interval:g} s, server minimum "
                f"{min_spacing:g} s, {strikes} strikes")
        out = h.verdict(what)
        closed = next((e for e in h.judged() if e.proc == server.name), None)
        if closed is not None:
            conn = [e for e in h.events(server) if e.ev == "ping" and e.fields.get("conn") == closed.fields.get("conn")]
            early = sum(1 for e in conn if e.fields.get("early"))
            out.detail = (f"{what}: the server closed the healthy client's connection at its ping {len(conn)} "
                          f"({early} early; {closed.fields.get('why', '')})")
        return out
