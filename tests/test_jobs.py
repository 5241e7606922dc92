"""Independent jobs (`stormcheck.jobs`): the same results for one worker, two, or a Dask cluster.

Each command that spreads its runs (`check --design all`, a Hypothesis
swarm, `sweep`, `report`) is run with ``--jobs 1`` and ``--jobs 2`` and its
output compared: files byte for byte, printed text and report pages with
wall-clock times (the one thing that may differ) masked. A real Dask
``LocalCluster`` (two worker processes on 127.0.0.1) runs a sweep through
``--scheduler``. A job that raises and a worker killed mid-job are reported
by name with the others kept; bad flags stop before any work; SIGTERM, SIGINT
or SIGHUP stops the pool and leaves neither a half-written file nor a worker behind.
"""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stormcheck import jobs
from stormcheck.cli import main
from stormcheck.properties.protocol import PROPERTIES

SAFETY = [w for p in PROPERTIES for w in ("--property", p.name)]
SMALL_GRID = ["--grid", "timeout=20:40:10", "--grid", "interval=0:10:5"]  # 9 points, ~1 s of searches


def _masked(text: str, folder: Path) -> str:
    """`text` without what only the clock decides, and with `folder` as OUT."""
    text = text.replace(str(folder), "OUT")
    text = re.sub(r"built \d{4}-\d\d-\d\d \d\d:\d\d \w+", "built WHEN", text)
    text = re.sub(r"\d[\d,]*(\.\d+)? s\b", "N s", text)
    text = re.sub(r"\d[\d,]*(\.\d+)? (states|examples)/s", r"N \2/s", text)
    return re.sub(r"<td>\d+\.\d\d</td>|\| \d+\.\d\d \|", "SECONDS", text)  # the Searches table's seconds column


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _twice(tmp_path, capsys, argv: list[str], **flags) -> list[tuple[int, str, Path]]:
    """Run `argv` once per entry of `flags` ({name: extra args}); (exit code, masked stdout, out folder) each."""
    runs = []
    for name, extra in flags.items():
        out = tmp_path / name
        rc = main([*argv, "--out", str(out), *extra])
        runs.append((rc, _masked(capsys.readouterr().out, out), out))
    return runs


def test_check_all_designs_same_with_two_workers(tmp_path, capsys):
    (rc1, out1, f1), (rc2, out2, f2) = _twice(tmp_path, capsys, ["check", "gitter-2015", "--design", "all", "--quiet"],
                                              one=["--jobs", "1"], two=["--jobs", "2"])
    assert rc1 == rc2 == 1
    assert out1 == out2 and "verdict over 6 designs: violated" in out1
    assert _files(f1) == _files(f2) and _files(f1)


def test_hypothesis_swarm_seeds_come_from_the_parent(tmp_path, capsys):
    argv = ["check", "gitter-2015", "--engine", "hypothesis", "--runs", "2", "--seed", "7", "--examples", "10",
            "--steps", "12", "--property", "parameter_agreement", "--property", "rehandshake_reachable", "--quiet"]
    (rc1, out1, f1), (rc2, out2, f2) = _twice(tmp_path, capsys, argv, one=[], two=["--jobs", "2"])
    assert rc1 == rc2 and out1 == out2
    assert "2 runs, seeds 7 to 8" in out1 and "(seed 7)" in out1
    assert _files(f1) == _files(f2)


