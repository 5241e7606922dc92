"""Independent jobs, run in this process, in a process pool or on a Dask cluster.

A design review asks for many runs that share nothing: scenarios x designs
x engines in ``report``, designs x mitigations in ``storm``, seeds of a
Hypothesis swarm, the points of a ``sweep``. Each is a `Job`; `run` runs a
list of them on the standard `concurrent.futures.Executor` interface:

* ``--jobs 1`` (the default): one after another in this process, as always;
* ``--jobs N``: a `ProcessPoolExecutor` of N workers on this machine;
* ``--scheduler ADDRESS``: a Dask cluster, through
  ``distributed.Client(ADDRESS).get_executor()`` (``pip install stormcheck[dask]``;
  the workers need stormcheck installed too).

Design rules
------------
1. A job is a whole search. One BFS, lasso or solver run is never split
   across processes; only runs that were already independent are spread.
2. The parent decides everything that shapes a result: the jobs and their
   order, every seed. Workers compute and return; only the parent writes
   files (atomically, through `stormcheck.output`).
3. Results come back in job order, whatever finished first, so the output
   is the same for one worker or many.
4. A job that raises, or whose worker dies, becomes a `Failed` naming the
   job and the error; every other job's result is kept. A dead worker takes
   down the pool and the jobs running beside it, so those are run again,
   each alone: only the job that kills its worker again is reported dead.
5. A signal (`stormcheck.signals` raises `Interrupted` in the main thread)
   cancels the jobs not started, terminates the workers and propagates; no
   file is written from a half-finished batch.
6. At most as many jobs are in flight as there are workers, so the running
   ones are known (for progress) and a dead worker affects only those.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

# multiprocessing and concurrent.futures are imported where a pool is made or
# awaited: every command starts by reading --jobs, most run in this process.
if TYPE_CHECKING:
    from concurrent.futures import Executor, ProcessPoolExecutor

__all__ = ["Job", "Failed", "Runner", "JobsError", "add_arguments", "runner_from", "run", "MAX_JOBS"]

# Far more workers than cores only adds memory and start-up time.
MAX_JOBS = 256
CONNECT_SECONDS = 10  # how long a --scheduler address gets to answer


class JobsError(ValueError):
    """Bad ``--jobs`` or ``--scheduler`` (exit code 2): the message says what to fix."""


@dataclass(frozen=True)
class Job:
    """One independent piece of work: ``fn(*args, **kwargs)``, called `name` in progress and errors.

    `fn`, `args` and `kwargs` must pickle (a module-level function and plain
    data). `local` holds extra keyword arguments used only when the job runs
    in this process, such as a progress callback that cannot cross processes.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    local: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """A job that raised, or whose worker died: its name and what went wrong.

    `kind` is the exception's class name ("" for a worker that died);
    `inconclusive` tells an engine that could not decide (`Inconclusive`:
    not encoded, solver unknown) from a failure, as the command line does.
    """

    name: str
    error: str
    kind: str = ""
    inconclusive: bool = False

    def __str__(self) -> str:
        return f"{self.name}: {self.error}"


@dataclass(frozen=True)
class Runner:
    """Where jobs run: `workers` processes here (1: in this process), or the Dask `scheduler`."""

    workers: int = 1
    scheduler: str | None = None

    def __str__(self) -> str:
        if self.scheduler:
            return f"the Dask cluster at {self.scheduler}"
        return "this process" if self.workers == 1 else f"{self.workers} worker processes"


def add_arguments(parser) -> None:
    """``--jobs N`` and ``--scheduler ADDRESS`` on a subcommand's parser."""
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="run independent searches in N worker processes (default 1: in this process); "
                             "results are the same for any N")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run them on a Dask cluster instead, e.g. tcp://10.0.0.5:8786 "
                             "(pip install stormcheck[dask]; the workers need stormcheck too)")


