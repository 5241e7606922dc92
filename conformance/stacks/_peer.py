"""What every peer process shares: one JSON line per event on stdout, and a clean stop on SIGTERM.

The harness (`stormcheck.conformance.stacks.harness`) reads these lines with
the time it read them; a peer therefore prints each event the moment it
happens and flushes. Event names: ``listening`` (server ready), ``open`` and
``close`` (one connection; ``judged`` says a heartbeat judge ended it, with
``why`` in the library's own words), ``refused`` (a connect attempt failed).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

__all__ = ["emit", "stop_event", "ports_arg"]


def emit(event: str, **fields) -> None:
    """Print one event line and flush it at once (the harness stamps it when read)."""
    sys.stdout.write(json.dumps({"ev": event, **fields}) + "\n")
    sys.stdout.flush()


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so a peer closes its connections the library's way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def ports_arg(text: str) -> list[int]:
    """``8001,8002`` -> [8001, 8002]: the servers a client tries in turn."""
    return [int(p) for p in text.split(",") if p]
