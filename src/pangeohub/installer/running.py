"""A running platform as any version leaves it in its run dir, and stopping it while people's servers run on.

The run dir holds ``supervisor.pid`` (locked by the live supervisor), ``status.json`` (the services in start
order) and one ``<service>.pid`` per service (``<pid> <start time>``, the start time as psutil gives it). Every
version since the first writes them so, which lets one version stop another.

Why the supervisor is killed rather than asked to stop: a supervisor that stops asks the hub to stop every
person's server first (``pangeohub down``), and versions before this one know no other way to stop. Killed, it
can restart nothing; its services, each in a session of its own, are then stopped in reverse start order. The
hub leaves people's servers running when it stops (``cleanup_servers`` is off), and the forked servers are in
sessions of their own too: the next hub takes them back.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from pathlib import Path

SERVICE_STOP_TIMEOUT = 30.0  # the gateway takes up to this long to stop its clusters


def supervisor_pid(run_dir: Path) -> int | None:
    """PID of the supervisor holding the run dir's lock; None when no supervisor runs."""
    try:
        fd = os.open(run_dir / "supervisor.pid", os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        text = os.read(fd, 64).decode().strip()
        return int(text) if text.isdigit() else None
    finally:
        os.close(fd)


def runs_from(pid: int, prefix: Path) -> bool:
    """Whether process ``pid`` runs the Python of the install at ``prefix`` (a platform of that install)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return Path(argv0).parent == prefix / "bin"


def started_at(pid: int) -> float | None:
    """Start time of ``pid`` in seconds since the epoch, computed as psutil does (boot time + start ticks)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    ticks = float(stat.rsplit(")", 1)[1].split()[19])  # field 22; fields after the name start at field 3
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended: only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def service_order(run_dir: Path) -> list[str]:
    """The services as the supervisor started them (its status file lists them in start order)."""
    try:
        return list(json.loads((run_dir / "status.json").read_text()).get("services", {}))
    except (OSError, ValueError):
        return sorted(p.stem for p in run_dir.glob("*.pid") if p.stem != "supervisor")


def stop_keeping_servers(run_dir: Path, log=print) -> None:
    """Stop the platform whose run dir this is, leaving people's servers running."""
    order = service_order(run_dir)
    pid = supervisor_pid(run_dir)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        if not wait_gone(pid, 30):
            raise RuntimeError(f"the supervisor (pid {pid}) did not end after SIGKILL")
    for name in reversed(order):
        stopped = stop_service(run_dir / f"{name}.pid")
        if stopped:
            log(f"    stopped {name} (pid {stopped})")
    (run_dir / "status.json").unlink(missing_ok=True)


def stop_service(pidfile: Path) -> int | None:
    """Stop the process group of the service in ``pidfile`` if it is still that process; its pid, or None."""
    try:
        pid_text, created = pidfile.read_text().split()
        pid = int(pid_text)
        started = started_at(pid)
        ours = started is not None and abs(started - float(created)) < 1.0  # not a reused pid
    except (OSError, ValueError):
        ours, pid = False, None
    if ours and alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not wait_gone(pid, SERVICE_STOP_TIMEOUT):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(pid, 10)
    else:
        pid = None
    pidfile.unlink(missing_ok=True)
    return pid
