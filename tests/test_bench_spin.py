"""The benchmark's reading of SPIN's output (bench/spin_bench.py), on reports pan 6.5.2 printed for
bench/promela/fleet.pml. No SPIN needed: the samples are captured text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("spin_bench", Path(__file__).resolve().parents[1] / "bench/spin_bench.py")
spin_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(spin_bench)

_HEAD = """
(Spin Version 6.5.2 -- 6 December 2019)
{warning}
Full statespace search for:
\tnever claim         \t- (none specified)
\tassertion violations\t+
\tcycle checks       \t- (disabled by -DSAFETY)
\tinvalid end states\t+
"""

# The complete 3 x 3 search under design off (progress lines kept: they must not be read as totals).
COMPLETE = "Depth=    3432 States=    1e+06 Transitions= 2.55e+06 Memory=   235.300\tt=      1.7 R=   6e+05\n" + \
    _HEAD.format(warning="") + """
State-vector 68 byte, depth reached 3653, errors: 0
  5798515 states, stored
  9756891 states, matched
 15555406 transitions (= stored+matched)
      350 atomic steps
hash conflicts:    766161 (resolved)

pan: elapsed time 15.7 seconds
pan: rate 369332.17 states/second
"""

# -DSEEDED_BUG: the publish path cuts at 1.0 x T.
VIOLATED = """pan:1: assertion violated  !((cl[i].phase!=3)) (at depth 24)
pan: wrote fleet.pml.trail
""" + _HEAD.format(warning="Warning: Search not completed") + """
State-vector 68 byte, depth reached 24, errors: 1
        8 states, stored
        0 states, matched
        8 transitions (= stored+matched)

pan: elapsed time 0.01 seconds
"""

# The same search with -m500: truncated, and pan says so only in its first line.
TRUNCATED = "error: max search depth too small\n" + _HEAD.format(warning="") + """
State-vector 68 byte, depth reached 499, errors: 0
  5422406 states, stored
  9060983 states, matched
 14483389 transitions (= stored+matched)

pan: elapsed time 11.4 seconds
"""


def test_complete_search_holds_with_its_figures():
    fig = spin_bench.parse_pan(COMPLETE)
    assert (fig["states"], fig["transitions"], fig["elapsed"], fig["errors"], fig["depth"]) == (
        5798515, 15555406, 15.7, 0, 3653)
    assert fig["unfinished"] == [] and fig["assertion"] is None
    assert spin_bench.verdict(fig) == "holds"


def test_seeded_bug_is_a_violation():
    fig = spin_bench.parse_pan(VIOLATED)
    assert fig["errors"] == 1 and fig["states"] == 8
    assert fig["assertion"].startswith("assertion violated") and "(at depth 24)" in fig["assertion"]
    assert spin_bench.verdict(fig) == "violated"


def test_unfinished_search_is_never_a_pass():
    fig = spin_bench.parse_pan(TRUNCATED)
    assert fig["errors"] == 0 and fig["unfinished"] == ["max search depth too small"]
    assert spin_bench.verdict(fig) == "inconclusive"
    # Out of time (the benchmark killed pan), or no report at all.
    assert spin_bench.verdict(spin_bench.parse_pan(COMPLETE), timed_out=True) == "inconclusive"
    assert spin_bench.verdict(spin_bench.parse_pan("")) == "inconclusive"


def test_large_counts_in_e_notation():
    fig = spin_bench.parse_pan(COMPLETE.replace("  5798515 states, stored", "1.2345679e+08 states, stored"))
    assert fig["states"] == 123456790


def test_missing_tools_name_the_package(monkeypatch):
    monkeypatch.setattr(spin_bench.shutil, "which", lambda tool: None if tool == "spin" else "/usr/bin/" + tool)
    assert spin_bench.missing() == "spin not installed (apt-get install spin)"
    monkeypatch.setattr(spin_bench.shutil, "which", lambda tool: "/usr/bin/" + tool)
    assert spin_bench.missing() is None