def test_sweep_tables_and_plot_are_the_same_with_two_workers(tmp_path, capsys):
    argv = ["sweep", "gitter-2015", "--design", "off", *SMALL_GRID, "--quiet"]
    (rc1, out1, f1), (rc2, out2, f2) = _twice(tmp_path, capsys, argv, one=[], two=["--jobs", "2"])
    assert rc1 == rc2 == 1 and out1 == out2
    files = _files(f1)
    assert sorted(files) == ["gitter-2015.sweep.csv", "gitter-2015.sweep.md", "gitter-2015.sweep.png"]
    assert files == _files(f2)
    rows = files["gitter-2015.sweep.csv"].decode().splitlines()
    assert rows[0].startswith("timeout,interval,verdict,no_valid_reap")
    assert [r.split(",")[:3] for r in rows[1:]] == [
        ["20", "0", "holds"], ["20", "5", "holds"], ["20", "10", "violated"],
        ["30", "0", "holds"], ["30", "5", "holds"], ["30", "10", "holds"],
        ["40", "0", "holds"], ["40", "5", "holds"], ["40", "10", "holds"]]
    # The symbolic engine's region agrees with the exhaustive verdicts; its boundary is drawn.
    assert "proved free of valid-session reaps (symbolic engine) where T0 + I0 + rtt_max < ceil(1.6 x T0)" \
        in files["gitter-2015.sweep.md"].decode()


