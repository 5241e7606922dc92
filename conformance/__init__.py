"""Conformance: real servers and clients as the judge of the model's traces.

``procs`` starts and stops processes, ``switchboard`` is the load balancer and
fault switch between them, and the ``faye*`` modules drive a real Faye fleet
on Redis (the Node package in ``conformance/faye/``).
"""

from stormcheck import one_name

one_name(__name__, "stormcheck.conformance")

__all__ = ["time_unit_refusal", "STACK_RUN_KINDS"]

# The runs a stack scenario can be held to (`stacks.conform.runs_for`); here,
# light, for the command line's choices, which must not start the harnesses.
STACK_RUN_KINDS = ("free-run", "frozen-client", "rollout-as-written", "rollout-planned", "proxy-idle")


def time_unit_refusal(config: dict) -> str | None:
    """Why a fleet stated in `config`'s time unit cannot run on real software here (None: it can).

    Every harness scales model seconds to wall seconds (``--scale``, each
    stack's own scale) and hands the real libraries their settings in
    seconds; a fleet in milliseconds is refused before anything starts
    rather than run a thousand times too slow or too fast.
    """
    unit = config.get("scenario", {}).get("time_unit", "s")
    if unit == "s":
        return None
    return (f'[scenario] time_unit = "{unit}": not run: conformance scales model seconds to wall time and gives '
            "the real stacks their settings in seconds; state the fleet in seconds to run it on real software")
