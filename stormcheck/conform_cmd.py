"""``stormcheck conform``: make the real Faye + Redis stack the judge of a trace or a scenario.

``stormcheck conform TRACE`` drives a stored ITF trace through a real fleet
(see ``stormcheck.conformance.faye_trace``): every step matched, or the first
divergence with both sides' events, and whether the trace's finding happened
on the real stack. ``stormcheck conform SCENARIO --free-run --seconds N
--seed K`` runs the scenario's fleet on real timers with random traffic and
reports the valid reaps and lost messages its logs show.

Exit codes: 0 reproduced (the real run showed what the model said; a free
run: no valid reap and no lost message), 1 diverged or not reproduced (a free
run: the real logs show a valid reap or a lost message), 2 bad input
(a trace the real software cannot express is refused before anything starts),
3 the stack could not start (the message says what to install).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

from stormcheck.conformance import STACK_RUN_KINDS as STACK_RUNS, time_unit_refusal
from stormcheck.model.scenario import ScenarioError, load_scenario

__all__ = ["STACK", "add_parser", "run"]

STACK = "faye-1.4.3/faye-redis-0.2.0"
ENGINES = ("published", "destroying")
ENGINE_OF_RULE = {"destroy": "destroying", "drop-queue": "published"}  # [protocol] publish_expired


class _Bad(ValueError):
    pass


def add_parser(subparsers) -> None:
    """Add the ``conform`` command to the CLI's subparsers."""
    p = subparsers.add_parser("conform", help="drive a trace (or a free run) through the real software: Faye + Redis, or a stack's own library")
    p.add_argument("target", help="an ITF trace (.itf.json), or with --free-run a scenario (preset or .toml)")
    p.add_argument("--scale", type=float,
                   help="Faye: wall seconds per model second (default 0.1; 0.05 is twice as fast)")
    p.add_argument("--engine", choices=ENGINES,
                   help="the Redis engine: published faye-redis 0.2.0, or destroying (Gitter's publish rule); "
                        "default: the one the trace's [protocol] publish_expired names")
    p.add_argument("--json", action="store_true", help="print one machine-readable summary on stdout")
    p.add_argument("--free-run", action="store_true", help="real timers and random traffic instead of a trace")
    p.add_argument("--seconds", type=float, help="free run: model seconds to run (default 400)")
    p.add_argument("--seed", type=int, help="free run: seed of the random traffic (default 0)")
    p.add_argument("--design", help="free run: the scenario's design to run (default: the scenario's own)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--run", action="append", choices=STACK_RUNS,
                   help="a stack scenario (websockets, Socket.IO, MQTT, nginx): only this run (repeatable; "
                        "default: every run of the scenario); stacks run at their own time scale")


# Options of one kind of target only; a stack scenario's runs take none of them. Given where they
# do not apply they are refused, as `check` refuses another engine's options, not silently dropped.
_FREE_ONLY = (("seconds", "--seconds"), ("seed", "--seed"), ("design", "--design"))
_FAYE_ONLY = (("scale", "--scale"), ("engine", "--engine"), ("free_run", "--free-run"))


def _given(args, names) -> list[str]:
    return [flag for attr, flag in names if getattr(args, attr, None) not in (None, False)]


def _check_stack_args(args) -> None:
    """A stack scenario runs its library at the stack's own scale, every run or those of --run."""
    given = _given(args, _FAYE_ONLY + _FREE_ONLY)
    if given:
        raise _Bad(f"{given[0]}: not used for the stack scenario {args.target}, which runs on its own real "
                   f"library at the stack's time scale (choose its runs with --run); {given[0]} is an option "
                   f"of a Faye trace or a Faye free run")