def runner_from(args) -> Runner:
    """The `Runner` that ``--jobs`` / ``--scheduler`` ask for, checked before any work starts.

    Raises `JobsError` for both flags at once, a count out of range, a
    missing Dask, or a scheduler that does not answer.
    """
    jobs, scheduler = getattr(args, "jobs", None), getattr(args, "scheduler", None)
    if jobs is not None and scheduler is not None:
        raise JobsError(f"--jobs {jobs} and --scheduler {scheduler}: give one; the cluster's workers "
                        "decide how many jobs run at once")
    if scheduler is not None:
        _connect(scheduler).close()
        return Runner(scheduler=scheduler)
    if jobs is None:
        return Runner()
    if not 1 <= jobs <= MAX_JOBS:
        import multiprocessing

        raise JobsError(f"--jobs {jobs}: must be a whole number from 1 to {MAX_JOBS} "
                        f"(this machine has {multiprocessing.cpu_count()} cores)")
    return Runner(workers=jobs)


# Dask's address schemes that name a host and a port (`distributed.comm`): these
# are checked here, and a refused connection is an answer not worth waiting for.
_HOST_PORT = ("tcp", "tls", "ws", "wss")
_EXAMPLE = "tcp://10.0.0.5:8786"


def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port of a ``tcp://`` or ``tls://`` address (None for Dask's other schemes).

    A bare ``HOST:PORT`` is TCP, as Dask reads it. Raises `JobsError` for
    an address without a port: Dask would refuse it too, but only after
    setting up a client, and a name it would look up must not be guessed at.
    """
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in _HOST_PORT:
        return None
    host, sep, port = rest.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")  # an IPv6 address: [::1]:8786
    host = host[1:-1] if bracketed else host
    if (not sep or not host or (":" in host and not bracketed) or not port.isdigit()
            or not 0 < int(port) < 65536):
        raise JobsError(f"--scheduler {address}: give the scheduler's address as [{scheme}://]HOST:PORT, "
                        f"e.g. {_EXAMPLE}")
    return host, int(port)


def _refused(address: str, host: str, port: int) -> None:
    """Raise `JobsError` at once when no Dask scheduler listens at `host`:`port`.

    Nothing listening: Dask would retry until its timeout. Something that
    accepts the connection but never speaks Dask (another service on that
    port): Dask's client would wait for its answer past any timeout. A Dask
    scheduler writes its handshake as soon as it accepts a plain TCP
    connection (`distributed.comm.core.Listener.on_connection`), so for
    ``tcp://`` the first byte is awaited here, within `CONNECT_SECONDS`;
    over TLS or websockets the server speaks second, and that is left to
    Dask. Anything else (a slow or filtered network) is left to Dask's own
    connection and its timeout.
    """
    import socket

    scheme, sep, _ = address.partition("://")
    plain = not sep or scheme == "tcp"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS) as conn:
            if not plain:
                return
            try:
                first = conn.recv(1)
            except socket.timeout:
                why = (f"something accepts connections there but sent no Dask handshake within {CONNECT_SECONDS} s: "
                       "not a Dask scheduler's port")
            else:
                if first:
                    return
                why = "something accepts connections there but closed it without a Dask handshake"
    except ConnectionRefusedError:
        why = "connection refused: nothing listens there"
    except socket.gaierror as err:
        why = f"no such host ({err.strerror or err})"
    except OSError:
        return
    raise JobsError(f"--scheduler {address}: {why}; check the address, or drop --scheduler to run here")


def _connect(address: str):
    if not address or any(c.isspace() for c in address):
        raise JobsError(f"--scheduler {address!r}: give the scheduler's address, e.g. {_EXAMPLE}")
    where = _host_port(address)
    try:
        from distributed import Client
    except ImportError:
        raise JobsError(f"--scheduler {address}: needs Dask's distributed package; "
                        "install it with: pip install 'stormcheck[dask]'") from None
    if where is not None:
        _refused(address, *where)
    # Made in two steps so that a client that failed to connect is still ours to
    # close: left to the garbage collector, its close runs at exit, waits twice
    # the timeout and prints a traceback after the error message.
    client = Client.__new__(Client)
    try:
        client.__init__(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except Exception as err:
        try:
            client.close(timeout=CONNECT_SECONDS)
        except Exception:  # noqa: S110 - the error that matters is the one about the address
            pass
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        # Dask refuses an address it cannot parse with a ValueError; anything else is the connection's.
        what = "not an address Dask can use" if type(err) is ValueError else \
            f"no Dask scheduler answered within {CONNECT_SECONDS} s"
        raise JobsError(f"--scheduler {address}: {what} ({why}); check the address, or drop --scheduler to run "
                        "here") from None
    return client


# ---------------------------------------------------------------- running


def _call(fn, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    """Run one job, in a worker or here: (True, value), or (False, (message, kind, inconclusive)).

    The error is turned into text where it happened: an exception that does
    not pickle must not take its job's name with it.
    """
    try:
        return True, fn(*args, **kwargs)
    except Exception as err:  # a signal (BaseException) stops the run instead
        return False, _described(err)


def _described(err: BaseException) -> tuple[str, str, bool]:
    from stormcheck.properties.core import Inconclusive

    kind = type(err).__name__
    return f"{kind}: {err}" if str(err) else kind, kind, isinstance(err, Inconclusive)


def _quiet_worker() -> None:
    # Ctrl-C and a closed terminal reach the whole process group; the parent
    # decides what stops, and terminates its workers (SIGTERM) itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


class _Status:
    """``label: done/total jobs, running NAME`` on stderr, once a run has taken a second.

    On a terminal one line is rewritten in place; otherwise a plain line
    as soon as the run has taken a second, then when a job ends or, in this
    process, starts (at most one a second), and every ten seconds while none
    does. A job run in this process is ticked by `_ticking` meanwhile, so a
    long first job is not a silence.
    """

    def __init__(self, label: str, total: int, enabled: bool, stream=None) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.started = self.last = time.perf_counter()
        self.open = self.shown = False
        self.done, self.running = 0, []
        # `show` is called by the ticker thread as well as the run: one line at a time.
        self.lock = threading.Lock()

    def show(self, running: Sequence[str] | None = None, ended: bool = False, starting: bool = False) -> None:
        if running is not None:
            self.running = list(running)
        running = self.running
        now = time.perf_counter()
        if not self.enabled or now - self.started < 1.0:
            return
        # Off a terminal: when a job ends or starts here, at most once a second; else every ten seconds.
        if not (self.tty or not self.shown or ((ended or starting) and now - self.last >= 1.0)
                or (ended and self.done == self.total) or now - self.last >= 10.0):
            return
        more = f" (+{len(running) - 1})" if len(running) > 1 else ""
        what = f", running {running[0]}{more}" if running else ""
        line = f"{self.label}: {self.done}/{self.total} jobs done{what}, {now - self.started:.0f} s"
        with self.lock:
            self.stream.write(f"\r{line}\033[K" if self.tty else line + "\n")
            self.stream.flush()
            self.last, self.open, self.shown = now, self.tty, True

    def clear(self) -> None:
        """End the rewritten line, so other output starts on a line of its own."""
        with self.lock:
            if self.open:
                self.stream.write("\r\033[K")
                self.stream.flush()
                self.open = False


@contextmanager
def _ticking(status: _Status):
    """While the block runs a job in this process, show `status` about once a second from a thread.

    The pool and Dask paths wait on their jobs a second at a time and show
    the status as they wait; a job run here holds this thread until it ends.
    """
    if not status.enabled:
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            status.show()

    thread = threading.Thread(target=tick, name="stormcheck-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run(jobs: Sequence[Job], runner: Runner = Runner(), *, label: str = "jobs", progress: bool = True,
        on_done: Callable[[int, Job, Any], None] | None = None) -> list:
    """Run `jobs` on `runner`; their results in job order, a `Failed` for each that failed.

    `on_done(index, job, result)` is called in the parent as each job ends
    (in completion order), for a caller's own progress lines.
    """
    jobs = list(jobs)
    status = _Status(label, len(jobs), progress and len(jobs) > 1)
    results: list = [None] * len(jobs)

    def finish(i: int, ok: bool, value) -> None:
        if not ok:
            value = Failed(jobs[i].name, *value) if isinstance(value, tuple) else Failed(jobs[i].name, value)
        results[i] = value
        status.done += 1
        status.running = [n for n in status.running if n != jobs[i].name]
        if on_done is not None:  # the caller prints its own line per job
            status.clear()
            on_done(i, jobs[i], results[i])
        else:
            status.show(ended=True)

    if runner.scheduler is None and runner.workers == 1:
        for i, job in enumerate(jobs):
            status.show([job.name], starting=True)  # this process is busy until the job ends
            # A job given its own progress callback here speaks for itself; the others are ticked.
            with _ticking(status) if "progress" not in job.local else nullcontext():
                got = _call(job.fn, job.args, {**job.kwargs, **job.local})
            finish(i, *got)
    elif runner.scheduler is not None:
        _run_dask(jobs, runner.scheduler, status, finish)
    else:
        _run_pool(jobs, runner.workers, status, finish)
    status.clear()
    return results


def _pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Fresh interpreters: a forked worker would inherit this process's signal
    # handlers, its wake-up pipe and whatever threads held locks at the fork.
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker)


def _stop(pool: Executor) -> None:
    """Cancel what has not started and end the workers now, without waiting for their jobs.

    `shutdown` alone lets running jobs finish, which for a long search is
    minutes after Ctrl-C. Python 3.14 has ``terminate_workers``; before it,
    the pool's own ``_processes`` are the only handle on its workers.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=5)


