"""Stopping a run on SIGINT, SIGTERM or SIGHUP, the same way for each.

Ctrl-C sends SIGINT; a CI time-out, a container stop and ``kill`` send
SIGTERM; a closed terminal sends SIGHUP. Python's defaults would end the
process at once on the last two (no ``finally`` runs, so temporary files
and half-built report folders stay behind) and raise a bare
``KeyboardInterrupt`` on the first. Here all three raise `Interrupted` in
the main thread, so every ``finally`` and ``except BaseException`` that
cleans up runs, and the command line prints one line and exits 128 + the
signal number (130, 143, 129), as shells do.

Two things need more than a Python handler:

* A Python handler runs only between bytecodes, and a solver call is one
  long C call. A watcher thread, woken through `signal.set_wakeup_fd`,
  calls every registered canceller (`on_signal`; the symbolic engine
  registers ``Solver.interrupt``), so the call returns at once; the
  handler then raises in the main thread. Solvers are made with Z3's own
  Ctrl-C handler off, so that SIGINT reaches this module like the others
  and a cut-short solver call never becomes an ``unknown`` verdict.
* An exception can land between creating a temporary file and the
  ``try`` that removes it. `deferred()` holds the signal back across such
  few lines and raises when they are done.

After the first signal, further ones are only recorded: a second Ctrl-C
must not cut short the clean-up the first one started.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Interrupted", "HANDLED", "install", "restore", "handled", "deferred", "hold", "finish",
           "on_signal", "received", "check", "exit_code", "signal_name"]

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by signal `signum`; nothing it computed may be read as a verdict."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"interrupted by {signal_name(self.signum)}"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The conventional exit status of a process stopped by `signum`: 128 + its number."""
    return 128 + int(signum)


class _State:
    def __init__(self) -> None:
        self.first: int | None = None  # the signal that stopped the run
        self.raised = False
        self.depth = 0  # nesting of `deferred()` blocks
        self.previous: dict[int, object] = {}
        self.cancellers: list[Callable[[], None]] = []
        self.wakeup: tuple[int, int] | None = None
        self.old_wakeup = -1
        self.old_unraisable = None


_state = _State()


def _unsafe(frame) -> bool:
    """Whether raising in `frame` would lose the interrupt or break a half-built object.

    * Inside a ``__del__``, a weakref callback or a ``gc.callbacks`` entry
      (Hypothesis times collections with one), Python prints the exception
      ("Exception ignored in ...") and carries on. Z3's terms free
      themselves in ``__del__``, so garbage collection during a solver run
      often is exactly where the signal lands.
    * Inside Z3's Python bindings, an exception raised while ctypes
      converts an argument comes out as ``ctypes.ArgumentError``, and one
      raised in a constructor leaves an object whose ``__del__`` then
      fails. Only the innermost frame matters here: our own code calling
      Z3 is safe to interrupt between two calls.
    """
    if frame is not None and frame.f_code.co_filename.startswith(_Z3_DIRS):
        return True
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        code = frame.f_code
        if (code.co_name == "__del__" or code in callbacks
                or code.co_filename.endswith(("weakref.py", "_weakrefset.py"))):
            return True
        frame = frame.f_back
    return False


def _z3_dirs() -> tuple[str, ...]:
    import importlib.util  # found without importing Z3: this module loads before anything heavy

    spec = importlib.util.find_spec("z3")
    locations = spec.submodule_search_locations if spec else None
    return tuple(os.path.join(d, "") for d in locations or ())


_Z3_DIRS = _z3_dirs()


def _redeliver(signum: int) -> None:
    timer = threading.Timer(0.02, os.kill, (os.getpid(), signum))
    timer.daemon = True  # the process may end before it fires: nothing is left to stop then
    timer.start()


def _unraisable(unraisable) -> None:
    """Catch an `Interrupted` that Python swallowed, and raise it again where it counts.

    A signal handler runs wherever the main thread is; when that is a GC
    callback (``gc.callbacks``, which Hypothesis uses to time collections),
    a ``__del__`` or a weakref callback, Python reports the exception as
    "ignored" and the run carries on. So the report is dropped and the
    signal delivered again, to land in ordinary code.
    """
    if isinstance(unraisable.exc_value, Interrupted):
        _state.raised = False
        _redeliver(unraisable.exc_value.signum)
        return
    (_state.old_unraisable or sys.__unraisablehook__)(unraisable)


