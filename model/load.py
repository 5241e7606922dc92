"""The load model of the storm simulation, and Gitter's adjuster sampling.

Gitter's code says how the adjuster reads load, not how load arises
(docs/protocol.md, "Load"). This module is the model we chose for the second
part, stated so it can be argued with:

* Every (re)connect costs its server snapshot work: one handshake plus one
  subscribe per channel, each subscribe building a room snapshot
  (``handshake_ms + channels * subscribe_ms`` of CPU time).
* A server does ``capacity`` seconds of that work per second (its cores) and
  queues the rest, first come first served. The backlog ``Q`` (seconds of
  waiting) grows by ``work / capacity`` and drains by one second per second.
* A subscribe arriving behind a backlog ``Q`` completes after
  ``Q + subscribe_ms``: that is the latency Gitter's server timed. Connects,
  refreshes and replies are cheap (the store refresh is one Redis call); only
  snapshot building competes for the CPU.
* Whether a reply waits behind that work is the one choice stated as data
  (``reply_share``, 0 by default: it does not). A server that answers
  heartbeats and connects on the same event loop that builds snapshots
  (Node's, Python's asyncio) answers ``reply_share x Q`` late, in whole
  seconds, rounded down: 1 is one loop for everything. The reply's round trip
  is then the RTT plus that delay, and a busy server's clients send their
  next heartbeat that much later, where every judge sees it.

The adjuster's side is Gitter's code, not a choice (docs/protocol.md, "The
load-adaptive advice adjuster"): each process keeps the last 100 subscribe
timings of at least 30 ms, acts only with at least 10 of them, and every 10 s
sets ``T_s, I_s`` from their mean by `model.adjuster.adjuster_advice`. Timings
under 30 ms are not recorded at all, so an idle server's window keeps its last
slow samples until new ones of 30 ms or more push them out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .faults import Fault
from .policies import Policy
from .setup import Setup

__all__ = ["LoadModel", "SampleWindow", "StormParams", "StormError", "WINDOW", "FLOOR_MS", "MIN_SAMPLES", "ADJUST_EVERY",
           "LONGEST_RUN"]

WINDOW = 100  # samples kept
FLOOR_MS = 30  # shorter timings are not recorded
MIN_SAMPLES = 10  # the adjuster acts only with at least this many
ADJUST_EVERY = 10  # seconds between adjustments


@dataclass(frozen=True)
class LoadModel:
    """Cost and capacity constants of one server (see the module docstring).

    Examples
    --------
    >>> m = LoadModel(channels=5, capacity=4.0, handshake_ms=10, subscribe_ms=40)
    >>> m.reconnect_work_s
    0.21
    >>> round(m.latency_ms(backlog_s=2.0, ahead=0), 1)
    2040.0
    """

    channels: int = 5
    capacity: float = 8.0  # seconds of work per second
    handshake_ms: float = 5.0
    subscribe_ms: float = 20.0
    reply_share: float = 0.0  # of the queue a heartbeat or connect reply waits behind (0: replies are not queued)

    @property
    def reconnect_work_s(self) -> float:
        """CPU seconds one reconnect costs its server (handshake + every subscribe)."""
        return (self.handshake_ms + self.channels * self.subscribe_ms) / 1000.0

    def latency_ms(self, backlog_s: float, ahead: float) -> float:
        """Subscribe latency for a client arriving behind `backlog_s` and `ahead` others of its batch."""
        return 1000.0 * (backlog_s + ahead * self.reconnect_work_s / self.capacity) + self.subscribe_ms

    def reply_delay_s(self, backlog_s: float) -> int:
        """Whole seconds a reply waits behind `backlog_s` of queued work (rounded down: never more than it is).

        >>> LoadModel(reply_share=0.5).reply_delay_s(9.9)
        4
        """
        return int(self.reply_share * backlog_s)

    def batch_latency_ms(self, backlog_s: float, n: float) -> float:
        """Mean subscribe latency of a batch of `n` reconnects arriving together.

        The i-th of the batch (i = 0..n-1) waits for the i before it; the mean
        of that is ``(n - 1) / 2`` reconnects' work. For ``n = 1`` this is
        exactly `latency_ms` with nobody ahead, so the per-client simulation
        and the fluid one agree on single arrivals.
        """
        return self.latency_ms(backlog_s, max(n - 1.0, 0.0) / 2.0)


class SampleWindow:
    """The last `WINDOW` subscribe timings of at least `FLOOR_MS`, with weights.

    A weight lets the fluid simulation add "n samples of value v" in one
    entry; the per-client simulation adds weight-1 entries. The mean is the
    same either way.

    Examples
    --------
    >>> w = SampleWindow()
    >>> w.add(20.0, 50); w.count
    0
    >>> w.add(1000.0, 60); w.add(3000.0, 60); (w.count, w.mean())
    (100, 2200.0)
    """

    __slots__ = ("_entries", "count", "_sum")

    def __init__(self) -> None:
        self._entries: deque[list] = deque()
        self.count = 0.0
        self._sum = 0.0

    def add(self, value_ms: float, weight: float) -> None:
        if value_ms < FLOOR_MS or weight <= 0:
            return
        weight = min(weight, WINDOW)
        self._entries.append([value_ms, weight])
        self.count += weight
        self._sum += value_ms * weight
        excess = self.count - WINDOW
        while excess > 1e-9:
            oldest = self._entries[0]
            take = min(oldest[1], excess)
            oldest[1] -= take
            self.count -= take
            self._sum -= oldest[0] * take
            excess -= take
            if oldest[1] <= 1e-9:
                self._entries.popleft()
        if self.count < 1e-9:
            self.count, self._sum = 0.0, 0.0

    def mean(self) -> float | None:
        """The mean timing, or None with fewer than `MIN_SAMPLES` samples."""
        if self.count + 1e-9 < MIN_SAMPLES:
            return None
        return self._sum / self.count


class StormError(ValueError):
    """Parameters the storm simulation cannot run, with what to change."""


LONGEST_RUN = 30 * 86400  # the largest `StormParams.horizon` a scenario may ask for, in seconds


@dataclass(frozen=True)
class StormParams:
    """The fleet's size, its load model, the clients' policy, and the run.

    ``fault`` is the run's fault (`model.faults`; by default the scenario's
    server loss, of the first of ``[faults] loss_servers`` or server 0) and
    ``fault_at`` when it starts; ``horizon`` is the
    simulated time; ``subside_within`` is W, how long after the fault ends
    the fleet may take to return to its steady state.
    """

    clients: int = 50_000
    load: LoadModel = LoadModel()
    churn_per_hour: float = 0.5
    publish_every: int = 1
    policy: Policy = Policy()
    budget: int = 0  # reconnects per budget_window; 0: no budget
    budget_window: int = 600
    admission: float = 0.0  # handshakes admitted per server per second; 0: no limit
    setup: Setup = Setup()  # the clients' setup deadline, abandoned work, load shedding (model/setup.py)
    threshold_ms: int = 5000  # the adjuster's threshold ([load] threshold_ms)
    fault: Fault = Fault()
    fault_at: int = 300
    horizon: int = 7200
    subside_within: int = 900

    def __post_init__(self) -> None:
        if self.clients < 1 or self.horizon < 1 or self.publish_every < 1:
            raise StormError("clients, horizon and publish_every must be at least 1")
