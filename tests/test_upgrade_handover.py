"""The installer stops a platform of any version through its run dir alone, and people's servers outlive it.

Real processes stand in for the supervisor (holding the run dir's lock, as every version does), its services
(each in a session of its own, with a pidfile of pid and start time) and a person's server (in its own session,
not in any pidfile).
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from pangeohub.installer.running import started_at, stop_keeping_servers, supervisor_pid

HOLD_LOCK = ("import fcntl, os, sys, time\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\n"
             "os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())\n"
             "print('locked', flush=True)\n"
             "time.sleep(600)\n")


def _session(*argv) -> subprocess.Popen:
    return subprocess.Popen(list(argv), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


@pytest.fixture
def platform(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    procs = {}
    procs["supervisor"] = _session(sys.executable, "-c", HOLD_LOCK, str(run / "supervisor.pid"))
    assert procs["supervisor"].stdout.readline().strip() == b"locked"
    for name in ("proxy", "hub"):
        procs[name] = _session("sleep", "600")
        created = psutil.Process(procs[name].pid).create_time()
        (run / f"{name}.pid").write_text(f"{procs[name].pid} {created}\n")
    (run / "status.json").write_text(json.dumps({"services": {"proxy": {}, "hub": {}}}))
    procs["server"] = _session("sleep", "600")
    yield run, procs
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_start_time_is_read_as_psutil_reads_it():
    assert abs(started_at(os.getpid()) - psutil.Process().create_time()) < 0.05


def test_services_stop_in_reverse_order_and_the_server_runs_on(platform):
    run, procs = platform
    assert supervisor_pid(run) == procs["supervisor"].pid
    said = []
    stop_keeping_servers(run, log=said.append)
    assert said == [f"    stopped hub (pid {procs['hub'].pid})", f"    stopped proxy (pid {procs['proxy'].pid})"]
    for name in ("supervisor", "proxy", "hub"):
        assert procs[name].wait(5) is not None, name
    assert procs["server"].poll() is None
    assert supervisor_pid(run) is None
    assert sorted(p.name for p in run.iterdir()) == ["supervisor.pid"]


def test_a_pidfile_whose_process_is_another_now_is_not_acted_on(platform):
    run, procs = platform
    # The hub's pid now names another process (the server, as if the pid had been reused).
    (run / "hub.pid").write_text(f"{procs['server'].pid} {time.time() - 10_000}\n")
    stop_keeping_servers(run, log=lambda line: None)
    assert procs["server"].poll() is None
    assert not (run / "hub.pid").exists()


def test_nothing_running_is_nothing_to_stop(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / "supervisor.pid", os.O_RDWR | os.O_CREAT)  # a pidfile nobody holds: a stopped platform
    try:
        assert supervisor_pid(run) is None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and stopping it leaves it so
    finally:
        os.close(fd)
    stop_keeping_servers(run, log=lambda line: None)
