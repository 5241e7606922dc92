"""Start and stop the real processes of a conformance run, and never leave one behind.

Design rules:

- Every process is started by a :class:`Processes` group, which is a context
  manager: leaving the ``with`` block stops every process it started, by PID,
  whether the block ended normally, raised, or was interrupted (Ctrl-C raises
  ``KeyboardInterrupt``; inside the block SIGTERM and SIGHUP are turned into
  :class:`Interrupted` so that they unwind the same way). An ``atexit`` hook
  stops whatever a group that was never closed still owns.
- Each process runs in a session of its own, so a Ctrl-C at the terminal reaches
  only this process, which then stops its children in order (SIGTERM, then
  SIGKILL after a grace period). Only PIDs this module started are signalled.
- Output (stdout and stderr merged) is read line by line by a thread, stamped
  with ``time.monotonic()`` when read, kept in memory and written to a log file.
  Readiness is a line matching a pattern, or a TCP port accepting connections.
- Every wait is bounded: a wait that runs out raises :class:`WaitTimeout`,
  naming what was awaited and ending with the process's last lines of output.
- Servers listen on loopback only; :func:`free_port` asks the OS for an
  ephemeral port (bind to port 0), which is the best that can be done for
  programs that take a port number rather than a listening socket.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LOOPBACK",
    "Interrupted",
    "Line",
    "Proc",
    "Processes",
    "StartError",
    "WaitTimeout",
    "free_port",
    "wait_port",
]

LOOPBACK = "127.0.0.1"
GRACE_SECONDS = 3.0  # SIGTERM first; SIGKILL when a process outlives this


class StartError(RuntimeError):
    """A process could not be started (missing program, died before it was ready)."""


class WaitTimeout(TimeoutError):
    """A bounded wait ran out; the message names what was awaited."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a group was open; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.signum = signum


@dataclass(frozen=True)
class Line:
    """One line of a process's output, stamped when it was read."""

    at: float  # time.monotonic()
    text: str


def free_port(host: str = LOOPBACK) -> int:
    """An ephemeral TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, host: str = LOOPBACK, alive: Callable[[], bool] | None = None) -> None:
    """Wait until `host`:`port` accepts a TCP connection, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise StartError(f"the process meant to listen on {host}:{port} exited first")
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"nothing accepted connections on {host}:{port} within {timeout:g} s")
        time.sleep(0.05)


class Proc:
    """One started process: its PID, its output lines, bounded waits on them."""

    def __init__(self, name: str, argv: Sequence[str], popen: subprocess.Popen, log_path: Path | None) -> None:
        self.name, self.argv, self.popen, self.log_path = name, list(argv), popen, log_path
        self.lines: list[Line] = []
        self._cond = threading.Condition()
        self._eof = False
        self._log = open(log_path, "w", encoding="utf-8") if log_path else None
        self._reader = threading.Thread(target=self._read, name=f"log:{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = Line(time.monotonic(), raw.rstrip("\n"))
            if self._log:
                self._log.write(raw if raw.endswith("\n") else raw + "\n")
                self._log.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        if self._log:
            self._log.close()

    def snapshot(self, start: int = 0) -> list[Line]:
        """The lines read so far, from index `start` on."""
        with self._cond:
            return self.lines[start:]

    def wait_line(self, pattern: str | re.Pattern, timeout: float, start: int = 0) -> tuple[int, Line, re.Match]:
        """Wait for the first line at index >= `start` matching `pattern`; returns (index, line, match)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i].text)
                    if m:
                        return i, self.lines[i], m
                    i += 1
                left = deadline - time.monotonic()
                if self._eof:
                    raise StartError(f"{self.name} exited (code {self.popen.poll()}) before a line "
                                     f"matching {rx.pattern!r}{self._tail()}")
                if left <= 0:
                    raise WaitTimeout(f"{self.name}: no line matching {rx.pattern!r} within {timeout:g} s"
                                      f"{self._tail()}")
                self._cond.wait(min(left, 0.5))

    def _tail(self, n: int = 8) -> str:
        tail = [ln.text for ln in self.lines[-n:]]
        return ("; last output:\n  " + "\n  ".join(tail)) if tail else "; no output"

    def signal(self, signum: int) -> None:
        """Send `signum` to this process if it still runs (by PID, never by name)."""
        if self.alive():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def stop(self, grace: float = GRACE_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL after `grace` s; returns the exit code (None if it could not be reaped)."""
        if self.alive():
            self.signal(signal.SIGTERM)
            self.signal(signal.SIGCONT)  # a stalled process (Fleet.stalled) must see the SIGTERM now
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                try:
                    self.popen.wait(grace)
                except subprocess.TimeoutExpired:
                    return None
        self._reader.join(1.0)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL at once: a crash, as a test wants it."""
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass


_OPEN_GROUPS: list["Processes"] = []


def _stop_open_groups() -> None:
    for group in list(_OPEN_GROUPS):
        group.stop_all()


atexit.register(_stop_open_groups)


class Processes:
    """A group of started processes; ``with Processes(log_dir) as ps: ps.start(...)``."""

    def __init__(self, log_dir: Path | str | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir else None
        self.procs: list[Proc] = []
        self._saved: dict[int, object] = {}

    def __enter__(self) -> "Processes":
        _OPEN_GROUPS.append(self)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                current = signal.getsignal(signum)
                if current in (signal.SIG_DFL, None):  # leave a handler someone else installed alone
                    self._saved[signum] = current
                    signal.signal(signum, _raise_interrupted)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop_all()
        finally:
            for signum, handler in self._saved.items():
                signal.signal(signum, handler)
            self._saved.clear()
            if self in _OPEN_GROUPS:
                _OPEN_GROUPS.remove(self)

    def start(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
              cwd: Path | str | None = None, ready_line: str | None = None, ready_port: int | None = None,
              timeout: float = 10.0) -> Proc:
        """Start `argv`; wait (at most `timeout` s) for `ready_line` in its output and/or `ready_port`."""
        log_path = (self.log_dir / f"{name}.log") if self.log_dir else None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            popen = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, bufsize=1, cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True,
            )
        except OSError as exc:
            raise StartError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from None
        proc = Proc(name, argv, popen, log_path)
        self.procs.append(proc)
        if ready_line is not None:
            proc.wait_line(ready_line, timeout)
        if ready_port is not None:
            wait_port(ready_port, timeout, alive=proc.alive)
        return proc

    def stop(self, proc: Proc) -> int | None:
        """Stop one process of this group."""
        return proc.stop()

    def stop_all(self) -> None:
        """Stop every process of this group, the last started first; all SIGTERMs go out before any wait."""
        live = [p for p in reversed(self.procs) if p.alive()]
        for p in live:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for p in live:
            try:
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        for p in self.procs:
            p._reader.join(1.0)


def _raise_interrupted(signum, _frame) -> None:
    raise Interrupted(signum)