def test_sweep_says_why_no_boundary_is_drawn(tmp_path, capsys):
    rc = main(["sweep", "gitter-2015", "--grid", "clients=1:1", "--grid", "interval=0:2:2", "--quiet",
               "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1 and "proved boundary not drawn: synthesis is over protocol parameters, not clients" in out
    assert "proved boundary not drawn" in (tmp_path / "gitter-2015.sweep.md").read_text()


def test_sweep_whose_grid_lies_outside_the_proved_region_says_so_and_draws_no_boundary_in_the_legend(
        tmp_path, capsys, monkeypatch):
    # Per-server's adjuster raises T past 1.6 x T0 - I0 - rtt: no point of the grid is proved safe. The
    # legend once showed "proved boundary" with no line on the plot.
    from stormcheck import sweep_plot
    figures = []
    monkeypatch.setattr(sweep_plot.plt, "close", figures.append)

    def legend(fig):
        return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]

    rc = main(["sweep", "gitter-2015", "--grid", "timeout=20:60:20", "--quiet", "--out", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert rc == 1 and "; no point of this grid lies inside it, so no boundary line is drawn" in out, out
    assert "no point of this grid lies inside it" in (tmp_path / "a" / "gitter-2015.sweep.md").read_text()
    assert legend(figures[-1]) == ["violated"]
    # Control: where the region's edge crosses the grid, the line is drawn and in the legend.
    rc = main(["sweep", "gitter-2015", "--design", "off", "--grid", "interval=0:40:20", "--quiet",
               "--out", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert rc == 1 and "lies inside it" not in out, out
    assert legend(figures[-1]) == ["holds", "violated", "proved boundary"]


def _sweep_rows(folder: Path, name: str) -> list[dict]:
    import csv

    return list(csv.DictReader((folder / f"{name}.sweep.csv").read_text().splitlines()))


def test_sweep_takes_checks_budget_and_each_row_says_its_basis(tmp_path, capsys):
    # The search budget as check takes it, the same at every point; an inconclusive row says why.
    rc = main(["sweep", "static-45", "--grid", "timeout=40:45:5", "--max-states", "50", "--no-boundary", "--quiet",
               "--out", str(tmp_path / "x")])
    assert rc == 3
    for row in _sweep_rows(tmp_path / "x", "static-45"):
        assert row["verdict"] == "inconclusive" and row["searched"] == "50 states"
        assert row["note"] == ("no_valid_reap, parameter_agreement, dead_session_reaped: "
                               "search stopped (state budget of 50 spent) after 50 states")
    # The Hypothesis engine's budget: a 5-example point, not a 1000-example one.
    rc = main(["sweep", "static-45", "--engine", "hypothesis", "--grid", "timeout=40:40", "--examples", "5",
               "--steps", "10", "--seed", "1", "--property", "no_valid_reap", "--no-boundary", "--quiet",
               "--out", str(tmp_path / "h")])
    [row] = _sweep_rows(tmp_path / "h", "static-45")
    assert rc == 3 and row["searched"] == "5 examples of <= 10 steps"
    assert row["note"] == "no counterexample found in 5 examples of <= 10 steps"


def test_sweep_rows_tell_any_number_of_clients_from_the_own_fleet(tmp_path, capsys):
    rc = main(["sweep", "static-45", "--engine", "compositional", "--grid", "timeout=45:45", "--no-boundary",
               "--quiet", "--out", str(tmp_path)])
    [row] = _sweep_rows(tmp_path, "static-45")
    assert rc == 0 and row["verdict"] == "holds"
    general, own = row["note"].split("; dead_session_reaped")
    assert general.startswith("no_valid_reap, parameter_agreement: compositional search complete")
    assert general.endswith("holds for any number of clients")
    assert "(in the scenario's own fleet of 2 clients)" in own


@pytest.mark.parametrize("argv, message", [
    (["--examples", "5"], "--examples: only used by --engine hypothesis (the engine is exhaustive)"),
    (["--engine", "hypothesis", "--max-states", "9"], "--max-states: not used by --engine hypothesis"),
    (["--engine", "compositional", "--max-depth", "3"], "--max-depth: not used by --engine compositional"),
    (["--engine", "hypothesis", "--steps", "1001"], "--steps 1001: at most 1000 with --engine hypothesis"),
    (["--max-seconds", "-1"], "--max-seconds -1"),
])
def test_sweep_refuses_a_budget_its_engine_does_not_use(tmp_path, capsys, argv, message):
    rc = main(["sweep", "static-45", "--grid", "timeout=40:45:5", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


RANGED = """
[scenario]
name = "ranged"
design = "off"
[topology]
servers = 2
clients = 1
[protocol]
timeout = 45
interval = 10
[ranges]
timeout = [10, 120]
interval = [0, 3]
"""


def test_sweep_without_grid_sweeps_the_scenarios_ranges(tmp_path, capsys):
    # One scenario serves synth, plan --engine symbolic and sweep: no second copy without [ranges].
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    rc = main(["sweep", str(path), "--no-boundary", "--property", "no_valid_reap", "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert rc in (0, 1) and "Traceback" not in err
    assert (f"no --grid: sweeping {path}'s [ranges], up to 11 points per axis: timeout 10 to 120 (11 points); "
            "interval 0 to 3 (4 points)") in err, err
    assert "44 points over timeout, interval" in out
    rows = (tmp_path / "o" / "ranged.sweep.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows[::4]] == [str(t) for t in range(10, 121, 11)]


def test_sweep_with_a_grid_says_the_ranges_are_not_used(tmp_path, capsys):
    path = tmp_path / "ranged.toml"
    path.write_text(RANGED)
    rc = main(["sweep", str(path), "--grid", "timeout=40:50:10", "--no-boundary", "--property", "no_valid_reap",
               "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert (f"{path}'s [ranges] is not used by the sweep: its axes are those of --grid; interval, with no axis, "
            "keep the scenario's point values") in err, err
    rows = (tmp_path / "o" / "ranged.sweep.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows] == [["timeout", "verdict"], ["40", "holds"], ["50", "holds"]]


def test_report_same_with_two_workers(tmp_path, capsys):
    argv = ["report", "gitter-2015", "--engine", "exhaustive", "--design", "per-server", "--design", "off",
            "--skip", "storms", *SAFETY, "--quiet"]
    (rc1, _, f1), (rc2, _, f2) = _twice(tmp_path, capsys, argv, one=["--jobs", "1"], two=["--jobs", "2"])
    assert rc1 == rc2 == 0
    a, b = _files(f1), _files(f2)
    assert sorted(a) == sorted(b)
    for name in a:
        if name in ("report.html", "report.md"):
            assert _masked(a[name].decode(), f1) == _masked(b[name].decode(), f2), name
        else:
            assert a[name] == b[name], name  # traces, timelines, images: byte for byte
    assert "--jobs" not in a["report.md"].decode()


def test_sweep_on_a_dask_local_cluster_and_its_killed_worker(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    import dask

    argv = ["sweep", "gitter-2015", "--design", "off", *SMALL_GRID, "--quiet", "--no-boundary"]
    main([*argv, "--out", str(tmp_path / "here")])
    capsys.readouterr()
    # Two retries (Dask's default is 3): a job whose worker dies three times is reported (KilledWorker);
    # one that was only queued on a dying worker runs again elsewhere.
    with dask.config.set({"distributed.scheduler.allowed-failures": 2}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None) as cluster:
        rc = main([*argv, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address])
        assert rc == 1, capsys.readouterr().err
        assert _files(tmp_path / "dask") == _files(tmp_path / "here")
        todo = [jobs.Job("first", math.sqrt, (4,)), jobs.Job("raises", math.sqrt, (-1,)),
                jobs.Job("last", math.sqrt, (9,)), jobs.Job("killed", signal.raise_signal, (signal.SIGKILL,))]
        got = jobs.run(todo, jobs.Runner(scheduler=cluster.scheduler_address), progress=False)
        # The nannies restart each killed worker. Closing the cluster while one is still restarting
        # trips a race in distributed's own teardown ("can only join a started process"), so wait
        # until both workers are back before the cluster closes.
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
    assert got[0] == 2.0 and got[2] == 3.0
    assert got[1] == jobs.Failed("raises", "ValueError: math domain error", "ValueError")
    assert got[3].name == "killed" and got[3].kind == "KilledWorker", got[3]


def test_a_job_that_raises_and_a_killed_worker_are_reported_the_rest_kept():
    todo = [jobs.Job("first", math.sqrt, (4,)), jobs.Job("raises", math.sqrt, (-1,)),
            jobs.Job("killed", signal.raise_signal, (signal.SIGKILL,)),
            jobs.Job("beside", time.sleep, (0.3,)), jobs.Job("last", math.sqrt, (9,))]
    got = jobs.run(todo, jobs.Runner(workers=2), progress=False)
    assert got[0] == 2.0 and got[3] is None and got[4] == 3.0
    assert got[1] == jobs.Failed("raises", "ValueError: math domain error", "ValueError")
    assert isinstance(got[2], jobs.Failed) and got[2].name == "killed" and "worker process died" in got[2].error
    # In this process, a job that raises is reported the same way.
    here = jobs.run([j for j in todo if j.name != "killed"], progress=False)
    assert here == [got[0], got[1], got[3], got[4]]


def test_a_failed_design_is_reported_and_the_others_kept(tmp_path, capsys, monkeypatch):
    from stormcheck import cli

    real = cli.run_engine

    def engine(name, scenario, *a, **kw):
        if scenario.design.name == "fleet-wide":
            raise RuntimeError("out of disk")
        return real(name, scenario, *a, **kw)

    monkeypatch.setattr(cli, "run_engine", engine)
    rc = main(["check", "gitter-2015", "--design", "all", "--quiet", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1  # per-server is still violated
    assert "gitter-2015/fleet-wide: not checked: RuntimeError: out of disk" in out
    assert "fleet-wide inconclusive (failed)" in out and "per-server violated" in out


@pytest.mark.parametrize("argv, message", [
    (["check", "--jobs", "0"], "--jobs 0: must be a whole number from 1 to"),
    (["sweep", "gitter-2015", "--grid", "timeout=1:2", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"],
     "--jobs 2 and --scheduler tcp://127.0.0.1:1: give one"),
    (["report", "--scheduler", "no such host"], "--scheduler 'no such host': give the scheduler's address"),
    (["sweep", "gitter-2015", "--grid", "timeout=1:2", "--scheduler", "tcp://127.0.0.1:9"],
     "--scheduler tcp://127.0.0.1:9: connection refused: nothing listens there"),
    (["check", "--scheduler", "foo"], "--scheduler foo: give the scheduler's address as [tcp://]HOST:PORT"),
    (["check", "--scheduler", "tcp://127.0.0.1:1:2"], "give the scheduler's address as [tcp://]HOST:PORT"),
    (["check", "--scheduler", "tcp://127.0.0.1:70000"], "give the scheduler's address as [tcp://]HOST:PORT"),
    (["sweep", "gitter-2015"], "--grid: give at least one, as KEY=LO:HI[:STEP]"),
    (["sweep", "gitter-2015"], "without --grid a sweep takes its axes from [ranges], which preset:gitter-2015 does "
                               "not have"),
    (["sweep", "gitter-2015", "--grid", "speed=1:2"], "'speed' is not a grid key"),
    (["sweep", "gitter-2015", "--grid", "timeout=0:3"], "the point timeout=0 is not a valid scenario"),
    (["check", "--runs", "3"], "--runs: only used by --engine hypothesis"),
])
def test_bad_flags_exit_2_with_one_line_before_any_work(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr(jobs, "CONNECT_SECONDS", 1)
    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address, message", [
    ("foo", "give the scheduler's address as [tcp://]HOST:PORT"),  # no port: refused before any lookup
    ("tcp://127.0.0.1:1", "connection refused: nothing listens there"),  # not Dask's whole connect timeout
    ("bogus://127.0.0.1:1", "not an address Dask can use (unknown address scheme 'bogus'"),
])
def test_a_bad_scheduler_fails_fast_and_leaves_no_traceback(tmp_path, address, message):
    # In a process of its own: a Dask client left unclosed reports its failed close at exit.
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "stormcheck", "check", "gitter-2015", "--scheduler", address],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert took < jobs.CONNECT_SECONDS / 2, took
    assert list(tmp_path.iterdir()) == []


def test_a_port_that_accepts_but_never_speaks_dask_is_refused_within_the_connect_time(monkeypatch):
    # Another service on the port: it accepts the connection and says nothing (or hangs up). Dask's
    # client would wait for its answer past any timeout; the first byte of Dask's handshake is awaited
    # instead. The control is a real scheduler, which writes its handshake at once.
    import socket
    import threading

    monkeypatch.setattr(jobs, "CONNECT_SECONDS", 1)
    for hang_up in (False, True):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            accepted = []

            def accept():
                conn, _ = listener.accept()
                accepted.append(conn)
                if hang_up:
                    conn.close()

            threading.Thread(target=accept, daemon=True).start()
            address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
            t0 = time.monotonic()
            with pytest.raises(jobs.JobsError) as err:
                jobs._refused(address, "127.0.0.1", listener.getsockname()[1])
            assert time.monotonic() - t0 < 5
            said = "closed it without a Dask handshake" if hang_up else "sent no Dask handshake within 1 s"
            assert str(err.value).startswith(f"--scheduler {address}: something accepts connections there but")
            assert said in str(err.value)
            for conn in accepted:
                conn.close()
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        host, port = cluster.scheduler_address.removeprefix("tcp://").rsplit(":", 1)
        jobs._refused(cluster.scheduler_address, host, int(port))  # a real scheduler: no error


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_stops_the_pool_and_leaves_nothing_half_written(tmp_path, signum):
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen([sys.executable, "-m", "stormcheck", "sweep", "gitter-2015", "--grid", "timeout=20:200",
                             "--grid", "interval=0:20", "--jobs", "2", "--no-boundary", "--out", "o"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    workers = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.3)
        workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2, "the pool did not start"
    time.sleep(1.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers left running: {alive}"


def test_a_long_job_run_here_shows_progress_within_about_a_second(capsys):
    # Run in this process, the first job holds the run for 2.5 s: a line must come
    # while it runs, not only when it ends.
    todo = [jobs.Job("slow", time.sleep, (2.5,)), jobs.Job("quick", time.sleep, (0,))]
    assert jobs.run(todo, label="wait") == [None, None]
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[0].startswith("wait: 0/2 jobs done, running slow, "), lines
    assert lines[-1].startswith("wait: 2/2 jobs done"), lines
