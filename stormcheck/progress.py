"""Progress lines on stderr while a search runs: what ``check``, ``plan`` and others print once a search
takes longer than a second (the engines call back about once a second; nothing before that)."""

from __future__ import annotations

import sys

from stormcheck import count

__all__ = ["SearchProgress"]


class SearchProgress:
    """Progress lines on stderr while a long search runs (silent under 1 s)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.enabled, self.label, self.tty = enabled, label, sys.stderr.isatty()
        self.shown = False

    def __call__(self, info: dict) -> None:
        if not self.enabled:
            return
        if info.get("symbolic"):  # the solver: which property, proof or search to what depth
            where = f"search to depth {info['depth']}" if info["phase"] == "search" else "proof"
            line = f"{self.label}: {info['property']}: {where}, {info['seconds']:.0f} s"
        elif "examples" in info:  # a randomised engine counts examples, not states
            rate = info["examples"] / info["seconds"] if info["seconds"] else 0
            line = (f"{self.label}: {info['examples']:,} examples, {count(info['steps'], 'step')}, "
                    f"{rate:,.0f} examples/s, {info['seconds']:.0f} s")
        else:
            # A run of several searches (compositional) names the one on, and gives its own rate.
            phase = f"{info['phase']}: " if info.get("phase") else ""
            rate = info.get("rate", info["states"] / info["seconds"] if info["seconds"] else 0)
            line = (
                f"{self.label}: {phase}{info['states']:,} states, {info['transitions']:,} transitions, "
                f"depth {info['depth']}, {rate:,.0f} states/s, {info['seconds']:.0f} s"
            )
        sys.stderr.write(("\r" + line + "   ") if self.tty else line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\n")
