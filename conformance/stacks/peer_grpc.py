"""A real grpcio (C-core) server or client, reporting what gRPC's keepalive enforcement does.

``python -m stormcheck.conformance.stacks.peer_grpc server --port P --min-spacing-ms M --strikes K``
``python -m stormcheck.conformance.stacks.peer_grpc client --ports P1,P2 --keepalive-ms I --timeout-ms T --retry R``

Server: a grpcio server with no services (an idle connection is all that is
judged) whose ping abuse policy is the scenario's lower bound: a ping that
arrives sooner than ``grpc.http2.min_ping_interval_without_data_ms`` after the
previous one is a strike, and the ping after ``grpc.http2.max_ping_strikes``
strikes gets a GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and the transport is
closed (C-core ``ping_abuse_policy.cc`` ``ReceivedOnePing``, called from
``frame_ping.cc``). ``--permit-without-calls`` (default 1) is the server's
``grpc.keepalive_permit_without_calls``: at C-core's default, 0, a connection
with no call in flight is judged by a fixed two-hour minimum, whatever the
minimum is set to (``RecvPingIntervalWithoutData``).
Note the channel argument's name: the C macro is
``GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS`` but its string is
``grpc.http2.min_ping_interval_without_data_ms``; grpcio ignores an argument
it does not know, so the macro's name spelled as a string silently leaves the
five-minute default in force.

Client: one channel, kept connected with no call in flight, sending keepalive
pings every ``grpc.keepalive_time_ms`` (``grpc.keepalive_permit_without_calls``
1) and closing the transport itself when an ack is later than ``--timeout-ms``
(the client's own judge). ``--timeout-ms`` sets both
``grpc.keepalive_timeout_ms`` and ``grpc.http2.ping_timeout_ms``: on grpcio
1.76 an idle connection's keepalive ping was judged by the ping timeout
(default 60 s; C-core logs "Ping timeout. Closing transport."), while a
keepalive timeout of 500 ms alone let a ping to a stopped server wait 3 s for
its ack (measured on loopback). C-core never sends pings less than one second
apart (``writing.cc`` ``NextAllowedPingInterval``), so a shorter keepalive time
behaves as one second. ``--max-pings-without-data`` defaults to 0: with the
library's default (2), grpcio 1.76 lets two pings go without data and then
throttles the rest to one a minute (the ``max_pings_wo_data_throttle``
experiment, on in 1.76), a wall-clock constant a scaled run cannot keep.
After a close the client waits ``--retry`` s and connects again on the same
channel, as the next call of a real client would: the channel keeps the
keepalive time C-core doubled after a "too_many_pings" GOAWAY.

Observation: C-core reports its pings, strikes, GOAWAYs and closes only in
its trace log (``GRPC_TRACE=http_keepalive,http2_ping,http``, read when grpc
is imported). Each peer routes its own stderr through a pipe (`CoreLog`),
passes every line on unchanged, and turns the lines that matter into JSON
events: ``listening``; ``open`` and ``close`` (server: per transport, numbered
from 1 in the order they open; client: the channel's connectivity state, with
the reason its log gave); ``ping`` (server: one per ping received, with
``early`` and the strikes after it; client: one per ping sent); ``goaway``
(client: code, debug text and the keepalive time C-core reports); ``refused``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

# Before grpc is imported: C-core reads these once, at start.
os.environ["GRPC_TRACE"] = "http_keepalive,http2_ping,http"
os.environ["GRPC_VERBOSITY"] = "debug"

from ._peer import emit, ports_arg  # noqa: E402

# The channel arguments, as C-core spells them (grpc/impl/channel_arg_names.h).
MIN_SPACING = "grpc.http2.min_ping_interval_without_data_ms"
STRIKES = "grpc.http2.max_ping_strikes"
PERMIT_WITHOUT_CALLS = "grpc.keepalive_permit_without_calls"
KEEPALIVE_TIME = "grpc.keepalive_time_ms"
KEEPALIVE_TIMEOUT = "grpc.keepalive_timeout_ms"
PING_TIMEOUT = "grpc.http2.ping_timeout_ms"
MAX_PINGS_WITHOUT_DATA = "grpc.http2.max_pings_without_data"

TOO_MANY_PINGS = "too_many_pings"  # the GOAWAY's debug data (chttp2_transport.cc)

# C-core's log lines (grpcio 1.76), by what they tell.
_OPENED = re.compile(r"W:(0x[0-9a-f]+) SERVER \[(\S+)\] .*\[INITIAL_WRITE\]")
_PING_IN = re.compile(r"SERVER\[(0x[0-9a-f]+)\]: received ping \d+: now=@(\d+)ms transport_idle=(\d) "
                      r"next_allowed_ping=@(-∞|\d+)(?:ms)? ping_strikes=(\d+)")
_STRUCK_OUT = re.compile(r"(0x[0-9a-f]+) CANCEL PINGS: UNKNOWN:Too many pings")
_CLOSED = re.compile(r"transport (0x[0-9a-f]+) set connectivity_state=4;.* reason=(\S+)")
_TIMED_OUT = re.compile(r"\] (\S+): (Ping|Keepalive) timeout\. Closing transport")
_PING_OUT = re.compile(r"CLIENT\[(0x[0-9a-f]+)\]: Ping \d+ sent")
_GOAWAY = re.compile(r"Received a GOAWAY with error code (\w+) and debug data equal to \"([^\"]*)\"\. "
                     r"Current keepalive time \(before throttling\): (\d+)ms")
_GOT_GOAWAY = re.compile(r"GOAWAY received; Error code: (\d+); Debug Text: ([^;{\]]*)")


class CoreLog:
    """This process's stderr (where C-core logs) read back line by line and passed on unchanged."""

    _MARK = "peer_grpc: sync "

    def __init__(self, on_line) -> None:
        self._on_line = on_line
        self._marks: dict[int, threading.Event] = {}
        self._count = itertools.count()
        read_fd, write_fd = os.pipe()
        real = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        threading.Thread(target=self._pump, args=(read_fd, real), name="core-log", daemon=True).start()

    def _pump(self, read_fd: int, real: int) -> None:
        with os.fdopen(read_fd, "r", errors="replace") as src, os.fdopen(real, "w") as dst:
            for raw in src:
                line = raw.rstrip("\n")
                if line.startswith(self._MARK):
                    self._marks.pop(int(line[len(self._MARK):]), threading.Event()).set()
                    continue
                dst.write(raw)
                dst.flush()
                self._on_line(line)

    def sync(self, timeout: float = 1.0) -> None:
        """Return once every line logged before this call has been handled (at most `timeout` s)."""
        n = next(self._count)
        done = self._marks[n] = threading.Event()
        os.write(2, f"{self._MARK}{n}\n".encode())
        done.wait(timeout)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