def _check_target(args) -> None:
    """A trace is JSON; a free run's target is a scenario: say which was given when they are mixed up."""
    is_json = args.target.endswith(".json")
    if args.free_run and is_json:
        raise _Bad(f"--free-run with {args.target}: a free run takes a scenario (a preset name or a .toml "
                   f"file), and this is a trace; drop --free-run to drive the trace through the real stack")
    if args.free_run or is_json:
        return
    try:
        scenario = load_scenario(args.target)
    except ScenarioError:
        return  # neither a scenario nor a .json name: read as a trace, whose error names the file
    raise _Bad(f"{args.target}: is a scenario ({scenario.source}), not a trace; conform drives a trace "
               f"(.itf.json, written by 'stormcheck check --out'), or runs a Faye scenario with --free-run "
               f"(real timers, random traffic)")


def _check_args(args) -> None:
    _check_target(args)
    if args.run:
        raise _Bad(f"--run {args.run[0]}: only for a stack scenario (websockets, Socket.IO, MQTT, nginx, gRPC); "
                   f"a Faye {'free run' if args.free_run else 'trace'} is one run")
    if not args.free_run:
        given = _given(args, _FREE_ONLY)
        if given:
            raise _Bad(f"{given[0]}: only used with --free-run; a trace carries its own "
                       f"{'design' if given[0] == '--design' else 'length and steps'}")
    args.scale = 0.1 if args.scale is None else args.scale
    args.seconds = 400.0 if args.seconds is None else args.seconds
    args.seed = 0 if args.seed is None else args.seed
    if not math.isfinite(args.scale) or not 0.02 <= args.scale <= 1:
        raise _Bad(f"--scale {args.scale:g}: must be between 0.02 and 1 (wall seconds per model second)")
    if args.free_run and (not math.isfinite(args.seconds) or not 10 <= args.seconds <= 3600):
        raise _Bad(f"--seconds {args.seconds:g}: must be between 10 and 3600 model seconds")


def run(args) -> int:
    # The real stacks' drivers (subprocesses, sockets, HTTP): loaded by this command only.
    from stormcheck.conformance.faye_fleet import StackMissing
    from stormcheck.conformance.procs import StartError, WaitTimeout
    from stormcheck.conformance.stacks import cli as stacks_cli

    try:
        if not args.free_run and stacks_cli.handles(args.target):
            _check_stack_args(args)
            return stacks_cli.run(args)  # websockets, Socket.IO, MQTT, nginx, gRPC: conformance/stacks
        _check_args(args)
        return _free(args) if args.free_run else _trace(args)
    except (_Bad, ScenarioError) as err:
        print(f"stormcheck conform: {err}", file=sys.stderr)
        return 2
    except (StackMissing, StartError, WaitTimeout) as err:
        print(f"stormcheck conform: {err}", file=sys.stderr)
        return 3


def _engine_for(config: dict, given: str | None) -> str:
    if given:
        return given
    rule = config.get("protocol", {}).get("publish_expired", "destroy")
    return ENGINE_OF_RULE.get(rule, "destroying")


def _trace(args) -> int:
    from stormcheck.conformance.faye_fleet import ensure_stack
    from stormcheck.conformance.faye_trace import LEAD, drive, load_trace, refusal, tolerance

    try:
        doc = load_trace(Path(args.target))
    except ValueError as err:
        raise _Bad(str(err)) from None
    why = refusal(doc)
    if why:
        raise _Bad(f"{args.target}: the real Faye stack cannot express this trace: {why}")
    engine = _engine_for(doc["#meta"]["scenario_config"], args.engine)
    ensure_stack()
    tol = tolerance(doc["#meta"]["scenario_config"])
    if not args.json:
        print(f"conform {args.target} on {STACK}, engine {engine}")
        print(f"  scale {args.scale:g} (1 model s = {args.scale:g} wall s); client steps matched within "
              f"+-{tol:g} model s; driven steps {LEAD:g} model s early")
    progress = None if (args.json or args.quiet) else _step_printer
    result = drive(doc, args.target, engine, args.scale, progress=progress)
    if args.json:
        print(json.dumps(_summary(result), indent=2))
    else:
        _print_result(result)
    return 0 if result.reproduced else 1


