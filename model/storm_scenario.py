"""What a scenario gives the storm simulation, read and refused before it runs.

Two things stand between a scenario and a run of `model.storm`: its
``[storm]`` table, read into `StormParams` with the defaults where a key is
absent (`storm_params`), and the rules of its fleet the simulation does not
apply, refused by name before anything runs (`refuse_unsimulated`, held to
the model's rule table by `tests/test_rules.py`, as `checkers.z3_coverage`
is for the symbolic engine). Both are about the scenario, not the run: the
``storm`` command and the report read them as they build their runs, so
they sit apart from the simulator's clock and clients.
"""

from __future__ import annotations

from ..properties.core import NotEncoded
from .load import StormParams
from .params import Heartbeat, Judge, Params

__all__ = ["SIMULATED", "UNSIMULATED", "unsimulated", "refuse_unsimulated", "storm_params"]


# ------------------------------------------------------------ what it covers

_INSTEAD = "check it with the exhaustive engine (stormcheck check, or --property storm_subsides for the lasso)"

# What the simulation covers, by the model's rule table (`fleet.RULES`): the
# kinds whose effect it applies (in its own time steps, over counts of
# clients) and, for every other kind, the scenario feature that enables it,
# which `refuse_unsimulated` refuses by name. tests/test_rules.py fails when
# a kind is in neither.
SIMULATED = ("reply", "arrive", "reconnect", "restore", "deadline", "publish", "gc", "load", "adopt",
             "adopt_reaper", "adopt_advice", "lose", "crash", "cut", "tick", "expire")
UNSIMULATED = {
    "launch": "a configuration rollout ([rollout])",
    "restart": "a configuration rollout ([rollout])",
    "upgrade": "a configuration rollout ([rollout])",
    "reconfigure": "a configuration rollout ([rollout])",
}


# The generalisations of Faye's model (`Params.extensions`) the simulation
# applies, in the model's own words: every `[heartbeat]` stack's cycle and
# judges, the interval in use as a cutoff's I term, client-side judges and
# proxies. Any other one the model names (a rollout, spacing strikes,
# resumption, the published Faye stack, milliseconds, or one it gains later)
# is refused.
_SIMULATED_FEATURES = frozenset(Params(
    heartbeat=Heartbeat(hold="none", store="local", interval_term="in-use"),
    judges=(Judge("client", "client", "handshake"), Judge("proxy", "proxy", "fixed", timeout=1)),
).extensions())


def unsimulated(params: Params) -> tuple[str, ...]:
    """The rules of `params`' fleet the simulation does not apply, each as the scenario names it."""
    return tuple(f for f in params.extensions() if f not in _SIMULATED_FEATURES)


def refuse_unsimulated(params: Params) -> None:
    """Raise `NotEncoded` for a fleet with rules the simulator does not apply, before it starts."""
    features = unsimulated(params)
    if features:
        raise NotEncoded("storm simulation", "; ".join(features), _INSTEAD)


def storm_params(scenario, **overrides) -> StormParams:
    """The `StormParams` of a scenario's ``[storm]`` table (defaults where absent).

    The fixed policy waits the scenario's ``[protocol] retry``; the
    adjuster's threshold is ``[load] threshold_ms``.
    """
    from .faults import Fault
    from .load import LoadModel
    from .policies import Policy
    from .setup import Setup

    cfg = scenario.config.get("storm", {})
    d = StormParams()
    get = lambda key, default: cfg.get(key, default)  # noqa: E731
    policy = Policy(get("policy", d.policy.name), retry=scenario.params.retry, base=get("base", d.policy.base),
                    cap=get("cap", d.policy.cap), breaker_after=get("breaker_after", d.policy.breaker_after),
                    breaker_open=get("breaker_open", d.policy.breaker_open))
    load = LoadModel(get("channels", d.load.channels), float(get("capacity", d.load.capacity)),
                     float(get("handshake_ms", d.load.handshake_ms)), float(get("subscribe_ms", d.load.subscribe_ms)),
                     float(get("reply_share", d.load.reply_share)))
    f = d.fault
    fault = Fault(get("fault", f.kind), get("fault_for", f.fault_for), get("restart_batch", f.restart_batch),
                  get("restart_pace", f.restart_pace), get("restart_down", f.restart_down),
                  float(get("hung_share", f.hung_share)), float(get("capacity_left", f.capacity_left)))
    values = dict(
        clients=get("clients", d.clients), load=load, churn_per_hour=float(get("churn_per_hour", d.churn_per_hour)),
        publish_every=get("publish_every", d.publish_every), policy=policy, budget=get("budget", d.budget),
        budget_window=get("budget_window", d.budget_window), admission=float(get("admission", d.admission)),
        setup=Setup(get("setup_deadline", d.setup.deadline), get("abandoned_work", d.setup.abandoned_work),
                    get("queue_limit", d.setup.queue_limit)),
        threshold_ms=scenario.config["load"]["threshold_ms"], fault=fault, fault_at=get("fault_at", d.fault_at),
        horizon=get("horizon", d.horizon), subside_within=get("subside_within", d.subside_within),
    )
    values.update(overrides)
    return StormParams(**values)
