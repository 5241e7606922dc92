"""Connection setup under load: the client's deadline, and what the server does about it.

A setup is a handshake plus the first fetch (Faye's subscribes, each building a
room snapshot): the work `model.load.LoadModel` counts as one reconnect's,
queued first come first served behind the server's backlog. This module is
the mechanism behind most published metastable failures, stated as data
(the ``[storm]`` keys in brackets) so that it can be argued with:

* **The client's deadline** (``setup_deadline``, seconds; 0: none). A client
  whose setup has not finished that long after it started gives up: it closes
  the socket and reconnects by its policy (`model.policies`), counting the
  abandoned attempt as a failed one. The setup's finishing time is the load
  model's latency of its last subscribe: the backlog ahead of it, the work of
  the clients ahead of it in its batch, and one subscribe (``subscribe_ms``).
  The handshake did happen, so in a shared store the abandoned session stays
  until a reaper destroys it (a dead session), as any abandoned one does.
* **The abandoned work** (``abandoned_work``). ``"finish"``: the server
  finishes it anyway (it does not notice the client left), so it still
  delays everyone queued behind it: with a deadline shorter than the queue,
  retries add work faster than the server completes any, and the queue
  never drains. ``"cancel"``: the server drops a setup whose client left. The
  model drops it whole at once, which is the bound cancellation tends to (an
  abandoned setup is at the back of its batch: what it has not started when
  its client leaves is never done).
* **Load shedding** (``queue_limit``, setups per server; 0: none). A server
  whose queue already holds that many setups' work refuses a new one at once
  (the client sees the refusal, and reconnects by its policy, as a refused
  admission does); the work it would have been is never queued.

Goodput is the setups completed (not abandoned) per second: what the fleet
gets done, as opposed to what it is asked (`checkers.goodput` draws it
against the offered rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .load import LoadModel

__all__ = ["Setup", "ABANDONED_WORK"]

ABANDONED_WORK = ("finish", "cancel")


@dataclass(frozen=True)
class Setup:
    """The setup deadline, what happens to abandoned work, and the servers' queue limit.

    Examples
    --------
    >>> from stormcheck.model.load import LoadModel
    >>> m = LoadModel(channels=5, capacity=8.0, handshake_ms=5, subscribe_ms=20)
    >>> s = Setup(deadline=30)
    >>> s.finished(1000, wait_s=25.0, load=m)  # 4.98 s to spare after a subscribe: the first, 379 more of 0.105 / 8 s
    380.0
    >>> s.finished(1000, wait_s=31.0, load=m)  # behind a queue longer than the deadline: none finishes
    0.0
    >>> Setup(queue_limit=100).room(wait_s=0.5, load=m)  # 0.5 s of queue is 38.1 setups' work
    61.0
    """

    deadline: int = 0  # seconds; 0: the client waits for ever
    abandoned_work: str = "finish"
    queue_limit: int = 0  # setups queued per server; 0: no limit

    def __post_init__(self) -> None:
        if self.abandoned_work not in ABANDONED_WORK:
            raise ValueError(f"abandoned_work {self.abandoned_work!r}: must be one of {', '.join(ABANDONED_WORK)}")
        if self.deadline < 0 or self.queue_limit < 0:
            raise ValueError("setup deadline and queue limit must be >= 0 (0: none)")

    @property
    def cancels(self) -> bool:
        return self.abandoned_work == "cancel"

    def finished(self, n: float, wait_s: float, load: LoadModel) -> float:
        """How many of a batch of `n` setups arriving behind `wait_s` seconds of queue finish in time.

        The i-th of the batch (i = 0, 1, ...) finishes ``load.latency_ms(wait_s,
        i)`` after it started; it is in time when that is within the deadline.
        Whole setups: the same count in the fluid and the per-client simulation.
        """
        if not self.deadline or n <= 0:
            return n
        spare_s = self.deadline - wait_s - load.subscribe_ms / 1000.0
        if spare_s < 0:
            return 0.0
        return float(min(n, math.floor(spare_s * load.capacity / load.reconnect_work_s + 1e-9) + 1))

    def room(self, wait_s: float, load: LoadModel) -> float:
        """Setups a server with `wait_s` seconds of queue still accepts (no limit: infinity)."""
        if not self.queue_limit:
            return math.inf
        queued = wait_s * load.capacity / load.reconnect_work_s
        return float(max(0, math.floor(self.queue_limit - queued + 1e-9)))
