"""gRPC keepalive enforcement: grpcio 1.76 (C-core chttp2) server and client (`peer_grpc`).

The judge held here is a *lower bound*: the server closes a client whose
keepalive pings come too often. What grpcio 1.76.0 does, read in C-core
(``src/core/ext/transport/chttp2/transport/ping_abuse_policy.cc``,
``frame_ping.cc``, ``writing.cc``, ``chttp2_transport.cc``; ``doc/keepalive.md``)
and measured on loopback with `peer_grpc`:

- A ping is a strike when it arrives sooner than
  ``grpc.http2.min_ping_interval_without_data_ms`` (default 300000) after the
  previous ping's arrival; the check is strict (``next_allowed <= now`` is
  no strike): pings 1001-1002 ms apart against a 1000 ms minimum gave no
  strike in 22 pings, pings 1001-1004 ms apart against 1005 ms were struck.
  The first ping on a connection is never a strike (the last arrival starts
  at -infinity).
- The ping that takes the strikes past ``grpc.http2.max_ping_strikes``
  (default 2; 0: no limit) gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and
  the transport closes: with 2, the 4th ping (the 3rd early one).
- Strikes never reset on an idle connection. Any DATA or HEADERS the server
  writes (in the source also a connection WINDOW_UPDATE) resets them and the
  last arrival (``grpc_chttp2_reset_ping_clock``): a stream sending a message every 2.5 s
  kept 1-s pings against a 5-s minimum at 2 strikes at most for 14 s; a call
  held open with nothing written was closed at the 5th ping.
- A server without ``grpc.keepalive_permit_without_calls`` (C-core's
  default) judges a connection with no call in flight by two hours, whatever
  its minimum: a keepalive equal to a 1000 ms minimum was closed at its 4th
  ping.
- The client never pings less than 1 s apart (``NextAllowedPingInterval``).
  With ``grpc.http2.max_pings_without_data`` at its default 2, a client with
  no data to send pings twice and then once a minute (1.76's
  ``max_pings_wo_data_throttle``), which still collects strikes against a
  minimum above a minute: with 1000 ms keepalive, 100 s minimum and 1 strike
  allowed, the GOAWAY came at the 3rd ping, 62 s in.
- After a "too_many_pings" GOAWAY the channel goes IDLE, logs "Current
  keepalive time (before throttling): N ms" and doubles the keepalive time
  of its next connections: 1000 -> 2000 -> 4000 ms, measured against a
  2500 ms minimum; the third connection held.

A model second lasts ``scale`` real seconds. gRPC takes milliseconds, but the
client's one-second floor bounds the scale from below: a keepalive that
scales under a second is refused (`keepalive_ms`) rather than run as one
second. `scale_for` is the scale putting a keepalive exactly on the floor.
The client's ``Config`` is (timeout: its ping timeout, interval: its
keepalive time); the server has no keepalive of its own here (C-core's
default: two hours).

Held to it: ``stacks/grpc`` (a keepalive equal to the minimum: holds) and
``variants/grpc-keepalive-10`` (10 s against 300 s: violated), each by its
``free-run``, a `spacing_run` with the scenario's own values (client `Config`
of level A, ``min_spacing``, ``strikes``, ``strikes + 4`` pings) at
``scale_for(keepalive)``. No ``frozen-client``: the server here judges no
silence (its own keepalive is C-core's two hours).

Run it with settings of your own (model seconds; the scale puts the client's
keepalive on the one-second floor unless ``--scale`` is given)::

    python -m stormcheck.conformance.stacks.grpc_stack --keepalive 10 --min-spacing 300 --strikes 2
"""

from __future__ import annotations

import argparse
import json
import sys

from .harness import Config, parse_json_event

__all__ = ["STACK", "GrpcStack"]

PEER = "stormcheck.conformance.stacks.peer_grpc"


