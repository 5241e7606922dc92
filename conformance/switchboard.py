"""The switchboard: the load balancer and the fault switch between real clients and servers.

Each client gets a front port of its own on 127.0.0.1 (its "load balancer
address"), so the switchboard knows whose every connection is without reading
it. A new connection on a client's front port is routed to the server the
client is currently routed to (:meth:`Switchboard.route`); bytes are copied
both ways, after a delay of ``rtt / 2`` each way when one is set.

Faults are the harness's, not the processes': :meth:`lose_server` closes every
link to a server and refuses new ones while its process keeps running (a lost
network, not a crash); :meth:`cut_client` does the same to one client's links.
A refused connection is accepted and closed at once, which a client sees as a
dropped socket, as it would behind a load balancer with no healthy backend.

It runs its own asyncio loop in a daemon thread; every public method is
thread-safe and returns once the change is made.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from .procs import LOOPBACK, WaitTimeout

__all__ = ["Switchboard"]


@dataclass
class _Link:
    client: str
    server: str
    writers: list = field(default_factory=list)

    def close(self) -> None:
        for w in self.writers:
            try:
                w.transport.abort()  # a reset, as a lost network shows it
            except Exception:
                pass


class Switchboard:
    """``with Switchboard({"s0": port0, ...}) as sb: front = sb.add_client("c0", "s0")``."""

    def __init__(self, servers: dict[str, int], rtt: float = 0.0) -> None:
        self.servers = dict(servers)
        self.rtt = rtt
        self.routes: dict[str, str] = {}
        self.pick = None  # optional callable(client) -> server, asked at each new connection (a balancer)
        self.down_servers: set[str] = set()
        self.cut_clients: set[str] = set()
        self.links: list[_Link] = []
        self.log: list[tuple[float, str]] = []  # (monotonic time, what happened)
        self._loop = asyncio.new_event_loop()
        self._fronts: dict[str, asyncio.AbstractServer] = {}
        self._thread = threading.Thread(target=self._loop.run_forever, name="switchboard", daemon=True)

    def __enter__(self) -> "Switchboard":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, coro_or_fn, timeout: float = 5.0):
        if asyncio.iscoroutine(coro_or_fn):
            fut = asyncio.run_coroutine_threadsafe(coro_or_fn, self._loop)
        else:
            async def run():
                return coro_or_fn()
            fut = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            raise WaitTimeout(f"the switchboard did not answer within {timeout:g} s") from None

    def _note(self, what: str) -> None:
        self.log.append((time.monotonic(), what))

    def add_client(self, client: str, server: str) -> int:
        """Open `client`'s front port, routed to `server`; returns the port."""
        async def open_front():
            srv = await asyncio.start_server(lambda r, w: self._accept(client, r, w), LOOPBACK, 0)
            self._fronts[client] = srv
            return srv.sockets[0].getsockname()[1]
        self.routes[client] = server
        return self._call(open_front())

    def route(self, client: str, server: str) -> None:
        """`client`'s next new connection goes to `server` (open links stay where they are)."""
        self._call(lambda: self.routes.__setitem__(client, server))
        self._note(f"route {client} -> {server}")

    def lose_server(self, server: str) -> None:
        """Cut every link to `server` and refuse new ones; its process keeps running."""
        def cut():
            self.down_servers.add(server)
            self._cut(lambda link: link.server == server)
        self._call(cut)
        self._note(f"lose {server}")

    def restore_server(self, server: str) -> None:
        self._call(lambda: self.down_servers.discard(server))
        self._note(f"restore {server}")

    def cut_client(self, client: str) -> None:
        """Cut `client`'s network: its links close and new ones are refused."""
        def cut():
            self.cut_clients.add(client)
            self._cut(lambda link: link.client == client)
        self._call(cut)
        self._note(f"cut {client}")

    def restore_client(self, client: str) -> None:
        self._call(lambda: self.cut_clients.discard(client))
        self._note(f"restore {client}")

    def _cut(self, which) -> None:
        for link in [k for k in self.links if which(k)]:
            link.close()
            self.links.remove(link)

    async def _accept(self, client: str, reader, writer) -> None:
        try:
            await self._serve(client, reader, writer)
        except asyncio.CancelledError:
            pass  # the switchboard is closing

    async def _serve(self, client: str, reader, writer) -> None:
        server = self.pick(client) if self.pick else self.routes[client]
        if server in self.down_servers or client in self.cut_clients:
            self._note(f"refuse {client} -> {server}")
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.servers[server])
        except OSError:
            writer.transport.abort()
            return
        link = _Link(client, server, [writer, up_writer])
        self.links.append(link)
        self._note(f"link {client} -> {server}")
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        link.close()
        if link in self.links:
            self.links.remove(link)

    async def _pipe(self, reader, writer) -> None:
        delay = self.rtt / 2
        try:
            while data := await reader.read(65536):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def close(self) -> None:
        """Close every front port and link and stop the loop."""
        if not self._thread.is_alive():
            return

        async def shut():
            for srv in self._fronts.values():
                srv.close()
            self._cut(lambda link: True)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._call(shut())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
