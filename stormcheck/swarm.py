"""A Hypothesis swarm: K seeded runs of the same check, read as one result.

``check --engine hypothesis --runs K`` runs the engine K times with seeds
``seed, seed + 1, ..., seed + K - 1``, all drawn in the parent (so the
swarm is the same whether its runs share one process or a cluster), and
merges them here, per property:

* violated, if any run found a counterexample: the first such run, in seed
  order, gives the trace and the reproduction;
* holds (a ``sometimes`` property with a witness), if any run found one;
* otherwise inconclusive, saying how many runs found nothing.

A merged property keeps the seed of the run it came from (`seeds`), so its
trace and reproduction replay exactly that run.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from stormcheck.checkers.result import CheckResult, PropertyResult
from stormcheck.properties.core import Verdict

__all__ = ["merge", "seeds"]


def seeds(result: CheckResult, own: int) -> dict[str, int]:
    """The seed each property's run came from: `own` (the run's seed) unless the result is a merged swarm."""
    return {p.name: result.stats.get("property_seeds", {}).get(p.name, own) for p in result.properties}


def merge(results: Sequence[CheckResult], run_seeds: Sequence[int]) -> CheckResult:
    """One result from the runs `results`, made with `run_seeds` (in the same order)."""
    if len(results) == 1 or "not_run" in results[0].stats:  # nothing was run: every run says the same
        return results[0]
    first = results[0]
    k = len(results)
    merged, picked = [], {}
    for i, prop in enumerate(first.properties):
        runs = [r.properties[i] for r in results]
        chosen = _pick(runs)
        if chosen is None:
            basis = f"none of {k} runs found one; run 1 (seed {run_seeds[0]}): {prop.basis}"
            merged.append(dataclasses.replace(prop, basis=basis))
            picked[prop.name] = run_seeds[0]
            continue
        n, p = chosen
        merged.append(dataclasses.replace(p, basis=f"run {n + 1} of {k} (seed {run_seeds[n]}): {p.basis}"))
        picked[prop.name] = run_seeds[n]
    stats = {
        "runs": k,
        "seeds": list(run_seeds),
        "seed": run_seeds[0],
        "property_seeds": picked,
        "examples": sum(r.stats.get("examples", 0) for r in results),
        "cut_short": sum(r.stats.get("cut_short", 0) for r in results),
        "shrinking": sum(r.stats.get("shrinking", 0) for r in results),
        "steps": sum(r.stats.get("steps", 0) for r in results),
        "seconds": round(sum(r.stats.get("seconds", 0) for r in results), 3),
        "max_examples": first.stats.get("max_examples"),
        "max_steps": first.stats.get("max_steps"),
        "ranges": first.stats.get("ranges", {}),
        **({"ranges_searched": first.stats["ranges_searched"]} if "ranges_searched" in first.stats else {}),
    }
    return dataclasses.replace(first, properties=tuple(merged), stats=stats)


def _pick(runs: list[PropertyResult]) -> tuple[int, PropertyResult] | None:
    for verdict in (Verdict.VIOLATED, Verdict.HOLDS):
        for n, p in enumerate(runs):
            if p.verdict == verdict:
                return n, p
    return None