class GrpcStack:
    key = "grpc"
    stack = "grpcio-1.76"
    library = "grpcio 1.76.0 (PyPI), C-core chttp2 server and client"
    preset = "stacks/grpc"
    rollouts = ()
    variants = ("variants/grpc-keepalive-10",)
    # The server here judges no silence of its own (C-core's keepalive: two hours), so a
    # frozen client shows nothing: only the free run, the lower bound's own test.
    preset_runs = ("free-run",)
    FLOOR_MS = 1000  # C-core's client pings at most once a second

    def __init__(self, scale: float = 0.1) -> None:
        self.scale = scale

    def at_scale(self, scale: float) -> "GrpcStack":
        return GrpcStack(scale)

    @classmethod
    def scale_for(cls, keepalive: float) -> float:
        """The scale at which a client keepalive of `keepalive` model s lasts exactly one real second."""
        return cls.FLOOR_MS / 1000 / keepalive

    def missing(self) -> str | None:
        try:
            import grpc  # noqa: F401
        except ImportError:
            return "grpcio 1.76 (pip install grpcio==1.76.0, or bin/test's [test] extra)"
        return None

    def ms(self, model_seconds: float) -> int:
        return round(model_seconds * self.scale * 1000)

    def keepalive_ms(self, config: Config) -> int:
        ms = self.ms(config.interval)
        if ms < self.FLOOR_MS:
            raise ValueError(f"gRPC keepalive {config.interval:g} model s is {ms} ms at scale {self.scale:g}: "
                             f"C-core's client pings at most once a second; use a scale of at least "
                             f"{self.scale_for(config.interval):g}")
        return ms

    def start_server(self, h, name: str, port: int, config: Config, min_spacing: float = 0.0, strikes: int = 2,
                     permit_without_calls: bool = True):
        """One grpcio server; `min_spacing` (model s, 0: none) and `strikes` are its ping abuse policy.

        `permit_without_calls` False is C-core's default: a connection with no
        call in flight is then judged by two hours instead of `min_spacing`.
        """
        if min_spacing > 0 and strikes < 1:
            raise ValueError(f"strikes = {strikes}: grpc.http2.max_ping_strikes 0 means no limit in C-core "
                             "(the server never closes); closing at the first early ping has no gRPC setting")
        argv = [sys.executable, "-m", PEER, "server", "--port", str(port),
                "--min-spacing-ms", str(self.ms(min_spacing)), "--strikes", str(strikes),
                "--permit-without-calls", str(int(permit_without_calls))]
        return h.ps.start(name, argv, ready_line='"ev": "listening"', timeout=20)

    def start_client(self, h, name: str, ports: list[int], config: Config):
        argv = [sys.executable, "-m", PEER, "client", "--ports", ",".join(map(str, ports)),
                "--keepalive-ms", str(self.keepalive_ms(config)), "--timeout-ms", str(max(1, self.ms(config.timeout))),
                "--retry", f"{h.params_retry * self.scale:g}"]
        return h.ps.start(name, argv)

    def parse(self, proc: str, text: str) -> dict | None:
        return parse_json_event(text)


STACK = GrpcStack()


def main(argv=None) -> int:
    """One `spacing_run` with the settings given; prints its verdict (exit 1: the server closed the client)."""
    from stormcheck.model.params import Params

    from .runs import spacing_run

    parser = argparse.ArgumentParser(prog="grpc_stack", description=main.__doc__)
    parser.add_argument("--keepalive", type=float, required=True, help="client keepalive time, model s")
    parser.add_argument("--timeout", type=float, default=None, help="client ping timeout, model s (default: keepalive)")
    parser.add_argument("--min-spacing", type=float, required=True, help="server minimum, model s (0: none)")
    parser.add_argument("--strikes", type=int, default=2)
    parser.add_argument("--no-permit-without-calls", action="store_true", help="the server at C-core's default")
    parser.add_argument("--pings", type=int, default=6, help="keepalive intervals the run lasts")
    parser.add_argument("--scale", type=float, default=None, help="real s per model s")
    parser.add_argument("--json", action="store_true", help="also print every event")
    args = parser.parse_args(argv)
    missing = STACK.missing()
    if missing:
        print(f"grpc_stack: install {missing}", file=sys.stderr)
        return 3
    stack = STACK.at_scale(args.scale or GrpcStack.scale_for(args.keepalive))
    client = Config(timeout=args.timeout or args.keepalive, interval=args.keepalive)
    out = spacing_run(stack, Params(retry=1), client, args.min_spacing, args.strikes, args.pings,
                      permit_without_calls=not args.no_permit_without_calls)
    print(f"{out.real}: {out.detail} ({out.seconds:.1f} s wall, scale {stack.scale:g})")
    if args.json:
        t0 = out.events[0].at if out.events else 0.0
        for e in out.events:
            print(json.dumps({"t": round(e.at - t0, 3), "proc": e.proc, **e.fields}))
    return 1 if out.real == "violated" else 0


if __name__ == "__main__":
    sys.exit(main())
