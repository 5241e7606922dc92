"""conformance.procs: processes started, awaited within bounds, and always stopped by PID."""

import os
import signal
import subprocess
import sys
import time

import pytest

from stormcheck.conformance.procs import Processes, StartError, WaitTimeout, free_port, wait_port

# Real servers on a scaled clock, or real time: run alone (bin/test's second part).
pytestmark = pytest.mark.realtime

PY = sys.executable
SERVE = ("import socket,sys,time;s=socket.socket();s.bind(('127.0.0.1',int(sys.argv[1])));s.listen();"
         "print('listening',flush=True);time.sleep(60)")


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); ask ps what state it is in
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return state.strip().startswith("Z") or not state.strip()


def test_ready_line_and_port_then_stopped_on_exit(tmp_path):
    port = free_port()
    with Processes(tmp_path) as ps:
        p = ps.start("srv", [PY, "-c", SERVE, str(port)], ready_line="listening", ready_port=port, timeout=10)
        pid = p.pid
        assert p.alive()
    assert _gone(pid)
    assert (tmp_path / "srv.log").read_text().strip() == "listening"


def test_stopped_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError), Processes(tmp_path) as ps:
        p = ps.start("sleeper", [PY, "-c", "import time; print('up', flush=True); time.sleep(60)"], ready_line="up")
        pid = p.pid
        raise RuntimeError("boom")
    assert _gone(pid)


def test_sigterm_to_the_runner_stops_its_children(tmp_path):
    runner = (
        "import sys,time\n"
        "from stormcheck.conformance.procs import Processes\n"
        f"with Processes({str(tmp_path)!r}) as ps:\n"
        "    p = ps.start('child', [sys.executable, '-c', 'import time;print(1,flush=True);time.sleep(60)'],"
        " ready_line='1')\n"
        "    print(p.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    r = subprocess.Popen([PY, "-c", runner], stdout=subprocess.PIPE, text=True)
    try:
        child = int(r.stdout.readline())
        r.send_signal(signal.SIGTERM)
        r.wait(10)
    finally:
        if r.poll() is None:
            r.kill()
    assert _gone(child)


def test_waits_are_bounded(tmp_path):
    with Processes(tmp_path) as ps:
        t0 = time.monotonic()
        with pytest.raises(WaitTimeout, match="no line matching 'never'"):
            ps.start("quiet", [PY, "-c", "import time; time.sleep(30)"], ready_line="never", timeout=0.5)
        assert time.monotonic() - t0 < 5
        with pytest.raises(WaitTimeout):
            wait_port(free_port(), 0.3)


def test_a_process_that_dies_early_or_cannot_start_is_a_start_error(tmp_path):
    with Processes(tmp_path) as ps:
        with pytest.raises(StartError, match="exited"):
            ps.start("dies", [PY, "-c", "print('oops')"], ready_line="ready", timeout=10)
        with pytest.raises(StartError, match="cannot start"):
            ps.start("missing", ["/nonexistent/program"])
