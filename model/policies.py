"""Reconnect policies: how long a client waits before its next reconnect attempt.

A policy maps the client's attempt number (1 for the first retry after a
failure) and its previous delay to a *distribution* of whole-second delays,
given as ``((delay, probability, next_prev), ...)``. Both storm engines read
the same distribution: the per-client simulation draws from it, the fluid
(counting) simulation splits a group of clients over it in proportion. So
the two can differ only by sampling noise, never by a different policy.

The formulas are the usual ones (Faye's client, the AWS Architecture Blog's
"Exponential Backoff And Jitter"); delays are rounded to whole seconds, the
resolution of the storm simulation.

* ``fixed``: Faye 1.1's client retries every ``retry`` seconds, no backoff,
  no jitter (docs/protocol.md, "Client cycle" step 4).
* ``exponential``: ``min(cap, base * 2**(n-1))``, no jitter.
* ``full-jitter``: uniform on ``[0, min(cap, base * 2**n)]``.
* ``decorrelated``: uniform on ``[base, min(cap, 3 * prev)]``, ``prev``
  starting at ``base``.
* ``websockets``: Python ``websockets`` 17.x (``asyncio/client.py``
  ``connect.__aiter__`` and ``client.py`` ``backoff``): a connection that
  dropped after it was up is retried at once (attempt 1: 0 s); a failed
  attempt waits a random 0-5 s, then ``3.1 x 1.618**k`` s (k = 0, 1, ...)
  capped at ``cap`` (the library's default is 90: give ``[storm] cap = 90``).

A client-side circuit breaker is part of the policy: after ``breaker_after``
failed attempts in a row (a refused or abandoned setup, a socket dropped
before the client was back in its heartbeat cycle) the circuit opens, and
the client waits ``breaker_open`` seconds before each further attempt (one
trial at a time, half-open) until one succeeds, which closes it. A client
that is back in its cycle starts again at attempt 1. 0: no breaker.

A client retry budget (at most ``budget`` reconnects per ``budget_window``
seconds) and server-side admission control are not delays of their own; the
simulation applies them on top of any of these (see `model.storm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["POLICIES", "Policy", "policy_names"]

POLICIES = ("fixed", "exponential", "full-jitter", "decorrelated", "websockets")

# websockets 17.x backoff(): initial_delay 5, min_delay 3.1, factor 1.618.
_WS_JITTER, _WS_MIN, _WS_FACTOR = 5, 3.1, 1.618


def policy_names() -> tuple[str, ...]:
    return POLICIES


def _uniform(lo: int, hi: int) -> tuple[tuple[int, float], ...]:
    lo, hi = int(lo), int(max(lo, hi))
    p = 1.0 / (hi - lo + 1)
    return tuple((d, p) for d in range(lo, hi + 1))


@dataclass(frozen=True)
class Policy:
    """A reconnect policy and its constants (seconds).

    Examples
    --------
    >>> Policy("fixed", retry=5).delays(3, 0)
    ((5, 1.0, 0),)
    >>> [d for d, _, _ in Policy("exponential", base=1, cap=30).delays(6, 0)]
    [30]
    >>> sum(p for _, p, _ in Policy("full-jitter", base=1, cap=30).delays(2, 0))
    1.0
    >>> [Policy("fixed", retry=5, breaker_after=2, breaker_open=60).delays(n, 0)[0][0] for n in (1, 2, 3, 9)]
    [5, 5, 60, 60]
    """

    name: str = "fixed"
    retry: int = 5
    base: int = 1
    cap: int = 30
    breaker_after: int = 0  # failed attempts in a row that open the client's circuit; 0: no breaker
    breaker_open: int = 60  # seconds an open circuit waits before each trial

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"reconnect policy {self.name!r}: must be one of {', '.join(POLICIES)}")
        if self.retry < 0 or self.base < 1 or self.cap < self.base:
            raise ValueError(f"reconnect policy {self.name!r}: need retry >= 0, base >= 1 and cap >= base")
        if self.breaker_after < 0 or self.breaker_open < 1:
            raise ValueError("circuit breaker: need breaker_after >= 0 (0: none) and breaker_open >= 1")

    @property
    def saturates_at(self) -> int:
        """The attempt number from which the distribution no longer changes.

        Attempt counters are capped there, so groups of clients that differ
        only in how long ago their backoff saturated are the same group.
        """
        if self.breaker_after:
            return max(self._backoff_saturates_at, self.breaker_after + 1)
        return self._backoff_saturates_at

    @property
    def _backoff_saturates_at(self) -> int:
        if self.name in ("fixed", "decorrelated"):
            return 1
        if self.name == "websockets":
            n = 3
            while _WS_MIN * _WS_FACTOR ** (n - 3) < self.cap:
                n += 1
            return n
        n = 1
        while self.base * 2 ** (n - 1 + (self.name == "full-jitter")) < self.cap:
            n += 1
        return n

    def delays(self, attempt: int, prev: int) -> tuple[tuple[int, float, int], ...]:
        """``((delay, probability, next_prev), ...)`` for retry number `attempt` (>= 1)."""
        return _delays(self, min(max(attempt, 1), self.saturates_at), prev)


@lru_cache(maxsize=4096)
def _delays(policy: Policy, attempt: int, prev: int) -> tuple[tuple[int, float, int], ...]:
    name, base, cap = policy.name, policy.base, policy.cap
    if policy.breaker_after and attempt > policy.breaker_after:
        return ((policy.breaker_open, 1.0, prev),)  # the circuit is open: one trial per open period
    if name == "fixed":
        return ((policy.retry, 1.0, 0),)
    if name == "exponential":
        return ((min(cap, base * 2 ** (attempt - 1)), 1.0, 0),)
    if name == "websockets":
        if attempt == 1:
            return ((0, 1.0, 0),)
        if attempt == 2:
            return tuple((d, p, 0) for d, p in _uniform(0, min(cap, _WS_JITTER)))
        return ((min(cap, round(_WS_MIN * _WS_FACTOR ** (attempt - 3))), 1.0, 0),)
    if name == "full-jitter":
        return tuple((d, p, 0) for d, p in _uniform(0, min(cap, base * 2**attempt)))
    # decorrelated: the previous delay is the state ("sleep" in the AWS formula),
    # kept only up to ceil(cap / 3): from there on 3 x prev >= cap and the
    # distribution no longer changes, so clients past it share a group.
    prev, top = prev or base, -(-cap // 3)
    return tuple((d, p, min(d, top)) for d, p in _uniform(base, min(cap, 3 * prev)))
