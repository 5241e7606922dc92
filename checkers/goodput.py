"""Goodput against offered load, from a calm and from a stormy start: where a fleet is metastable.

*Offered load* is the fresh setups per second the users ask for (page
reloads: ``clients * churn_per_hour / 3600``), given as a multiple of the
fleet's setup capacity (every server's ``capacity / reconnect_work_s``).
*Goodput* is the setups completed per second, not abandoned at the client's
deadline (`model.setup`), over the last `MEASURE` seconds of a run.

At each offered load the same fleet runs twice (`model.storm.simulate`):

* from a **calm start**: the scenario without its fault;
* from a **stormy start**: with its fault (one server's loss, whose clients
  all reconnect at once elsewhere).

Each run *ends calm* when every second of its last `MEASURE` is calm by
`checkers.recovery.calm` (reconnects near the page-reload rate, T/I at base,
no valid session reaped, no setup abandoned), else *stormy*. The
**metastable region** is the loads at which the calm run ends calm and the
stormy one ends stormy: at the same offered load both states persist, and
which one the fleet is in depends only on its history.

One trajectory per start and load, like every simulated verdict: the curve
says what these numbers do, not what every run could.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from stormcheck.model.load import StormError, StormParams
from stormcheck.model.params import Params
from stormcheck.model.storm import simulate

from .recovery import calm

__all__ = ["LOADS", "MEASURE", "Point", "capacity_per_s", "check_curve", "goodput_run", "goodput_curve", "metastable_loads"]

LOADS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25)  # offered load, as multiples of the fleet's capacity
MEASURE = 600  # seconds at the end of a run over which goodput is measured and calm is judged
STARTS = ("calm", "stormy")


@dataclass(frozen=True)
class Point:
    """One run of the curve: its offered load, its start, its goodput and how it ended."""

    load: float  # offered setups/s over the fleet's capacity
    offered: float  # setups/s
    start: str  # "calm" (no fault) or "stormy" (the scenario's fault)
    goodput: float  # setups completed per second over the last MEASURE s
    attempted: float  # setups started per second over the same seconds (retries included)
    ends: str  # "calm" or "stormy"


def capacity_per_s(params: Params, storm: StormParams) -> float:
    """Setups per second the whole fleet completes when every server is busy."""
    return params.servers * storm.load.capacity / storm.load.reconnect_work_s


def check_curve(params: Params, storm: StormParams) -> None:
    """Raise `StormError` (saying what to change) if the curve cannot be drawn for this fleet and run."""
    if storm.fault.kind != "loss":
        # The calm start removes the scenario's server loss, and the stormy start's end is the loss's:
        # another kind of fault would still strike the calm start, and end at another time.
        raise StormError(f'[storm] fault = "{storm.fault.kind}": the goodput curve starts its stormy runs with '
                         'the scenario\'s server loss and its calm runs without it; draw it with fault = "loss" '
                         '(the default), or run this fault without --goodput')
    if not params.faults.server_loss:
        raise StormError("the goodput curve's stormy start is the scenario's server loss, and it has none "
                         "([faults] server_loss = 0); give it one (server_loss = 1) to draw the curve")
    end = storm.fault_at + params.faults.loss_duration
    if storm.horizon - end < MEASURE:
        raise StormError(f"[storm] horizon = {storm.horizon}: the goodput curve measures the last {MEASURE} s, "
                         f"after the fault ends at {end} s; use a horizon (or --horizon) >= {end + MEASURE}")


def goodput_run(params: Params, storm: StormParams, load: float, start: str, mode: str = "fluid",
                seed: int = 0) -> Point:
    """Run the fleet at `load` x its capacity from a `start` ("calm" or "stormy") start; one point of the curve."""
    import numpy as np

    if start not in STARTS:
        raise StormError(f"start {start!r}: must be one of {', '.join(STARTS)}")
    check_curve(params, storm)
    offered = load * capacity_per_s(params, storm)
    run = dataclasses.replace(storm, churn_per_hour=offered * 3600.0 / storm.clients)
    if start == "calm":
        params = dataclasses.replace(params, faults=dataclasses.replace(params.faults, server_loss=0))
    series = simulate(params, run, mode, seed)
    last = slice(len(series.reconnects) - MEASURE, None)
    attempted = float(series.reconnects[last].mean())
    goodput = attempted - float(series.abandoned[last].mean())
    ends = "calm" if bool(np.all(calm(series, params, run)[last])) else "stormy"
    return Point(load, offered, start, goodput, attempted, ends)


def goodput_curve(params: Params, storm: StormParams, loads=LOADS, mode: str = "fluid", seed: int = 0) -> list[Point]:
    """Every point of the curve, in order of load, calm start first (one process; the CLI runs them as jobs)."""
    return [goodput_run(params, storm, load, start, mode, seed) for load in loads for start in STARTS]


def metastable_loads(points: list[Point]) -> list[float]:
    """The loads at which the calm start ends calm and the stormy start ends stormy."""
    ends = {(p.load, p.start): p.ends for p in points}
    return sorted(load for load, start in ends if start == "calm" and ends[load, "calm"] == "calm"
                  and ends.get((load, "stormy")) == "stormy")
