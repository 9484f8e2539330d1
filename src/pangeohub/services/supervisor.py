"""Start services in order, watch them, restart what is safe to restart, stop everything in reverse.

``up`` runs this loop in the foreground (``--detach`` runs it in a new session and waits for it to report
healthy). Its state is visible to other commands through the pidfile and ``run/status.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pangeohub.errors import PangeoError
from pangeohub.secrets import write_private
from pangeohub.services.base import Service
from pangeohub.services.runtime import Runtime

RESTART_BURST = 5  # restarts allowed within RESTART_WINDOW before a service is declared failed
RESTART_WINDOW = 60.0
# How often the supervisor looks at its services: a service that exits (`pangeohub restart hub`, a crash) is
# started again within this. Each look is a poll() per service: cheap enough to do four times a second.
WATCH_INTERVAL = 0.25


@dataclass
class Running:
    service: Service
    proc: subprocess.Popen | None = None
    state: str = "stopped"
    restarts: list[float] = field(default_factory=list)  # within RESTART_WINDOW
    restarts_total: int = 0  # since `up`: the metrics endpoint's counter
    since: float = 0.0


class Supervisor:
    def __init__(self, rt: Runtime, log=print, keep_servers_on_failure: bool = False):
        self.rt = rt
        self.paths = rt.paths
        self.log = log
        # Set when the installer starts a new version beside people's running servers: if this start fails, the
        # servers stay for the previous version, which the installer starts again and which takes them back.
        self.keep_servers_on_failure = keep_servers_on_failure
        self.install = installed_release()
        self.running = [Running(svc) for svc in rt.services()]
        self._stopping = False
        self._lock_fd: int | None = None
        self._jobs: list[subprocess.Popen] = []

    # -- lifecycle -------------------------------------------------------------------------------------
    def run(self) -> int:
        self._acquire()
        self._release_leftovers()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._start_in_order()
            self._write_status()
            if not self._stopping:
                self.log(f"pangeohub is up: {self.rt.public_url}")
                self._start_jobs()
            while not self._stopping:
                self._watch()
                time.sleep(WATCH_INTERVAL)
        except PangeoError as exc:
            self.log(f"error: {exc}")
            self._stop_all(keep_servers=self.keep_servers_on_failure)
            return exc.exit_code
        self._stop_all()
        return 0

    def _start_in_order(self) -> None:
        """Start services in order; one that needs the others waits until all before it are ready.

        Services that do not need each other (proxy, object store, gateway, fork server) start side by side:
        most of their start is import time and waiting on timers, so this takes seconds off every `up`. One that
        no later service needs while it starts (the fork server) is waited for only at the end: the hub starts
        beside it instead of after the slowest import of all.
        """
        starting: list[Running] = []
        for item in self.running:
            if self._stopping:
                return
            if item.service.needs_earlier_services:
                for earlier in [e for e in starting if e.service.needed_by_later_services]:
                    self._wait_ready(earlier)
                starting = [e for e in starting if not e.service.needed_by_later_services]
            self._start(item)
            starting.append(item)
        for earlier in starting:
            self._wait_ready(earlier)

    def _release_leftovers(self) -> None:
        """What an interrupted run left (a killed check, a removal cut short): released before anything starts,
        once the services of a supervisor that died are stopped (pangeohub.leftovers)."""
        from pangeohub.leftovers import clean

        report = clean(self.rt, log=self.log)
        for problem in report["problems"]:
            self.log(f"  could not release: {problem}")

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True

    def _acquire(self) -> None:
        self.paths.ensure()
        fd = os.open(self.paths.supervisor_pid, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PangeoError("pangeohub is already running", "see `pangeohub status`; stop it with `pangeohub down`")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        for item in self.running:
            _kill_stale(self.paths.pidfile(item.service.name))

    # -- one service -----------------------------------------------------------------------------------
    def _start(self, item: Running) -> None:
        svc = item.service
        svc.prepare()
        log = open(self.paths.log(svc.name), "ab", buffering=0)
        log.write(f"\n--- pangeohub: starting {svc.name} at {time.ctime()} ---\n".encode())
        try:
            item.proc = subprocess.Popen(
                svc.command(), env=svc.env(), cwd=svc.cwd(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops services in order
            )
        finally:
            log.close()
        proc = psutil.Process(item.proc.pid)
        write_private(self.paths.pidfile(svc.name), f"{proc.pid} {proc.create_time()}\n", mode=0o644)
        item.state, item.since = "starting", time.time()
        self.log(f"  starting {svc.name} (pid {item.proc.pid})")
        self._write_status()

    def _wait_ready(self, item: Running) -> None:
        svc = item.service
        deadline = time.monotonic() + svc.start_timeout
        while time.monotonic() < deadline and not self._stopping:
            if item.proc.poll() is not None:
                item.state = "failed"
                raise PangeoError(
                    f"{svc.name} exited with code {item.proc.returncode} while starting:\n"
                    + _tail(self.paths.log(svc.name)),
                    f"see the whole log with `pangeohub logs {svc.name}`",
                )
            if svc.probe():
                try:
                    svc.after_ready()
                except PangeoError as exc:  # the service runs; what it could not finish is said, not fatal
                    self.log(f"  {svc.name}: {exc}")
                item.state = "running"
                self.log(f"  {svc.name} ready in {time.time() - item.since:.1f}s")
                self._write_status()
                return
            time.sleep(0.2)
        if not self._stopping:
            item.state = "failed"
            raise PangeoError(
                f"{svc.name} did not become ready within {svc.start_timeout:.0f}s:\n" + _tail(self.paths.log(svc.name)),
                f"see `pangeohub logs {svc.name}`",
            )

    def _stop(self, item: Running) -> None:
        if item.proc is None or item.proc.poll() is not None:
            item.state = "stopped"
            return
        svc = item.service
        try:
            os.killpg(item.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            item.proc.wait(svc.stop_timeout)
        except subprocess.TimeoutExpired:
            self.log(f"  {svc.name} did not stop within {svc.stop_timeout:.0f}s: killing it")
            os.killpg(item.proc.pid, signal.SIGKILL)
            item.proc.wait()
        item.state = "stopped"
        self.paths.pidfile(svc.name).unlink(missing_ok=True)

    def _start_jobs(self) -> None:
        """Background one-shot work (sample data...): it must not delay `up`, and it may need the services."""
        for name, args in self.rt.jobs():
            argv = [sys.executable, "-m", "pangeohub"]
            if self.rt.config_file:
                argv += ["--config", str(self.rt.config_file)]
            with open(self.paths.log(name), "ab") as log:
                self._jobs.append(subprocess.Popen(argv + args, stdin=subprocess.DEVNULL, stdout=log,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
            self.log(f"  started job {name} (log: {self.paths.log(name)})")

    def _stop_all(self, keep_servers: bool = False) -> None:
        self.log("stopping pangeohub" + (", leaving people's servers running" if keep_servers else ""))
        for job in self._jobs:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGTERM)
                try:
                    job.wait(10)
                except subprocess.TimeoutExpired:  # a stuck job must not keep the services running
                    os.killpg(job.pid, signal.SIGKILL)
                    job.wait()
        for item in reversed(self.running):
            began = time.monotonic()
            if item.proc is not None and item.proc.poll() is None and not keep_servers:
                try:
                    item.service.before_stop()
                except Exception as exc:  # a failed drain must not keep the rest running
                    self.log(f"  {item.service.name}: could not drain cleanly: {exc}")
            self._stop(item)
            self.log(f"  stopped {item.service.name} in {time.monotonic() - began:.1f}s")
        self._write_status()
        self.paths.status_file.unlink(missing_ok=True)
        self.paths.supervisor_pid.unlink(missing_ok=True)

    # -- watching --------------------------------------------------------------------------------------
    def _reap_jobs(self) -> None:
        """Wait for background jobs that ended: an unwaited child stays a zombie as long as the supervisor runs."""
        for job in [job for job in self._jobs if job.poll() is not None]:
            self._jobs.remove(job)
            self.log(f"  background job (pid {job.pid}) ended with code {job.returncode}")

    def _watch(self) -> None:
        self._reap_jobs()
        for index, item in enumerate(self.running):
            if item.state != "running" or item.proc.poll() is None:
                continue
            svc = item.service
            self.log(f"  {svc.name} exited unexpectedly (code {item.proc.returncode})")
            self._end_leftovers(item)
            now = time.time()
            item.restarts = [t for t in item.restarts if now - t < RESTART_WINDOW] + [now]
            item.restarts_total += 1
            if not svc.restartable or len(item.restarts) > RESTART_BURST:
                item.state = "failed"
                self._write_status()
                continue
            # Services after this one may hold state about the dead process, so restart them too, unless the
            # service puts that state back itself once restarted (``after_restart``).
            dependants = [d for d in self.running[index + 1:] if d.proc is not None and svc.restart_dependants]
            for dep in reversed(dependants):
                self._stop(dep)
            for restart in [item, *dependants]:
                try:
                    self._start(restart)
                    self._wait_ready(restart)
                except PangeoError as exc:
                    self.log(f"  restart of {restart.service.name} failed: {exc}")
            if item.state == "running":
                try:
                    svc.after_restart()
                except PangeoError as exc:
                    self.log(f"  {svc.name}: {exc}")
            self._write_status()

    def _end_leftovers(self, item: Running) -> None:
        """Kill what the dead service left in its process group: a child it ran (SeaweedFS under the object
        store's runner, the gateway's proxy) outlives a SIGKILL of its parent and would hold the ports, the
        database locks and the data directory the restarted service needs. People's servers and Dask processes
        run in sessions of their own and are not touched."""
        group = item.proc.pid
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not any(_pgid(p.pid) == group for p in psutil.process_iter()):
                return
            time.sleep(0.1)
        self.log(f"  processes of the dead {item.service.name} are still there after SIGKILL (group {group})")

    def _write_status(self) -> None:
        status = {
            "supervisor": os.getpid(),
            "url": self.rt.public_url,
            # What this process runs (the installer's record): an upgrade compares it with what is installed.
            "install": self.install,
            "services": {
                item.service.name: {
                    "pid": item.proc.pid if item.proc and item.proc.poll() is None else None,
                    "port": item.service.port,
                    "state": item.state,
                    "restarts": len(item.restarts),
                    "restarts_total": item.restarts_total,
                    "since": item.since,
                }
                for item in self.running
            },
        }
        write_private(self.paths.status_file, json.dumps(status, indent=2) + "\n", mode=0o644)


# -- commands used by the CLI ---------------------------------------------------------------------------
def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:  # gone meanwhile
        return None


def supervisor_pid(rt: Runtime) -> int | None:
    """PID of the running supervisor, judged by its lock (a stale pidfile does not count)."""
    path = rt.paths.supervisor_pid
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it
    except BlockingIOError:
        text = os.read(fd, 64).decode().strip()
        return int(text) if text.isdigit() else None
    finally:
        os.close(fd)


def installed_release() -> dict | None:
    """The installer's record (commit, lock digests) of the runtime this process runs from, if it made one."""
    try:
        return json.loads((Path(sys.prefix) / ".pangeohub-install.json").read_text())
    except (OSError, ValueError):
        return None


