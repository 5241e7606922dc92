"""Conformance of the stack presets: the real libraries of each stack as the judge of the model.

One module per stack (``websockets_stack``, ``socketio4_stack``,
``socketio2_stack``, ``mqtt_stack``, ``nginx_stack``) says how to start its
real server and client; ``harness`` and ``runs`` drive them; ``claims`` asks
the model what it says about the same run; ``conform`` puts the two side by
side (``stormcheck conform`` for stack scenarios).

Phoenix, SignalR and ActionCable have no real implementation that runs here
(`UNVERIFIED`). ``grpc_stack`` holds gRPC's keepalive enforcement, a lower
bound on ping spacing (``stacks/grpc`` and ``variants/grpc-keepalive-10``);
``tests/test_conformance_grpc.py`` also runs it with settings given directly.
"""

from __future__ import annotations

from stormcheck import one_name

one_name(__name__, "stormcheck.conformance.stacks")

__all__ = ["STACKS", "UNVERIFIED", "stack_named", "conformance_lines"]

from .grpc_stack import STACK as _GRPC
from .mqtt_stack import STACK as _MQTT
from .nginx_stack import STACK as _NGINX
from .socketio2_stack import STACK as _SIO2
from .socketio4_stack import STACK as _SIO4
from .websockets_stack import STACK as _WS

STACKS = {s.key: s for s in (_WS, _SIO4, _SIO2, _MQTT, _NGINX, _GRPC)}

# Presets with no real implementation to run on this machine, and why; a scenario named after one
# (a rollout or variant of that stack: `phoenix-heartbeat-90`) is unverified for the same reason.
UNVERIFIED = {
    "stacks/phoenix": "no Phoenix server runs here: Debian has Elixir 1.14 and Erlang 25 but not the "
                      "Phoenix framework, whose registry (Hex) this machine cannot reach; npm's `phoenix` is the "
                      "browser client only",
    "stacks/signalr": "no SignalR server runs here: it needs ASP.NET Core, and neither Debian nor npm has "
                      ".NET (NuGet is not reachable); npm's @microsoft/signalr is the client only",
    "stacks/actioncable": "not driven yet: Debian ships ruby-actioncable (Rails 6.1), so a real server "
                          "could run here, but no driver for it exists; npm's @rails/actioncable is the client only",
    "proxies/aws-alb-websockets": "an AWS Application Load Balancer is a cloud service, not on this machine",
}


def stack_named(key: str):
    return STACKS[key]


def conformance_lines() -> list[str]:
    """For ``stormcheck list stacks``: which real library each preset is held to, or why none."""
    lines = ["", "Conformance (stormcheck conform PRESET runs it on the real library):"]
    for stack in STACKS.values():
        if stack.preset:
            lines.append(f"  {stack.preset:<36}{stack.library}")
    for preset, why in UNVERIFIED.items():
        lines.append(f"  {preset:<36}unverified: {why}")
    return lines