def _handler(signum: int, frame) -> None:
    if _state.first is None:
        _state.first = signum
    if _state.raised or _state.depth:
        return  # already stopping, or inside a few lines that must finish first
    if _unsafe(frame):
        _redeliver(signum)  # raise it again once that code has returned
        return
    _state.raised = True
    raise Interrupted(_state.first)


def received() -> int | None:
    """The signal that stopped this run, if one came."""
    return _state.first


def check() -> None:
    """Raise `Interrupted` if a signal came; for code that turns an aborted call into a result.

    A solver call cut short by a signal returns ``unknown``; before such a
    result is read as "inconclusive", this makes sure it was not the user
    stopping the run.
    """
    if _state.first is not None:
        _state.raised = True
        raise Interrupted(_state.first)


def on_signal(canceller: Callable[[], None]) -> Callable[[], None]:
    """Register `canceller`, called from a watcher thread when a signal arrives.

    For work that a Python handler cannot stop (a long C call): the
    canceller must be safe to call from another thread at any time.
    Returns `canceller`, so it can be used as a decorator.
    """
    if canceller not in _state.cancellers:
        _state.cancellers.append(canceller)
    return canceller


def _watch(fd: int) -> None:
    # The C-level handler writes each signal's number here before the
    # Python handler has run; EOF (`restore` closed the other end) ends it.
    while True:
        try:
            data = os.read(fd, 64)
        except OSError:
            break
        if not data:
            break
        if not any(b in HANDLED for b in data):
            continue
        for cancel in list(_state.cancellers):
            try:
                cancel()
            except Exception:  # a canceller failing must not stop the others
                pass
    os.close(fd)


def _start_watcher() -> None:
    if _state.wakeup is not None:
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        _state.old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(r)
        os.close(w)
        return
    _state.wakeup = (r, w)
    threading.Thread(target=_watch, args=(r,), name="stormcheck-signals", daemon=True).start()


def install() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise `Interrupted`; a no-op outside the main thread.

    Installing again starts a new run: the record of an earlier signal is
    cleared.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    _state.first, _state.raised, _state.depth = None, False, 0
    for sig in HANDLED:
        old = signal.signal(sig, _handler)
        if old is not _handler:
            _state.previous[sig] = old
    if sys.unraisablehook is not _unraisable:
        _state.old_unraisable, sys.unraisablehook = sys.unraisablehook, _unraisable
    _start_watcher()


def restore() -> None:
    """Put back the handlers that were there before `install`."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, old in _state.previous.items():
        signal.signal(sig, old)
    _state.previous.clear()
    _state.depth = 0
    if sys.unraisablehook is _unraisable:
        sys.unraisablehook, _state.old_unraisable = _state.old_unraisable or sys.__unraisablehook__, None
    if _state.wakeup is not None:
        signal.set_wakeup_fd(_state.old_wakeup)
        _, w = _state.wakeup
        _state.wakeup = None
        os.close(w)  # the watcher reads EOF, closes its end and ends


@contextmanager
def handled() -> Iterator[None]:
    """`install` for the duration of the block, then `restore` (for callers inside a larger program)."""
    fresh = not _state.previous
    install()
    try:
        yield
    finally:
        if fresh:
            restore()


def hold() -> None:
    """From now on a signal is only recorded: the work is done and its results are written.

    Called as the last step of a command, inside the ``try`` that reports an
    interrupt, so that a signal arriving while the process winds down (its
    threads joined, its modules freed) cannot raise where nothing catches
    it. `install` and `restore` end the hold.
    """
    _state.depth += 1


def finish() -> None:
    """Ignore the handled signals for the rest of the process; for the program's entry point only.

    Python puts the default handlers back while it finalises, and a signal
    may be delivered to any thread, so a signal in the last moments of a
    finished run would kill the process by that signal instead of letting
    it exit with its verdict. Ignored, it is dropped; the process is only
    joining its threads and freeing its modules by then.
    """
    hold()
    if threading.current_thread() is threading.main_thread():
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
        _state.previous.clear()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal back while the block runs; raise `Interrupted` when it ends.

    For a few lines that must not be split (create a temporary file and
    note it for removal; swap a finished folder into place).
    """
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
    if not _state.depth and _state.first is not None and not _state.raised:
        _state.raised = True
        raise Interrupted(_state.first)