def start_detached(rt: Runtime, timeout: float = 300.0, upgrade: bool = False) -> None:
    rt.paths.ensure()
    argv = [sys.executable, "-m", "pangeohub"]
    if rt.config_file:
        argv += ["--config", str(rt.config_file)]
    argv += ["up"] + (["--upgrade"] if upgrade else [])
    with open(rt.paths.log("supervisor"), "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PangeoError(
                f"pangeohub stopped while starting (exit code {proc.returncode}):\n" + _tail(rt.paths.log("supervisor")),
                "see `pangeohub logs`",
            )
        status = read_status(rt)
        # A status file left by a supervisor that died without cleaning up says nothing about this one.
        services = status.get("services", {}) if status and status.get("supervisor") == proc.pid else {}
        if services and all(s["state"] == "running" for s in services.values()):
            return
        time.sleep(0.3)
    raise PangeoError(f"pangeohub did not become healthy within {timeout:.0f}s", "see `pangeohub logs`")


def stop(rt: Runtime, timeout: float = 120.0) -> bool:
    """Stop a running platform; False if none was running."""
    pid = supervisor_pid(rt)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor_pid(rt) is None:
            return True
        time.sleep(0.2)
    raise PangeoError(f"pangeohub (pid {pid}) did not stop within {timeout:.0f}s", f"kill it: kill -9 {pid}")


def read_status(rt: Runtime) -> dict | None:
    try:
        return json.loads(rt.paths.status_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _kill_stale(pidfile: Path) -> None:
    """Stop a service process left behind by a supervisor that died (so its port is free again)."""
    try:
        pid_text, created = pidfile.read_text().split()
        proc = psutil.Process(int(pid_text))
        if abs(proc.create_time() - float(created)) < 0.01:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
    except (FileNotFoundError, ValueError, psutil.Error, ProcessLookupError):
        pass
    pidfile.unlink(missing_ok=True)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return "  (no log)"
    return "\n".join("  | " + line for line in text)
