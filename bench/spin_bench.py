"""SPIN on a Promela model of the benchmark's 3 x 3 fleet: its figures beside ours.

`bench/promela/fleet.pml` states gitter-2015 under design `off` for SPIN (its
header says what differs from the Python model). `run_spin` generates the
verifier (``spin -a``), compiles it, runs it in a temporary directory bounded
in time and memory, and reads SPIN's own report (`parse_pan`) into a row like
the benchmark's others. Without ``spin`` or ``gcc`` on PATH the row says what
to install, and the benchmark goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["CFLAGS", "DEPTH", "missing", "parse_pan", "verdict", "run_spin"]

PROMELA = Path(__file__).resolve().parent / "promela"
# Compile flags, each chosen:
#   -DSAFETY     no_valid_reap is a safety property (assertions): no cycle search.
#   -DNOREDUCE   partial-order reduction off. Every step of the model reads the
#                clock's guard over all clients and rewrites the shared client
#                array (sorting), so it reduces nothing (measured: 5,798,515
#                states with or without it); off, SPIN searches the full graph,
#                as the Python `3x3/off` row does.
#   -DMEMLIM     the 2 GB budget: pan stops there and says so.
#   No -DBITSTATE, -DCOLLAPSE or -DHC: an exhaustive, uncompressed store
#   (about 0.5 GB here), so a pass is a complete search and the speed is SPIN's plain one.
CFLAGS = ("-O2", "-DSAFETY", "-DNOREDUCE", "-DMEMLIM=2048")
# pan's -m: the depth bound of its DFS stack. The complete search reaches depth
# 3,653; one that hits the bound is truncated, and pan says so (`verdict`).
DEPTH = 100_000
_PACKAGES = {"spin": "spin", "gcc": "gcc"}

# What pan prints that a row needs (pan.c: `wrap_stats`, `wrapup`).
_FIGURES = {
    "states": re.compile(r"^\s*([\d.e+]+) states, stored", re.M),
    "transitions": re.compile(r"^\s*([\d.e+]+) transitions \(=", re.M),
    "elapsed": re.compile(r"^pan: elapsed time ([\d.e+-]+) seconds", re.M),
    "errors": re.compile(r"errors: (\d+)"),
    "depth": re.compile(r"depth reached (\d+)"),
}
# Each of these means the search stopped before it covered every state.
_UNFINISHED = ("Warning: Search not completed", "max search depth too small", "reached -DMEMLIM bound",
               "out of memory")


def missing() -> str | None:
    """What to install before SPIN can run here, as the row says it; None when ``spin`` and ``gcc`` are on PATH."""
    absent = [tool for tool in _PACKAGES if shutil.which(tool) is None]
    if not absent:
        return None
    return f"{' and '.join(absent)} not installed (apt-get install {' '.join(_PACKAGES[t] for t in absent)})"


def parse_pan(text: str) -> dict:
    """SPIN's report of one pan run: states, transitions, elapsed seconds, errors, depth, and what stopped it.

    Counts are ints (pan prints ``%9.8g``, so a count of nine digits or more
    comes in e-notation); a figure pan did not print is None. ``unfinished``
    lists the messages that say the search did not cover every state;
    ``assertion`` is the first violated assertion's line, if any.
    """
    out: dict = {}
    for key, pattern in _FIGURES.items():
        m = pattern.search(text)
        value = float(m.group(1)) if m else None
        out[key] = value if key == "elapsed" or value is None else int(value)
    out["unfinished"] = [msg for msg in _UNFINISHED if msg in text]
    m = re.search(r"^pan:\d+: (assertion violated.*)$", text, re.M)
    out["assertion"] = m.group(1).strip() if m else None
    return out


def verdict(figures: dict, timed_out: bool = False) -> str:
    """holds, violated or inconclusive: a violation found stands, a pass needs a finished search."""
    if figures["errors"]:
        return "violated"
    if timed_out or figures["unfinished"] or figures["errors"] is None or figures["states"] is None:
        return "inconclusive"
    return "holds"


def _build(tmp: str, model: Path, defines: list[str]) -> None:
    for argv in (["spin", *(f"-D{d}" for d in defines), "-a", str(model)], ["gcc", *CFLAGS, "-o", "pan", "pan.c"]):
        proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=300)
        # spin -a reports a syntax error on stdout and still exits 0: pan.c is missing then.
        if proc.returncode != 0 or (argv[0] == "spin" and not (Path(tmp) / "pan.c").is_file()):
            raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}: {(proc.stdout + proc.stderr)[-300:]}")


def _run_pan(tmp: str, max_seconds: float) -> tuple[str, object, bool]:
    """Run the verifier; its output, its own resource usage (CPU, peak memory) and whether it ran out of time.

    `os.wait4` gives this one process's usage: the build's compiler, a child
    of the same process, would otherwise count in the peak memory.
    """
    out = Path(tmp) / "pan.out"
    with out.open("w") as f:
        proc = subprocess.Popen(["./pan", f"-m{DEPTH}", "-n"], cwd=tmp, stdout=f, stderr=subprocess.STDOUT)
    deadline, timed_out = time.monotonic() + max_seconds, False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            timed_out = True
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return out.read_text(), usage, timed_out


def run_spin(name: str, case: dict) -> dict:
    """One SPIN row: build and run the case's model, report SPIN's figures (or what to install)."""
    absent = missing()
    if absent:
        return {"case": name, "skipped": absent}
    with tempfile.TemporaryDirectory(prefix="stormcheck-spin-") as tmp:
        t0 = time.perf_counter()
        _build(tmp, PROMELA / case["model"], case["defines"])
        build = time.perf_counter() - t0
        text, usage, timed_out = _run_pan(tmp, case["max_seconds"])
    fig = parse_pan(text)
    seconds = fig["elapsed"]
    return {
        "case": name,
        "clients": case["clients"],
        "verdict": verdict(fig, timed_out),
        "steps": None,
        "states": fig["states"],
        "transitions": fig["transitions"],
        "complete": not (timed_out or fig["unfinished"]),
        "seconds": seconds if seconds is not None else 0.0,
        "states_per_s": round(fig["states"] / seconds) if seconds and fig["states"] else None,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "build_s": round(build, 2),
        "depth": fig["depth"],
        "assertion": fig["assertion"],
        "unfinished": fig["unfinished"] + (["timed out"] if timed_out else []),
    }