class ServerLog:
    """The server's transports as C-core logs them: open, each ping received, close (judged or not)."""

    def __init__(self) -> None:
        # C-core reuses a closed transport's address for the next one: a connection is numbered at its open.
        self.conns: dict[str, int] = {}  # transport -> connection number, while open
        self.peers: dict[str, str] = {}  # transport -> client address, while open
        self.judged: dict[str, str] = {}  # transport -> why its judge closed it
        self.count = itertools.count(1)

    def __call__(self, line: str) -> None:
        if m := _OPENED.search(line):
            self.conns[m[1]], self.peers[m[1]] = next(self.count), m[2]
            emit("open", conn=self.conns[m[1]], peer=m[2])
        elif (m := _PING_IN.search(line)) and m[1] in self.conns:
            now, allowed = int(m[2]), m[4]
            early = allowed != "-∞" and int(allowed) > now  # ReceivedOnePing: a strike unless allowed <= now
            emit("ping", conn=self.conns[m[1]], at_ms=now, early=early, strikes=int(m[5]) + early, idle=m[3] == "1")
        elif m := _STRUCK_OUT.search(line):
            self.judged[m[1]] = TOO_MANY_PINGS
        elif m := _TIMED_OUT.search(line):
            transport = next((t for t, a in self.peers.items() if a == m[1]), m[1])
            self.judged[transport] = f"{m[2].lower()} timeout"
        elif (m := _CLOSED.search(line)) and m[1] in self.conns:
            self.peers.pop(m[1])
            why = self.judged.pop(m[1], None)
            emit("close", conn=self.conns.pop(m[1]), judged=why is not None, why=why or m[2])


