"""``stormcheck plan``: propose a safe order for a configuration rollout, or say there is none.

The scenario must have a ``[rollout]`` table (see ``stormcheck list`` for the
shipped ones). Every candidate order of the parts the stack can tell apart
(`stormcheck.checkers.plan`) is checked for ``no_valid_reap`` with the
exhaustive engine, the order the file gives first; with ``--engine symbolic``
each is proved for every value of the scenario's ``[ranges]`` (any number of
clients, unbounded time) or gets a certified counterexample at values the
solver picked (`stormcheck.checkers.plan_z3`). Exit codes: 0 a safe order
was found (printed, with the ``[[rollout.phases]]`` tables to paste into the
scenario), 1 every candidate reaps a valid client, 2 bad input, 3 no
candidate holds but some search did not finish, or (the exhaustive plan of a
scenario with ``[ranges]``, which it searches at the point values only, as
``check`` does) holds only there. When no order is safe the plan judges
configuration B alone with the same engine, and says whether B itself is
unsafe (with its counterexample), in the text and in ``--json``
(``b_alone``) alike.
"""

from __future__ import annotations

import copy
import json
import sys

from stormcheck.checkers import ROLLOUT_STEPS
from stormcheck.checkers.plan import PlanResult, plan
from stormcheck.model.rollout import Phase
from stormcheck.model.scenario import (SHIPPED_FOLDERS, Scenario, ScenarioError, load_scenario, scenario_from_dict,
                                       shipped_names)
from stormcheck.properties.core import Verdict

from .output import points_only_words, ranges_fields
from .progress import SearchProgress

__all__ = ["add_parser", "run", "add_list_argument", "list_shipped", "b_alone", "b_alone_diagnosis"]

_EXIT = {Verdict.HOLDS: 0, Verdict.VIOLATED: 1, Verdict.INCONCLUSIVE: 3}


def add_parser(subparsers) -> None:
    """Add the ``plan`` command to the CLI's subparsers."""
    p = subparsers.add_parser("plan", help="propose a safe order for a scenario's [rollout], or say none exists")
    p.add_argument("scenario", help="a .toml file with a [rollout] table, or a shipped rollout (rollouts/NAME)")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--engine", choices=("exhaustive", "symbolic"), default="exhaustive",
                   help="exhaustive: search each order at the scenario's point; symbolic: prove each over its "
                        "[ranges], or find the parameter values at which it reaps (default: exhaustive)")
    p.add_argument("--steps", type=int, metavar="N",
                   help=f"symbolic: the bound of the search for a counterexample (default {ROLLOUT_STEPS})")
    p.add_argument("--seed", type=int, help="symbolic: the solver's seed (default 0)")


def add_list_argument(parser) -> None:
    """``stormcheck list stacks|rollouts``: the shipped stack presets or rollouts."""
    parser.add_argument("shipped", nargs="?", choices=SHIPPED_FOLDERS, metavar="|".join(SHIPPED_FOLDERS),
                        help="list the shipped stack presets or rollouts instead")


def list_shipped(folder: str) -> int:
    """Print the shipped scenarios of `folder` (``stacks`` or ``rollouts``) with their descriptions."""
    title = {"stacks": "Stack presets (heartbeat defaults)", "rollouts": "Rollouts (stormcheck plan)",
             "proxies": "Stacks behind a proxy or load balancer (idle timeouts)",
             "variants": "Stacks with one setting changed from their defaults",
             "storms": "Fleets whose [storm] table shows a mechanism of metastable failure (stormcheck storm)"}[folder]
    print(f"{title}:")
    for name in shipped_names(folder):
        print(f"  {name:<36}{load_scenario(name).description}")
    if folder == "stacks":
        from stormcheck.conformance.stacks import conformance_lines

        print("\n".join(conformance_lines()))
    return 0


def _phase_toml(phase: Phase) -> str:
    lines = ["[[rollout.phases]]", f'side = "{phase.side}"']
    if phase.side == "servers":
        if phase.part != "both":
            lines.append(f'part = "{phase.part}"')
        if phase.change != "restart":
            lines.append(f'change = "{phase.change}"')
        lines += [f"batch = {phase.batch}", f"pace = {phase.pace}"]
    else:
        lines.append(f'pickup = "{phase.pickup}"')
        if phase.pickup == "release":
            lines.append(f"spread = {phase.spread}")
    return "\n".join(lines)


