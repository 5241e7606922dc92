"""The limits of one run: the faults the adversary may inject and how far a search may go.

Neither depends on the protocol's rules: `Faults` bounds the adversary of
every engine, `Bounds` the search of the exhaustive ones. `Params` holds a
`Faults`; `stormcheck.model.params` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults", "Bounds"]

@dataclass(frozen=True)
class Faults:
    """Bounds on the faults the adversary may inject during one run.

    Each count is how many times the fault may happen in a run; each fault may
    strike at any moment. `loss_servers` names the servers that may lose
    connectivity (all when empty).
    """

    server_loss: int = 0
    loss_duration: int = 60
    loss_servers: tuple[int, ...] = ()
    client_crash: int = 0
    client_cut: int = 0
    cut_duration: int = 120


@dataclass(frozen=True)
class Bounds:
    """How far a search may go before it must stop and say so.

    ``max_depth`` (steps from an initial state; 0: none) is a *stated bound*:
    a search that explored every run up to it may report that an ``always``
    property holds within it. The state and time budgets are not: a search
    stopped by them is inconclusive.
    """

    max_states: int = 2_000_000
    max_seconds: float = 600.0
    max_depth: int = 0