def run_server(args) -> None:
    CoreLog(ServerLog())
    import grpc

    stop = _stop_on_signals()
    options = [(MIN_SPACING, args.min_spacing_ms), (STRIKES, args.strikes),
               (PERMIT_WITHOUT_CALLS, args.permit_without_calls)]
    server = grpc.server(ThreadPoolExecutor(max_workers=2), options=options)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    emit("listening", port=args.port, min_spacing_ms=args.min_spacing_ms, strikes=args.strikes,
         permit_without_calls=args.permit_without_calls)
    while not stop.wait(0.05):
        pass
    server.stop(0).wait(5)  # a GOAWAY to every client: a restart, not a judge


class ClientLog:
    """What the client's C-core log says about its pings and why its transport went away."""

    def __init__(self) -> None:
        self.why: str | None = None  # the latest reason, until the close that reports it
        self.judged = False

    def __call__(self, line: str) -> None:
        if _PING_OUT.search(line):
            emit("ping")
        elif m := _GOAWAY.search(line):
            emit("goaway", code=m[1], why=m[2], keepalive_ms=int(m[3]))
            self.why = m[2]
        elif m := _TIMED_OUT.search(line):
            self.why, self.judged = f"{m[2].lower()} timeout", True
        elif (m := _GOT_GOAWAY.search(line)) and self.why is None:
            self.why = m[2].strip()

    def take(self) -> tuple[bool, str]:
        why, judged = self.why or "", self.judged
        self.why, self.judged = None, False
        return judged, why


def _target(ports: list[int]) -> str:
    """One channel over every server, tried in order (pick_first), as a client with a list of backends."""
    return "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)


def run_client(args) -> None:
    reasons = ClientLog()
    log = CoreLog(reasons)
    import grpc

    stop = _stop_on_signals()
    options = [(KEEPALIVE_TIME, args.keepalive_ms), (KEEPALIVE_TIMEOUT, args.timeout_ms),
               (PING_TIMEOUT, args.timeout_ms), (PERMIT_WITHOUT_CALLS, 1),
               (MAX_PINGS_WITHOUT_DATA, args.max_pings_without_data)]
    channel = grpc.insecure_channel(_target(ports_arg(args.ports)), options=options)
    dropped = threading.Event()
    up = threading.Event()
    gone = (grpc.ChannelConnectivity.IDLE, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN)

    def on_state(state) -> None:
        if state == grpc.ChannelConnectivity.READY and not up.is_set():
            up.set()
            emit("open")
        elif up.is_set() and state in gone:
            up.clear()
            dropped.set()

    channel.subscribe(on_state)
    try:
        while not stop.is_set():
            try:
                grpc.channel_ready_future(channel).result(timeout=max(1.0, 4 * args.retry))
            except grpc.FutureTimeoutError:
                emit("refused", why="not ready")
                stop.wait(args.retry)
                continue
            while not (dropped.is_set() or stop.is_set()):
                dropped.wait(0.05)
            if dropped.is_set():
                dropped.clear()
                log.sync()  # the log line with the reason precedes the state change
                judged, why = reasons.take()
                emit("close", judged=judged, why=why)
                stop.wait(args.retry)
    finally:
        channel.unsubscribe(on_state)
        channel.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="peer_grpc")
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ports", default="")
    parser.add_argument("--min-spacing-ms", type=int, default=300_000)  # C-core's default: 5 min
    parser.add_argument("--strikes", type=int, default=2)  # C-core's default
    parser.add_argument("--permit-without-calls", type=int, choices=(0, 1), default=1)
    parser.add_argument("--keepalive-ms", type=int, default=0)
    parser.add_argument("--timeout-ms", type=int, default=20_000)  # C-core's keepalive default: 20 s
    parser.add_argument("--max-pings-without-data", type=int, default=0)
    parser.add_argument("--retry", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.role == "server":
        run_server(args)
    elif args.keepalive_ms <= 0:
        parser.error("client: --keepalive-ms must be positive")
    else:
        run_client(args)


if __name__ == "__main__":
    main()
