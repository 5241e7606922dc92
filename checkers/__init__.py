"""The engines: interchangeable consumers of the same model and properties.

Every engine is a function ``(scenario, properties, *, seed, progress) ->
CheckResult``. `ENGINES` maps the names the CLI accepts to them.
"""

from __future__ import annotations

from typing import Callable

from .bfs import check_bfs
from .result import EXIT_CODES, CheckResult, PropertyResult

__all__ = ["ENGINES", "run_engine", "CheckResult", "PropertyResult", "EXIT_CODES"]


def _exhaustive(scenario, properties, *, seed: int = 0, progress: Callable | None = None) -> CheckResult:
    # Breadth-first search is deterministic: the seed only labels the result.
    result = check_bfs(
        scenario.params, properties, scenario=scenario.name, budget=scenario.bounds, progress=progress
    )
    return result


ENGINES: dict[str, Callable[..., CheckResult]] = {"exhaustive": _exhaustive}


def run_engine(name: str, scenario, properties, *, seed: int = 0, progress: Callable | None = None) -> CheckResult:
    """Run the engine called `name`; the error lists the known engines."""
    try:
        engine = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; engines: {', '.join(ENGINES)}") from None
    return engine(scenario, properties, seed=seed, progress=progress)
