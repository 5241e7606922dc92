"""A real Python `websockets` (asyncio API) server or client, reporting what its keepalive does.

``python -m stormcheck.conformance.stacks.peer_websockets server --port P --interval I --timeout T``
``python -m stormcheck.conformance.stacks.peer_websockets client --ports P1,P2 --interval I --timeout T --retry R``

Both sides run the library's own ``keepalive()`` (``asyncio/connection.py``):
sleep ``ping_interval``, ping, wait ``ping_timeout`` for the pong, else fail the
connection with close code 1011 "keepalive ping timeout". That close, sent by
either side, is what ``judged`` reports. ``--interval 0`` turns a side's
keepalive off (``ping_interval=None``), as a client behind a proxy might run.
The client reconnects to the next port after ``--retry`` s: which server it
lands on and how long it waits are not what is under test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.frames import CloseCode

from ._peer import emit, ports_arg, stop_event

KEEPALIVE_REASON = "keepalive ping timeout"


def _judged(ws) -> bool:
    """True when this side's own keepalive failed the connection (it sent 1011 keepalive)."""
    sent = ws.protocol.close_sent
    return sent is not None and sent.code == CloseCode.INTERNAL_ERROR and sent.reason == KEEPALIVE_REASON


def _close_fields(ws) -> dict:
    sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
    return {"sent": sent.code if sent else None, "rcvd": rcvd.code if rcvd else None,
            "why": (sent.reason if sent else "") or (rcvd.reason if rcvd else "")}


def _keepalive(interval: float) -> float | None:
    return interval if interval > 0 else None


async def run_server(args) -> None:
    counter = itertools.count(1)

    async def handler(ws):
        conn = next(counter)
        emit("open", conn=conn)
        await ws.wait_closed()
        emit("close", conn=conn, judged=_judged(ws), **_close_fields(ws))

    stop = stop_event()
    async with serve(handler, "127.0.0.1", args.port, ping_interval=_keepalive(args.interval),
                     ping_timeout=args.timeout, close_timeout=args.close_timeout) as server:
        emit("listening", port=args.port)
        await stop.wait()
        server.close()  # every connection gets 1001 "going away": a restart, not a judge
        await server.wait_closed()


async def run_client(args) -> None:
    stop = stop_event()
    for port in itertools.cycle(ports_arg(args.ports)):
        if stop.is_set():
            return
        try:
            ws = await connect(f"ws://127.0.0.1:{port}/", ping_interval=_keepalive(args.interval),
                               ping_timeout=args.timeout, close_timeout=args.close_timeout,
                               open_timeout=max(1.0, 4 * args.retry))
        except (OSError, asyncio.TimeoutError) as exc:
            emit("refused", port=port, why=type(exc).__name__)
        else:
            emit("open", port=port)
            closed = asyncio.ensure_future(ws.wait_closed())
            await asyncio.wait([closed, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                await ws.close()
                return
            emit("close", port=port, judged=_judged(ws), **_close_fields(ws))
        try:
            await asyncio.wait_for(stop.wait(), args.retry)
        except asyncio.TimeoutError:
            pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="peer_websockets")
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ports", default="")
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--close-timeout", type=float, default=0.05)
    parser.add_argument("--retry", type=float, default=0.1)
    args = parser.parse_args(argv)
    asyncio.run(run_server(args) if args.role == "server" else run_client(args))


if __name__ == "__main__":
    main()