def _summary(result: PlanResult, diagnosis: dict | None = None) -> dict:
    proposal = result.proposal
    return {
        "scenario": result.scenario,
        "verdict": str(result.verdict),
        "parts": list(result.parts),
        "candidates": [
            {"order": c.label(), "written": c.written, "verdict": str(c.verdict), "basis": c.result.basis,
             "states": c.states, **({"drawn": c.drawn} if c.drawn else {})}
            for c in result.candidates
        ],
        "proposal": proposal.label() if proposal else None,
        **ranges_fields(result.ranges),
        **({"b_alone": diagnosis} if diagnosis is not None else {}),
    }


def b_alone(scenario: Scenario) -> Scenario:
    """`scenario` with configuration B from the start and no rollout: the fleet once the rollout is over."""
    config = copy.deepcopy(scenario.config)
    rollout = config.pop("rollout")
    config["protocol"].update(timeout=rollout["timeout"], interval=rollout["interval"])
    # A ranged timeout or interval is configuration A's: B's are the rollout's own values.
    ranges = config.pop("ranges", {})
    kept = {key: span for key, span in ranges.items() if key not in ("timeout", "interval")}
    if kept:
        config["ranges"] = kept
    config["scenario"]["name"] = f"{scenario.name}-B"
    return scenario_from_dict(config, source=f"{scenario.source}, configuration B alone")


def b_alone_diagnosis(scenario: Scenario, engine: str = "exhaustive", *, steps: int = ROLLOUT_STEPS,
                      seed: int = 0) -> dict:
    """Why no order is safe: configuration B itself is unsafe (its counterexample), or only the ways to it.

    B alone is judged by the plan's `engine`: searched at the point values
    (exhaustive), or proved over the ``[ranges]`` it keeps, else a certified
    counterexample of at most `steps` steps at values the solver picked
    (symbolic, `checkers.plan_z3.decide_order`, as each order is). The same
    words for the text and the JSON output: ``says`` is the sentence the text
    prints, ``counterexample`` (B unsafe alone) its steps and timeline.
    """
    from stormcheck.properties.protocol import no_valid_reap
    from stormcheck.traces.timeline import render_timeline

    fleet = b_alone(scenario)
    p = run_params = fleet.params
    if engine == "symbolic":
        from stormcheck.checkers.plan_z3 import decide_order  # imports z3: only when asked
        from stormcheck.model.scenario import concrete_config
        from stormcheck.properties.core import NotEncoded

        try:
            prop, values, _ = decide_order(fleet, max_steps=steps, seed=seed)
        except NotEncoded as err:
            return {"configuration": {"timeout": p.t0, "interval": p.i0, "unit": p.unit},
                    "property": no_valid_reap.name, "verdict": str(Verdict.INCONCLUSIVE), "basis": str(err),
                    "says": f"whether configuration B alone is safe is not available under --engine symbolic "
                            f"({err}): 'stormcheck plan' without --engine judges it at the point values"}
        if values:  # the counterexample's run is a run of the fleet at the values the solver picked
            run_params = scenario_from_dict(concrete_config(fleet.config, values), fleet.source).params
    else:
        from stormcheck.checkers import points_only
        from stormcheck.checkers.bfs import check_bfs

        result = check_bfs(p, (no_valid_reap,), scenario=fleet.name, budget=fleet.bounds)
        # B is searched at the point values, as the orders are: safe there is not safe at every value of [ranges].
        prop = (points_only(result, fleet.ranges) if fleet.ranges else result).get(no_valid_reap.name)
    b = f"configuration B (timeout {p.t0}, interval {p.i0}{'' if p.unit == 's' else ' ' + p.unit})"
    copy_of = scenario.source.removeprefix('preset:')
    how = (f"to check it: copy {copy_of} with [protocol] timeout = {p.t0}, interval = {p.i0} and no [rollout], "
           "then run 'stormcheck check' on the copy")
    out = {"configuration": {"timeout": p.t0, "interval": p.i0, "unit": p.unit}, "property": no_valid_reap.name,
           "verdict": str(prop.verdict), "basis": prop.basis}
    if prop.verdict == Verdict.VIOLATED:
        out["says"] = (f"{b} is unsafe by itself, with no rollout at all: {no_valid_reap.name} is violated with every "
                       f"server and client on B from the start ({prop.basis}); no order can be safe")
        out["counterexample"] = {"steps": len(prop.run),
                                 "timeline": render_timeline(prop.run, run_params, title=f"{fleet.name}: {b} alone",
                                                             focus=prop)}
        out["to_check"] = how
    elif prop.verdict == Verdict.HOLDS:
        out["says"] = (f"{b} alone is safe ({no_valid_reap.name} holds: {prop.basis}): what is unsafe is every way "
                       f"to reach it; 'stormcheck check {copy_of} --property {no_valid_reap.name}' shows the "
                       "counterexample of the order as written")
    else:
        out["says"] = f"{b} alone was not decided ({prop.basis}): B itself, or every way to reach it, is unsafe; {how}"
    return out


