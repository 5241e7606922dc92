"""Do the engines agree? Comparing verdicts with the bounds behind them.

Two verdicts on the same property contradict each other only if both are
definite *and* their evidence overlaps:

* a run that decides the property (a counterexample of an ``always``
  property, a witness of a ``sometimes`` one) of n steps contradicts a
  search that found none, if that search was complete, or bounded by K >= n
  steps. With K < n there is no contradiction: the bounded search could not
  see the run (the symbolic engine's 12-step bound against a 13-step
  counterexample), and the report says so;
* an inconclusive verdict contradicts nothing: that engine did not decide;
  nor does a property the engine does not check at all (its result has
  ``checked`` False), which the report shows as "not checked", not as a
  search that ran out.

So "the engines agree" means: no contradiction, and every engine that
decided decided the same way, up to its stated bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from stormcheck import count
from stormcheck.properties.core import SOMETIMES, Verdict
from stormcheck.properties.protocol import by_name

from .report_core import Cell

__all__ = ["Agreement", "agreement", "design_agreement", "search_bound", "engine_verdict", "combined_verdict",
           "NOT_CHECKED"]

# What a report shows where an engine does not check a property (or any
# property of a design): not a verdict, the absence of one.
NOT_CHECKED = "not checked"
_ORDER = (Verdict.VIOLATED, Verdict.INCONCLUSIVE, Verdict.HOLDS)


@dataclass(frozen=True)
class Agreement:
    """How the engines' verdicts on one property relate.

    `status` is ``agree`` (every deciding engine said `verdict`),
    ``consistent`` (a bounded "holds" beside a longer run: no contradiction),
    ``single`` (one engine decided), ``undecided`` or ``disagree``.
    `verdict` is the verdict the evidence supports (inconclusive when none
    or when engines disagree); `text` says it in words, engine by engine.
    """

    status: str
    verdict: Verdict
    text: str

    @property
    def contradicts(self) -> bool:
        return self.status == "disagree"


def search_bound(cell: Cell, name: str) -> int | None:
    """How far `cell`'s engine looked for a run of property `name` without finding one.

    None: without bound (a complete exhaustive search, or a proof such as
    the symbolic engine's inductive invariant); else the depth bound.
    """
    stats = cell.result.stats
    if cell.engine == "exhaustive":
        return None if stats.get("complete") else stats.get("depth_bound")
    per_property = stats.get("properties", {}).get(name, {})
    if per_property.get("proof", {}).get("status") == "proved":
        return None
    return stats.get("depth_bound")


def _found(prop) -> Verdict:
    """The verdict a run decides: a witness makes a ``sometimes`` property hold, any other run violates."""
    return Verdict.HOLDS if prop.modality == SOMETIMES else Verdict.VIOLATED


def _exhausted(prop) -> Verdict:
    """The verdict of a search that found no run: the opposite of `_found`."""
    return Verdict.VIOLATED if prop.modality == SOMETIMES else Verdict.HOLDS


def _evidence(cell: Cell, name: str) -> tuple[str, int | None, str]:
    """(kind, steps or bound, words) of `cell`'s verdict on property `name`.

    kind is ``run`` (a run decides the property), ``none`` (a search found
    no run, to the bound given) or ``undecided``.
    """
    p = cell.result.get(name)
    prop = by_name(name)
    if not p.checked:
        return "undecided", None, f"{cell.engine}: not checked ({p.basis})"
    if p.verdict == Verdict.INCONCLUSIVE:
        return "undecided", None, f"{cell.engine}: undecided ({p.basis})"
    if p.verdict == _found(prop) and p.run is not None:
        what = "witness" if prop.modality == SOMETIMES else "counterexample"
        return "run", len(p.run), f"{cell.engine}: {p.verdict}, a {what} of {count(len(p.run), 'step')}"
    bound = search_bound(cell, name)
    within = "no run at any length" if bound is None else f"no run of <= {count(bound, 'step')}"
    return "none", bound, f"{cell.engine}: {p.verdict} ({within})"


def agreement(cells: list[Cell], name: str) -> Agreement:
    """Compare the verdicts of `cells` (one per engine, same scenario and design) on property `name`."""
    prop = by_name(name)
    found, searched, undecided, words = [], [], [], []
    for cell in cells:
        kind, n, text = _evidence(cell, name)
        words.append(text)
        {"run": found, "none": searched, "undecided": undecided}[kind].append((cell.engine, n))
    shortest = min((n for _, n in found), default=None)
    clash = [(e, b) for e, b in searched if shortest is not None and (b is None or b >= shortest)]
    text = "; ".join(words)
    if clash:
        who = ", ".join(e for e, _ in clash)
        return Agreement("disagree", Verdict.INCONCLUSIVE,
                         f"DISAGREE: a run of {count(shortest, 'step')} exists, yet {who} searched past it and found none. "
                         f"{text}")
    deciders = len(found) + len(searched)
    if found:
        verdict = _found(prop)
        if searched:  # every search that found nothing was bounded below the run
            bounds = ", ".join(f"{e} to {count(b, 'step')}" for e, b in searched)
            return Agreement("consistent", verdict,
                             f"consistent: the shortest run has {count(shortest, 'step')}, beyond the bounded search "
                             f"({bounds}). {text}")
    elif searched:
        verdict = _exhausted(prop)
    else:
        return Agreement("undecided", Verdict.INCONCLUSIVE, f"no engine decided. {text}")
    return Agreement("agree" if deciders > 1 else "single", verdict, text)


def design_agreement(cells: list[Cell], names: list[str]) -> tuple[str, dict[str, Agreement]]:
    """One word for a design, and the agreement per property of `names`.

    ``disagree`` if any property's verdicts contradict; else ``agree`` if
    two engines or more decided some property; else ``one engine`` (a single
    engine decided, nothing to compare) or ``undecided``.
    """
    agreed = {name: agreement(cells, name) for name in names}
    statuses = {a.status for a in agreed.values()}
    if "disagree" in statuses:
        return "disagree", agreed
    if statuses & {"agree", "consistent"}:
        return "agree", agreed
    return ("one engine" if "single" in statuses else "undecided"), agreed


def _worst(verdicts) -> Verdict:
    return next((v for v in _ORDER if v in set(verdicts)), Verdict.HOLDS)


def engine_verdict(cell: Cell) -> Verdict | str:
    """One engine's verdict on a design, over the properties it checks (worst first).

    `NOT_CHECKED` when it checks none of them: an engine that does not
    check a property has no say in its design's verdict.
    """
    checked = [p.verdict for p in cell.result.properties if p.checked]
    return _worst(checked) if checked else NOT_CHECKED


def combined_verdict(cells: list[Cell], agreed: dict[str, Agreement]) -> tuple[Verdict, str]:
    """The design's verdict over every property and engine, and which engines decided it, in words.

    Per property, the verdict the evidence supports (`agreement`); the design's
    is the worst of those. Violated names the violated properties and the
    engines that showed each; holds names the engines that decided, with how
    many of the properties each decided; inconclusive names what no engine
    decided (or on what the engines disagree).
    """
    verdict = _worst(a.verdict for a in agreed.values())
    if verdict == Verdict.VIOLATED:
        parts = []
        for name, a in agreed.items():
            if a.verdict == Verdict.VIOLATED:
                by = [c.engine for c in cells if c.result.get(name).checked
                      and c.result.get(name).verdict == Verdict.VIOLATED]
                parts.append(f"{name} by {', '.join(by)}")
        return verdict, "decided: " + "; ".join(parts)
    if verdict == Verdict.INCONCLUSIVE:
        bad = [n for n, a in agreed.items() if a.contradicts]
        if bad:
            return verdict, f"the engines disagree on {', '.join(bad)}"
        open_ = [n for n, a in agreed.items() if a.verdict == Verdict.INCONCLUSIVE]
        return verdict, f"no engine decided {', '.join(open_)}"
    decided = []
    for c in cells:
        k = sum(_evidence(c, name)[0] != "undecided" for name in agreed)
        if k:
            decided.append(f"{c.engine} ({k} of {len(agreed)} properties)")
    return verdict, "decided by " + ", ".join(decided)