def _run_pool(jobs: list[Job], workers: int, status: _Status, finish) -> None:
    todo = list(range(len(jobs)))
    while todo:
        broken, todo = _window(jobs, todo, workers, status, finish)
        for i in broken:  # in flight when a worker died: each again, alone, to find the one that kills it
            again, _ = _window(jobs, [i], 1, status, finish)
            if again:
                finish(i, False, "its worker process died (killed by a signal, or out of memory), "
                                 "and died again when the job was run alone")


def _window(jobs: list[Job], order: list[int], workers: int, status: _Status, finish) -> tuple[list[int], list[int]]:
    """Run `order`, at most `workers` jobs in flight.

    Returns the jobs in flight when a worker died and those not started
    then (both empty when the pool did not break).
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = min(workers, len(order))
    pool = _pool(workers)
    flight: dict = {}
    pending = list(order)
    try:
        while pending or flight:
            while pending and len(flight) < workers:
                i = pending.pop(0)
                flight[pool.submit(_call, jobs[i].fn, jobs[i].args, jobs[i].kwargs)] = i
            done, _ = wait(flight, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=flight.get):
                try:
                    ok, value = fut.result()
                except BrokenProcessPool:
                    _stop(pool)
                    return sorted(flight.values()), pending
                except Exception as err:  # the job or its result did not pickle: that job's failure only
                    ok, value = False, _described(err)
                finish(flight.pop(fut), ok, value)
            status.show([jobs[i].name for i in sorted(flight.values())])
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return [], []


def _run_dask(jobs: list[Job], address: str, status: _Status, finish) -> None:
    """Submit every job to the cluster (its scheduler spreads them); collect them as they end.

    A worker that dies is Dask's to handle: it runs the job elsewhere, and
    after ``distributed.scheduler.allowed-failures`` deaths raises
    ``KilledWorker``, which names the job here like any other error.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    client = _connect(address)
    try:
        executor = client.get_executor(pure=False)  # every job runs, even two with equal arguments
        flight = {executor.submit(_call, job.fn, job.args, job.kwargs): i for i, job in enumerate(jobs)}
        try:
            while flight:
                done, _ = wait(flight, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=flight.get):
                    try:
                        ok, value = fut.result()
                    except Exception as err:  # KilledWorker, a lost connection, a job that did not unpickle
                        ok, value = False, _described(err)
                    finish(flight.pop(fut), ok, value)
                status.show([jobs[i].name for i in sorted(flight.values())])
        finally:
            executor.shutdown(wait=False)  # cancels whatever has not finished
    finally:
        client.close()