def _step_printer(step) -> None:
    mark = "matched" if step.ok else "DIVERGED"
    print(f"  step {step.index:>2}  t={step.at:>4}  {step.kind:<9} {mark}")
    for m in step.model:
        print(f"      model: {m}")
    for r in step.real:
        print(f"      real:  {r}")
    if not step.ok:
        print(f"      why:   {step.why}")
    sys.stdout.flush()


def _print_result(result) -> None:
    if result.reproduced:
        print(f"finding {result.finding}: happened on the real stack; every step matched "
              f"({result.wall_seconds:.1f} s wall)")
    else:
        d = result.divergence
        where = f"first divergence at step {d.index} (t={d.at}): {d.why}" if d else "the run ended early"
        print(f"finding {result.finding}: did NOT happen on the real stack; {where} ({result.wall_seconds:.1f} s wall)")
    print(f"verdict: {'reproduced' if result.reproduced else 'not reproduced'}")


def _summary(result) -> dict:
    return {
        "stack": STACK, "trace": result.trace, "engine": result.engine, "scale": result.scale,
        "tolerance": result.tolerance, "finding": result.finding, "reproduced": result.reproduced,
        "divergence": asdict(result.divergence) if result.divergence else None,
        "steps": [asdict(s) for s in result.steps], "session_ages": result.ages,
        "wall_seconds": round(result.wall_seconds, 2),
    }


class _FreeProgress:
    """A free run's model time on `stream`: rewritten in place on a terminal, else a line a second at most.

    (A log or a pipe once got every update on one line, joined by carriage returns.)
    """

    def __init__(self, enabled: bool, stream) -> None:
        self.enabled, self.stream = enabled, stream
        self.tty = enabled and stream.isatty()
        self.last = None  # monotonic time of the last line (not a terminal)
        self.shown = False

    def __call__(self, at: float, total: float) -> None:
        if not self.enabled:
            return
        line = f"free run: t={at:.0f}/{total:.0f} model s"
        if self.tty:
            self.stream.write("\r" + line)
        else:
            now = time.monotonic()
            if self.last is not None and now - self.last < 1.0:
                return
            self.last = now
            self.stream.write(line + "\n")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _free(args) -> int:
    from stormcheck.conformance.faye_fleet import ensure_stack
    from stormcheck.conformance.faye_free import free_run

    scenario = load_scenario(args.target, design=args.design)
    cfg = scenario.config
    if (why := time_unit_refusal(cfg)) is not None:
        raise _Bad(f"{args.target}: {why}")
    for table in ("heartbeat", "rollout"):
        if table in cfg:
            raise _Bad(f"{args.target}: [{table}] table: a free run drives the Faye stack only")
    design = scenario.design.name
    if design not in ("off", "per-server", "fleet-wide"):
        raise _Bad(f"{args.target}: design {design!r}: Faye has one timeout per process; "
                   f"a free run drives off, per-server or fleet-wide")
    engine = _engine_for(cfg, args.engine)
    ensure_stack()

    progress = _FreeProgress(not (args.json or args.quiet), sys.stderr)
    r = free_run(scenario, engine, args.seconds, args.seed, args.scale, progress=progress)
    progress.done()
    if args.json:
        print(json.dumps({"stack": STACK, **asdict(r), "clean": r.clean}, indent=2))
    else:
        print(f"free run of {scenario.name} (design {design}) on {STACK}, engine {engine}: "
              f"{args.seconds:g} model s at scale {args.scale:g}, seed {args.seed}, {r.wall_seconds:.1f} s wall")
        print(f"  {r.publishes} messages published, {r.delivered} deliveries")
        print(f"  valid reaps: {len(r.valid_reaps)}")
        for line in r.valid_reaps[:10]:
            print(f"    {line}")
        print(f"  lost messages: {len(r.lost)}")
        for line in r.lost[:10]:
            print(f"    {line}")
        print(f"verdict: {'no valid reap, no lost message' if r.clean else 'violated on the real stack'}")
    return 0 if r.clean else 1
