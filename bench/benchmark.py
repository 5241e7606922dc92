"""Benchmark of the exhaustive engine: states, states/s, peak memory, time to verdict.

Run it with the project's venv: ``.venv/bin/python bench/benchmark.py`` (after
``bin/test`` or ``bin/stormcheck`` made the venv). Each case runs in a fresh
child process so that its peak resident memory is its own. Figures vary
with the machine; compare the ratios of one run, not numbers across runs.

Cases:

* ``incident``: the built-in 2015 scenario under the 2015 design, time until
  the ``no_valid_reap`` counterexample is found (target: under 1 s).
* every named design on the 2015 scenario (1 client), to verdict.
* a 3-server x 3-client fleet under the safe designs, searched with no depth
  bound (target: a complete search within 60 s and 2 GB).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time

CASES: dict[str, dict] = {}


def _case(name: str, scenario: str, design: str, edit=None, max_seconds: float = 300) -> None:
    CASES[name] = {"scenario": scenario, "design": design, "edit": edit or {}, "max_seconds": max_seconds}


_case("incident", "gitter-2015", "per-server")
for _d in ("off", "per-server", "fleet-wide", "fleet-wide-staged", "per-session-branch", "per-session"):
    _case(f"gitter-2015/{_d}", "gitter-2015", _d)
# Three clients, the safe designs, no depth bound: the scale target. `off` with
# both RTT choices; the adjusting safe designs with one RTT, which is where the
# product of three clients' phases under two timeouts outgrows the budget.
_FLEET = {"topology": {"clients": 3}, "faults": {"server_loss": 1, "client_crash": 1, "client_cut": 0},
          "search": {"max_depth": 0}}
_case("3x3/off", "gitter-2015", "off", _FLEET, max_seconds=300)
_ONE_RTT = {**_FLEET, "protocol": {"rtt": [2]}}
_case("3x3-rtt2/off", "gitter-2015", "off", _ONE_RTT, max_seconds=300)
for _d in ("per-session", "fleet-wide-staged"):
    _case(f"3x3-rtt2/{_d}", "gitter-2015", _d, _ONE_RTT, max_seconds=120)


def _merge(base: dict, edit: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in edit.items():
        out.setdefault(section, {}).update(values)
    return out


def run_case(name: str) -> dict:
    """Run one case in this process and return its figures."""
    from dataclasses import replace

    from stormcheck.checkers.bfs import check_bfs
    from stormcheck.model.scenario import load_scenario, scenario_from_dict
    from stormcheck.properties.protocol import PROPERTIES

    case = CASES[name]
    base = load_scenario(case["scenario"], design=case["design"])
    scenario = scenario_from_dict(_merge(base.config, case["edit"]), source=f"bench:{name}")
    bounds = replace(scenario.bounds, max_seconds=case["max_seconds"], max_states=10_000_000)
    t0 = time.perf_counter()
    result = check_bfs(scenario.params, PROPERTIES, scenario=scenario.name, budget=bounds)
    seconds = time.perf_counter() - t0
    main = result.get("no_valid_reap")
    return {
        "case": name,
        "clients": scenario.params.clients,
        "verdict": str(main.verdict),
        "steps": len(main.run) if main.run is not None else None,
        "states": result.stats["states"],
        "transitions": result.stats["transitions"],
        "complete": result.stats["complete"],
        "seconds": round(seconds, 3),
        "states_per_s": round(result.stats["states"] / seconds) if seconds else None,
        # ru_maxrss is in KiB on Linux.
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", help=f"cases to run (default: all): {', '.join(CASES)}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.child)))
        return 0
    names = args.cases or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}", file=sys.stderr)
        return 2
    head = f"{'case':<32}{'verdict':<14}{'steps':>6}{'states':>11}{'states/s':>10}{'seconds':>9}{'peak MiB':>10}  complete"
    print(head)
    print("-" * len(head))
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name:<32}failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout)
        steps = "-" if r["steps"] is None else r["steps"]
        print(f"{name:<32}{r['verdict']:<14}{steps:>6}{r['states']:>11,}{r['states_per_s']:>10,}"
              f"{r['seconds']:>9.2f}{r['peak_mib']:>10.1f}  {r['complete']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
