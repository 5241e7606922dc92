"""The engines' budget options, one definition for every command that runs an engine on a scenario.

``check`` and ``sweep`` take the same budget: ``--examples`` and ``--steps``
for the engines that take them (`checkers.ENGINE_OPTIONS`), ``--max-states``,
``--max-seconds`` and ``--max-depth`` as the scenario's ``[search]`` keys
(`flags.with_flags`, so the file format's own rules check them). An option
the chosen engine would ignore is refused, naming the engine, before any
work: a budget that is silently dropped is a run nobody asked for.
"""

from __future__ import annotations

from stormcheck.checkers import ENGINE_OPTIONS, ROLLOUT_STEPS, SYMBOLIC_STEPS, unused_seed
from stormcheck.model.scenario import Scenario, ScenarioError

from . import synth_cmd
from .flags import with_flags

__all__ = ["add_arguments", "engine_options", "with_budget", "MAX_STEPS"]

# The longest runs an engine can be asked for and still finish.
MAX_STEPS = {"hypothesis": 1000, "symbolic": synth_cmd.MAX_STEPS}
_STEPS_WHY = {
    "hypothesis": "50 examples of 1000 steps take about a minute; far longer runs overflow Hypothesis's "
                  "buffer for one example",
    "symbolic": synth_cmd.STEPS_WHY,
}

# The search budget ([search], --max-*) bounds the engines that enumerate
# states; the Hypothesis engine is bounded by --examples and --steps instead.
_IGNORES_BUDGET = ("hypothesis", "symbolic")
_SEARCH_KEYS = ("max_states", "max_seconds", "max_depth")


def add_arguments(parser) -> None:
    """``--examples``, ``--steps`` and ``--max-states/-seconds/-depth`` on a command's parser."""
    parser.add_argument("--examples", type=int, metavar="N",
                        help="hypothesis: runs per always-property (default 1000)")
    parser.add_argument("--steps", type=int, metavar="N", help="hypothesis: steps per run at most (default 30); "
                        f"symbolic: the BMC bound (default: the scenario's depth bound, else {SYMBOLIC_STEPS}; "
                        f"{ROLLOUT_STEPS} with a rollout)")
    parser.add_argument("--max-states", type=int,
                        help="exhaustive, compositional: override the scenario's state budget")
    parser.add_argument("--max-seconds", type=float,
                        help="exhaustive, compositional: override the scenario's time budget")
    parser.add_argument("--max-depth", type=int, help="exhaustive: override the scenario's depth bound (0: none)")


def engine_options(args) -> dict:
    """The engine options given (`ENGINE_OPTIONS`), checked against ``args.engine``; with ``--seed``.

    Raises `ScenarioError` (bad input, exit 2) for an option the engine does
    not use or a value out of range.
    """
    refused = unused_seed(args.engine, args.seed)
    if refused:
        raise ScenarioError(refused)
    takes = ENGINE_OPTIONS.get(args.engine, ())
    for key in ("examples", "steps"):
        if getattr(args, key) is not None and key not in takes:
            users = " or ".join(f"--engine {e}" for e, opts in ENGINE_OPTIONS.items() if key in opts)
            raise ScenarioError(f"--{key}: only used by {users} (the engine is {args.engine})")
    if args.engine in _IGNORES_BUDGET:
        for key in _SEARCH_KEYS:
            if getattr(args, key) is not None:
                bounded_by = "--examples and --steps" if args.engine == "hypothesis" else "--steps"
                raise ScenarioError(f"--{key.replace('_', '-')}: not used by --engine {args.engine}, "
                                    f"which is bounded by {bounded_by}")
    if args.engine == "compositional" and args.max_depth is not None:
        raise ScenarioError("--max-depth: not used by --engine compositional, whose search covers runs of any "
                            "length (bound it with --max-states or --max-seconds)")
    options = {}
    for key in takes:
        value = getattr(args, key, None)
        if value is None:
            continue
        if value < 1:
            raise ScenarioError(f"--{key} {value}: must be a whole number >= 1")
        most = MAX_STEPS.get(args.engine) if key == "steps" else None
        if most is not None and value > most:
            raise ScenarioError(f"--steps {value}: at most {most} with --engine {args.engine} "
                                f"({_STEPS_WHY[args.engine]})")
        options[key] = value
    return options


def with_budget(scenario: Scenario, args) -> Scenario:
    """`scenario` with the ``--max-*`` given, as its ``[search]`` keys (checked by the format's rules)."""
    return with_flags(scenario, "search", {key: getattr(args, key) for key in _SEARCH_KEYS})
