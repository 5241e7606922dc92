"""A real python-socketio 5.18 / python-engineio 4.15 (Engine.IO 4) server or client.

``python -m stormcheck.conformance.stacks.peer_socketio server --port P --interval I --timeout T [--live-interval I2 --live-timeout T2]``
``python -m stormcheck.conformance.stacks.peer_socketio client --ports P1,P2 --retry R``

Server (aiohttp): Engine.IO 4's server pings ``ping_interval`` after each
pong; its service task closes a socket whose pong is more than
``ping_timeout`` late (``AsyncSocket.check_ping_timeout``): a disconnect with
reason ``ping timeout`` is the server's judge. SIGUSR1 changes the live
server's settings to the ``--live-*`` values without a restart.
Client: it judges too, by the pingInterval + pingTimeout its handshake
advertised (``AsyncClient._read_loop_websocket``; it logs "Server has stopped
communicating" and disconnects with ``transport error``): that log line before
a disconnect is the client's judge. The client reconnects itself (the
library's reconnection off) to the next port after ``--retry`` s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal

import socketio
from aiohttp import web

from ._peer import emit, ports_arg, stop_event

CLIENT_JUDGE_LOG = "Server has stopped communicating"


async def run_server(args) -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp", ping_interval=args.interval, ping_timeout=args.timeout)
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def connect(sid, environ):
        emit("open", conn=sid)

    @sio.event
    async def disconnect(sid, reason):
        emit("close", conn=sid, judged=reason == sio.reason.PING_TIMEOUT, why=reason)

    def go_live():
        sio.eio.ping_interval, sio.eio.ping_timeout = args.live_interval, args.live_timeout
        emit("live", interval=args.live_interval, timeout=args.live_timeout)

    stop = stop_event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go_live)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    emit("listening", port=args.port)
    await stop.wait()
    for sid in list(sio.manager.get_participants("/", None)):
        await sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)  # a restart, not a judge
    await sio.shutdown()
    await runner.cleanup()


class _JudgeLog(logging.Handler):
    """Notes the client library's own give-up line (its judge), which has no reason of its own."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        if CLIENT_JUDGE_LOG in record.getMessage():
            self.fired = True


async def run_client(args) -> None:
    stop = stop_event()
    judge = _JudgeLog()
    logger = logging.getLogger("stormcheck.peer.engineio")
    logger.addHandler(judge)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    for port in itertools.cycle(ports_arg(args.ports)):
        if stop.is_set():
            return
        sio = socketio.AsyncClient(reconnection=False, engineio_logger=logger)
        gone = asyncio.Event()
        judge.fired = False
        reasons = []

        @sio.event
        async def disconnect(reason=None):
            reasons.append(reason)
            gone.set()

        try:
            await sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=5)
        except (socketio.exceptions.ConnectionError, OSError) as exc:
            emit("refused", port=port, why=str(exc))
        else:
            eio = sio.eio
            emit("open", port=port, interval=eio.ping_interval, timeout=eio.ping_timeout)
            await asyncio.wait([asyncio.ensure_future(gone.wait()), asyncio.ensure_future(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set() and not gone.is_set():
                await sio.disconnect()
                return
            emit("close", port=port, judged=judge.fired,
                 why=CLIENT_JUDGE_LOG if judge.fired else str(reasons[0] if reasons else ""))
        try:
            await asyncio.wait_for(stop.wait(), args.retry)
        except asyncio.TimeoutError:
            pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="peer_socketio")
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ports", default="")
    parser.add_argument("--interval", type=float, default=25)
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--live-interval", type=float, default=None)
    parser.add_argument("--live-timeout", type=float, default=None)
    parser.add_argument("--retry", type=float, default=0.1)
    args = parser.parse_args(argv)
    asyncio.run(run_server(args) if args.role == "server" else run_client(args))


if __name__ == "__main__":
    main()
