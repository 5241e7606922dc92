"""`storm_subsides` on simulated runs: recovery time, and mitigations ranked.

A run (`model.storm.simulate`) is *calm* at second t when, over the minute
ending at t, reconnects average at most the baseline (page reloads alone:
``clients * churn_per_hour / 3600`` per second) times `CALM_FACTOR` plus one,
every server's T/I is back at base, and no valid session was reaped and no
setup abandoned at its client's deadline (`model.setup`) in that minute. The fleet has *recovered* at the first second after the fault ends
from which every second to the end of the run is calm, and the run shows at
least `SETTLE` seconds of it (so "stays there" is seen, not assumed).

Verdicts for one run, never more than the run shows:

* ``holds``: recovered within W (``[storm] subside_within``) of the fault's end;
* ``violated``: not recovered within W, and the run went on long enough to
  see W plus the settling time;
* ``inconclusive``: the run ended too soon to tell.

A simulation is one trajectory (the fluid one is deterministic; a sampled
one depends on its seed): ``holds`` here is about that trajectory, not every
behaviour. The exhaustive engine's lasso (`checkers.lasso`) is the proof
that a storm *can* sustain itself; the simulation shows whether, with these
numbers, it *does*, and for how long.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from stormcheck.model.params import Params
from stormcheck.model.policies import Policy
from stormcheck.model.storm import Series, StormParams, refuse_unsimulated, simulate
from stormcheck.properties.core import NotEncoded, Verdict

if TYPE_CHECKING:  # imported on use, by the functions that compute: the CLI loads this module for every command
    import numpy as np

    from stormcheck.model.scenario import Scenario

__all__ = ["Recovery", "recovery", "Mitigation", "mitigations", "storm_table", "storm_run", "rank_rows", "simulated_designs", "CALM_FACTOR", "SETTLE"]

CALM_FACTOR = 1.5
BREAKER = (3, 60)  # the circuit-breaker mitigation: failed attempts in a row that open it, seconds open
SHED_WITHOUT_DEADLINE = 10  # seconds of work a shedding server queues when clients set no setup deadline
SETTLE = 600
MINUTE = 60


@dataclass(frozen=True)
class Recovery:
    verdict: Verdict
    basis: str
    fault_end: int
    recovered_at: int | None  # first second of the calm that lasts to the end
    seconds: int | None  # recovered_at - fault_end
    baseline: float  # reconnects/s from page reloads alone
    peak_reconnects: float  # highest one-minute mean of reconnects/s after the fault
    reconnects: int
    reaped_valid: int
    reaped_dead: int
    max_timeout: int
    abandoned: int = 0  # setups given up at the client's deadline
    rejected: int = 0  # setups refused by admission control or load shedding


def _minute_mean(x: np.ndarray) -> np.ndarray:
    import numpy as np

    c = np.cumsum(np.concatenate(([0.0], x)))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - MINUTE, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def calm(series: Series, params: Params, storm: StormParams) -> np.ndarray:
    """Per second of `series`: is the minute ending there calm (see the module docstring)?

    `checkers.goodput` judges the end of a run by it too.
    """
    import numpy as np

    baseline = storm.clients * storm.churn_per_hour / 3600.0
    rate = _minute_mean(series.reconnects)
    valid = _minute_mean(series.reaped_valid)
    at_base = np.all((series.timeout == params.t0) & (series.interval == params.i0), axis=1)
    out = (rate <= CALM_FACTOR * baseline + 1.0) & at_base & (valid == 0)
    if series.abandoned is not None:
        out &= _minute_mean(series.abandoned) == 0
    return out


def recovery(series: Series, params: Params, storm: StormParams) -> Recovery:
    """When (and whether) the run of `series` returned to its steady state."""
    import numpy as np

    start, end, _ = series.fault
    horizon = len(series.reconnects)
    baseline = storm.clients * storm.churn_per_hour / 3600.0
    rate = _minute_mean(series.reconnects)
    calm_at = calm(series, params, storm)
    # The first second from which calm lasts to the end of the run.
    not_calm = np.nonzero(~calm_at[end:])[0]
    recovered_at = end if len(not_calm) == 0 else end + int(not_calm[-1]) + 1
    if recovered_at >= horizon:
        recovered_at = None
    W = storm.subside_within
    after = slice(start, horizon)
    figures = dict(
        fault_end=end, baseline=baseline,
        peak_reconnects=float(rate[after].max()) if horizon > start else 0.0,
        reconnects=int(round(series.reconnects.sum())), reaped_valid=int(round(series.reaped_valid.sum())),
        reaped_dead=int(round(series.reaped_dead.sum())), max_timeout=int(series.timeout.max()),
        abandoned=int(round(series.abandoned.sum())) if series.abandoned is not None else 0,
        rejected=int(round(series.rejected.sum())),
    )
    if recovered_at is not None and recovered_at - end <= W and horizon - recovered_at >= SETTLE:
        basis = (f"recovered {recovered_at - end} s after the fault ended (W = {W} s) and stayed calm for the "
                 f"remaining {horizon - recovered_at} s")
        return Recovery(Verdict.HOLDS, basis, recovered_at=recovered_at, seconds=recovered_at - end, **figures)
    last_storm = end + int(not_calm[-1]) if len(not_calm) else None
    if horizon - end < W + SETTLE and last_storm is not None and last_storm >= end + W:
        # Too short to see a recovery, but not to see its absence: a second that is not calm past
        # the fault's end + W means no recovery within W, however the run would have gone on.
        basis = (f"not calm at t={last_storm} s, {last_storm - end} s after the fault ended (W = {W} s): "
                 "it did not recover within W")
        return Recovery(Verdict.VIOLATED, basis, recovered_at=recovered_at,
                        seconds=None if recovered_at is None else recovered_at - end, **figures)
    if horizon <= end:
        basis = (f"the fault is not over when the run ends (at t={horizon} s; the fault ends at t={end} s): "
                 f"a horizon of at least {end + W + SETTLE} s sees W = {W} s plus {SETTLE} s of calm")
        return Recovery(Verdict.INCONCLUSIVE, basis, recovered_at=None, seconds=None, **figures)
    if horizon - end < W + SETTLE:
        basis = f"the run ends {horizon - end} s after the fault; seeing W = {W} s plus {SETTLE} s of calm needs more"
        return Recovery(Verdict.INCONCLUSIVE, basis, recovered_at=recovered_at,
                        seconds=None if recovered_at is None else recovered_at - end, **figures)
    if recovered_at is None:
        last = rate[-MINUTE:].mean()
        basis = (f"not recovered {horizon - end} s after the fault ended: still {last:.1f} reconnects/s "
                 f"(baseline {baseline:.1f}/s), T up to {int(series.timeout[-MINUTE:].max())} s")
    else:
        basis = f"recovered only {recovered_at - end} s after the fault ended (W = {W} s)"
    return Recovery(Verdict.VIOLATED, basis, recovered_at=recovered_at,
                    seconds=None if recovered_at is None else recovered_at - end, **figures)


@dataclass(frozen=True)
class Mitigation:
    """A named change to the clients' policy or the servers' admission."""

    name: str
    description: str
    changes: dict

    def apply(self, storm: StormParams) -> StormParams:
        return dataclasses.replace(storm, **self.changes)


def mitigations(storm: StormParams) -> list[Mitigation]:
    """The scenario's own policy, then the standard alternatives to it.

    Admission control lets each server take, per second, as many reconnects
    as its capacity builds snapshots for (so its backlog stays under a
    second); the retry budget allows 3 reconnects per 10 minutes; the
    circuit breaker (`BREAKER`) keeps the scenario's policy but, after 3
    failed attempts in a row, waits 60 s before each next one. Load
    shedding caps each server's queue at the setups it clears within the
    clients' setup deadline (`model.setup`; `SHED_WITHOUT_DEADLINE` seconds'
    worth without one), refusing the excess at once. Where the scenario sets
    a deadline, cancellation drops the work of abandoned setups (without a
    deadline nothing is abandoned: it would be the run as configured).
    """
    p, cap = storm.policy, max(storm.policy.cap, 60)
    per_second = max(1.0, float(int(storm.load.capacity / storm.load.reconnect_work_s)))
    setup = storm.setup
    within = setup.deadline or SHED_WITHOUT_DEADLINE
    queue = max(1, int(within * storm.load.capacity / storm.load.reconnect_work_s))
    shed = [Mitigation("load shedding", f"each server queues at most {queue:,} setups ({within} s of its work), "
                                        "refusing the excess at once", {"setup": replace(setup, queue_limit=queue)})]
    if setup.deadline and not setup.cancels:
        shed.append(Mitigation("cancellation", "servers drop the work of a setup its client abandoned",
                               {"setup": replace(setup, abandoned_work="cancel")}))
    return [
        Mitigation("as configured", f"{p.name} retry as the scenario sets it", {}),
        Mitigation("exponential", f"exponential backoff, 1 s doubling to {cap} s",
                   {"policy": Policy("exponential", p.retry, 1, cap)}),
        Mitigation("full-jitter", f"full jitter, uniform in [0, min({cap}, 2^n)] s",
                   {"policy": Policy("full-jitter", p.retry, 1, cap)}),
        Mitigation("decorrelated", f"decorrelated jitter, uniform in [1, min({cap}, 3 x previous)] s",
                   {"policy": Policy("decorrelated", p.retry, 1, cap)}),
        Mitigation("retry budget", "at most 3 reconnects per client per 10 minutes",
                   {"budget": 3, "budget_window": 600}),
        Mitigation("circuit breaker", f"{p.name} retry, but after {BREAKER[0]} failed attempts in a row a client "
                                      f"waits {BREAKER[1]} s before each next one",
                   {"policy": replace(p, breaker_after=BREAKER[0], breaker_open=BREAKER[1])}),
        Mitigation("admission", f"each server admits at most {per_second:g} reconnects/s (its snapshot capacity)",
                   {"admission": per_second}),
        *shed,
    ]


def simulated_designs(params_by_design: dict[str, Params]) -> tuple[dict[str, Params], dict[str, str]]:
    """Split designs into those the simulator covers and, for the others, why not.

    A run over several designs goes on with the ones it can simulate and
    names the others (`model.storm.refuse_unsimulated`); none is left out
    silently.
    """
    covered, refused = {}, {}
    for design, params in params_by_design.items():
        try:
            refuse_unsimulated(params)
        except NotEncoded as err:
            refused[design] = err.feature
        else:
            covered[design] = params
    return covered, refused


def storm_table(params_by_design: dict[str, Params], storm: StormParams, *, mode: str = "fluid", seed: int = 0,
                progress=None) -> list[dict]:
    """Simulate every design under every mitigation; rows ranked best first per design.

    Ranking: recovered runs first, by recovery time; then by valid sessions
    reaped (fewer is better).
    """
    rows = []
    for design, params in params_by_design.items():
        for m in mitigations(storm):
            row = storm_run(design, params, storm, m.name, mode=mode, seed=seed)
            rows.append(row)
            if progress is not None:
                progress(design, m.name, row["recovery"])
    return rank_rows(rows)


def storm_run(design: str, params: Params, storm: StormParams, mitigation: str, *, mode: str = "fluid",
              seed: int = 0, certify_as: Scenario | None = None) -> dict:
    """One row of `storm_table`, unranked: `design` under the mitigation named `mitigation`.

    A run of its own, so that the rows can be computed in any order or
    process (`stormcheck.jobs`) and ranked together by `rank_rows`. With
    `certify_as` (the scenario of `params`; sampled mode), the row's
    ``certification`` replays each valid reap through the model
    (`checkers.certify`; its traces are made where they are written).
    """
    m = next(m for m in mitigations(storm) if m.name == mitigation)
    run_storm = m.apply(storm)
    series = simulate(params, run_storm, mode, seed, record=certify_as is not None)
    rec = recovery(series, params, run_storm)
    row = {"design": design, "mitigation": m.name, "description": m.description, "recovery": rec, "series": series}
    if certify_as is not None:
        from .certify import certify

        row["certification"] = certify(certify_as, series)
        series.history = None  # what is kept is in the certificates
    return row


def rank_rows(rows: list[dict]) -> list[dict]:
    """`rows` grouped by design (first appearance), each group ranked best first, with ``rank`` set."""
    out = []
    for design in dict.fromkeys(r["design"] for r in rows):
        group = [r for r in rows if r["design"] == design]
        group.sort(key=lambda r: (r["recovery"].verdict != Verdict.HOLDS,
                                  r["recovery"].seconds if r["recovery"].seconds is not None else float("inf"),
                                  r["recovery"].reaped_valid))
        for rank, row in enumerate(group, start=1):
            row["rank"] = rank
        out.extend(group)
    return out