def _print_b_alone(diagnosis: dict) -> None:
    if "counterexample" in diagnosis:
        print(f"{diagnosis['says']}. Its counterexample:\n")
        print(diagnosis["counterexample"]["timeline"])
        print(diagnosis["to_check"])
    else:
        print(diagnosis["says"])


def _print(result: PlanResult, source: str, engine: str, scenario: Scenario, diagnosis: dict | None) -> None:
    print(f"scenario {result.scenario} ({source}): parts that move from A to B: {', '.join(result.parts)}")
    for c in result.candidates:
        mark = str(c.verdict).upper() if c.verdict != Verdict.HOLDS else "holds"
        tag = " (as written)" if c.written else ""
        print(f"  {mark:<13}{c.label()}{tag}")
        print(f"  {'':<13}{c.result.basis}")
    proposal = result.proposal
    if proposal is not None:
        note = " (the order as written)" if proposal.written else ""
        print(f"\nproposed order{note}: {proposal.label()}\n")
        print("\n\n".join(_phase_toml(p) for p in proposal.phases))
        print()
    elif result.verdict == Verdict.VIOLATED:
        if engine == "symbolic" and scenario.ranges:
            print("\nno order is safe for every value in the scenario's ranges: each reaps a valid client at the "
                  "parameter values shown beside it")
        elif engine == "symbolic":
            print("\nno order is safe at the scenario's point values (it has no [ranges]): each reaps a valid "
                  "client in the certified counterexample shown beside it")
        else:
            print("\nno safe order: every candidate order reaps a valid client at some moment of the rollout")
        _print_b_alone(diagnosis)
    elif engine == "symbolic":
        print("\nno candidate order was proved safe, and some could not be shown unsafe either (their "
              "counterexamples to induction are above): raise --steps, or check them with --engine exhaustive")
    elif not all(c.finished for c in result.candidates):
        print("\nno candidate order was shown safe, and some searches did not finish: raise [search] "
              "max_states / max_seconds, or set a max_depth")
    # Else every search finished, at the point values only: the verdict line says so.
    print(f"verdict: {result.verdict}" + (f" ({points_only_words(engine, result.ranges['ranges'])})"
                                          if result.ranges else ""))


def run(args) -> int:
    """Run ``stormcheck plan``; returns the exit code."""
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        print(f"stormcheck: {err}", file=sys.stderr)
        return 2
    if scenario.params.rollout is None:
        print(f"stormcheck: {scenario.source}: has no [rollout] table: there is nothing to plan; "
              "see 'stormcheck list rollouts' for the shipped rollouts", file=sys.stderr)
        return 2

    shown = not args.quiet and not args.json
    bars: list[SearchProgress] = []

    def watch(number, total):
        # A candidate's search reports once it runs past a second, as `check`'s does.
        bars.append(SearchProgress(shown, f"plan {scenario.name}: order {number} of {total}"))
        return bars[-1]

    def progress(label, prop):
        if bars:
            bars[-1].done()
        if shown:
            print(f"stormcheck: checked {label}: {prop.verdict}", file=sys.stderr)

    if args.engine == "exhaustive":
        for flag, value in (("--steps", args.steps), ("--seed", args.seed)):
            if value is not None:
                print(f"stormcheck: {flag} {value}: only used by --engine symbolic (the engine is exhaustive, "
                      f"which searches each order at the scenario's point values to its [search] budget)",
                      file=sys.stderr)
                return 2
    if args.steps is not None and args.steps < 1:
        print(f"stormcheck: --steps {args.steps}: must be at least 1", file=sys.stderr)
        return 2
    steps, seed = args.steps or ROLLOUT_STEPS, args.seed or 0  # the symbolic engine's
    if args.engine == "symbolic":
        from stormcheck.checkers.plan_z3 import plan_symbolic  # imports z3: only when asked
        from stormcheck.properties.core import NotEncoded

        try:
            result = plan_symbolic(scenario, max_steps=steps, seed=seed, progress=progress)
        except NotEncoded as err:
            print(f"stormcheck: {err}", file=sys.stderr)
            return 3
    else:
        result = plan(scenario.params, scenario=scenario.name, budget=scenario.bounds, progress=progress,
                      ranges=scenario.ranges, watch=watch)
    # Why no order is safe: B alone, judged by the same engine as the orders.
    no_order = result.verdict == Verdict.VIOLATED
    diagnosis = b_alone_diagnosis(scenario, args.engine, steps=steps, seed=seed) if no_order else None
    if args.json:
        print(json.dumps(_summary(result, diagnosis), indent=2))
    else:
        _print(result, scenario.source, args.engine, scenario, diagnosis)
    return _EXIT[result.verdict]
