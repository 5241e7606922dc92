"""A free run of a real Faye fleet: real timers, random traffic, and the logs judged afterwards.

Nothing here follows a trace. The servers sweep on their own GC timers (every
60 model s each, as faye-redis does), the stock clients keep their own connect
cycles, and a seeded random schedule publishes from random servers, moves the
adjuster (per the scenario's design: one server at a time for ``per-server``,
every server at once for ``fleet-wide``, never for ``off``) and takes servers
off the network (the scenario's ``[faults] server_loss``). The load balancer
sends each new socket to a random reachable server.

No client crashes or is cut in a free run, so every client stays valid the
whole time: any session of a client's *current* id that a reaper destroys or
refuses (401) is a valid reap, and any message published while a client was
subscribed that never reaches it is a lost message. Both must be absent from
the controls (a static fleet; every server on the same T).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from .faye_fleet import Fleet

__all__ = ["FreeRun", "free_run", "judge"]

PUBLISH_EVERY = 3.0  # model seconds between publishes, on average
ADJUST_EVERY = 40.0  # model seconds between adjuster moves, on average
GC_PERIOD = 60.0  # faye-redis's default sweep timer, per server


@dataclass
class FreeRun:
    scenario: str
    design: str
    engine: str
    seconds: float
    seed: int
    scale: float
    publishes: int = 0
    delivered: int = 0
    valid_reaps: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.valid_reaps and not self.lost


def _schedule(rng: random.Random, seconds: float, servers: int, design: str, levels, losses: int,
              loss_duration: float) -> list[tuple[float, str, tuple]]:
    plan = []
    t = 0.0
    while (t := t + rng.expovariate(1 / PUBLISH_EVERY)) < seconds:
        plan.append((t, "publish", (rng.randrange(servers),)))
    if design != "off" and len(levels) > 1:
        t = 0.0
        while (t := t + rng.expovariate(1 / ADJUST_EVERY)) < seconds:
            level = rng.randrange(len(levels))
            who = range(servers) if design == "fleet-wide" else (rng.randrange(servers),)
            plan.append((t, "adjust", (tuple(who), level)))
    for _ in range(losses):
        t, s = rng.uniform(0, seconds / 2), rng.randrange(servers)
        plan += [(t, "lose", (s,)), (t + loss_duration, "restore", (s,))]
    return sorted(plan)


def free_run(scenario, engine: str, seconds: float, seed: int, scale: float, clients: int = 3,
             progress=None) -> FreeRun:
    """Run `scenario`'s fleet for `seconds` model seconds and judge its logs."""
    p, cfg = scenario.params, scenario.config
    levels = p.levels
    design = str(cfg["scenario"].get("design", "off"))
    rng = random.Random(seed)
    faults = cfg.get("faults", {})
    plan = _schedule(rng, seconds, p.servers, design, levels, int(faults.get("server_loss", 0)),
                     float(faults.get("loss_duration", 60)))
    result = FreeRun(scenario.name, design, engine, seconds, seed, scale)
    started = time.monotonic()
    with Fleet(servers=p.servers, engine=engine, scale=scale, timeout=levels[0].timeout,
               interval=levels[0].interval, retry=cfg["protocol"].get("retry", 5), gc_period=GC_PERIOD) as f:
        down: set[str] = set()
        names = [f"s{i}" for i in range(p.servers)]
        f.switchboard.pick = lambda client: rng.choice([s for s in names if s not in down] or names)
        after_drop = cfg.get("client", {}).get("after_drop", "rehandshake")
        for c in range(clients):
            f.start_client(f"c{c}", names[c % len(names)], after_drop=after_drop)
        time.sleep(1.0)  # every client handshaken and subscribed before t=0
        f.origin = time.time()
        seq = 0
        for at, kind, arg in plan:
            while f.model_time() < at:
                time.sleep(0.01)
            if kind == "publish":
                seq += 1
                f.publish(names[arg[0]], seq)
            elif kind == "adjust":
                lvl = levels[arg[1]]
                for s in arg[0]:
                    f.set_advice(names[s], lvl.timeout, lvl.interval)
            elif kind == "lose":
                down.add(names[arg[0]])
                f.switchboard.lose_server(names[arg[0]])
            else:
                down.discard(names[arg[0]])
                f.switchboard.restore_server(names[arg[0]])
            result.actions.append(f"t={at:6.1f} {kind} {arg}")
            if progress:
                progress(at, seconds)
        while f.model_time() < seconds:
            time.sleep(0.05)
        # Let the last publishes arrive: a queued message waits at most one hold plus a retry.
        grace = max(lv.timeout for lv in levels) + 2 * cfg["protocol"].get("retry", 5)
        time.sleep(min(grace, 30) * scale)
        result.publishes = seq
        judge(f.events(), [f"c{c}" for c in range(clients)], seconds, result)
    result.wall_seconds = time.monotonic() - started
    return result


def judge(events, clients: list[str], until: float, result: FreeRun) -> None:
    """Fill `result`'s valid reaps and lost messages from the real logs."""
    for client in clients:
        own = [e for e in events if e.who == client]
        # Each id the client held: from its handshake reply until its next one.
        ids = [(e.at, e.data["id"]) for e in own if e.ev == "reply" and e.data.get("channel") == "/meta/handshake"
               and e.data.get("successful")]
        spans = [(at, ids[i + 1][0] if i + 1 < len(ids) else float("inf"), cid) for i, (at, cid) in enumerate(ids)]
        subscribed = {e.data["id"]: e.at for e in own if e.ev == "reply"
                      and e.data.get("channel") == "/meta/subscribe" and e.data.get("successful")}
        got = {e.data.get("seq") for e in own if e.ev == "message"}
        result.delivered += len(got)
        for start, end, cid in spans:
            for e in events:
                if e.data.get("client") != cid or not (start <= e.at < end):
                    continue
                # A queue dropped on the publish path ("expired") is not a reap: the session
                # survives; what it costs shows as lost messages below.
                if e.ev == "destroy" or (e.ev == "connect-reply" and e.data.get("successful") is False):
                    why = f"destroyed by {e.data.get('path')}" if e.ev == "destroy" else "refused (401)"
                    result.valid_reaps.append(f"t={e.at:.1f} {e.who}: {client}'s current session {why}")
            since = subscribed.get(cid)
            if since is None:
                continue
            for e in events:
                if e.ev == "publish" and since + 1 <= e.at <= min(end, until) - 1 and e.data["seq"] not in got:
                    result.lost.append(f"t={e.at:.1f} {client} never got message {e.data['seq']} from {e.who}")
