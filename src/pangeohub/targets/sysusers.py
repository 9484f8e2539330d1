"""Create and remove the Linux accounts hub users run as."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from pangeohub import privileged
from pangeohub.config.model import UsersSection
from pangeohub.errors import PangeoError
from pangeohub.names import GECOS_MARK, check_username, is_ours, system_name

# useradd/userdel take a lock on /etc/passwd and fail rather than wait: serialise them within a process
# and retry briefly against other processes (the CLI and the hub may both create accounts).
_LOCK = threading.Lock()


def run_locked(argv: list[str]) -> subprocess.CompletedProcess:
    with _LOCK:
        for attempt in range(20):
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 10 and "lock" not in proc.stderr:
                return proc
            time.sleep(0.1 * (attempt + 1))
        return proc


def ensure_account(hub_name: str, users: UsersSection) -> pwd.struct_passwd:
    """The Linux account for ``hub_name``, created with a private (0700) home if it does not exist yet."""
    check_username(hub_name, users.system_prefix)
    name = system_name(hub_name, users.system_prefix)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create(hub_name, name, users)
    home = Path(entry.pw_dir)
    if not home.exists():
        home.mkdir(parents=True, mode=0o700)
    # useradd -m honours HOME_MODE from login.defs (0755 on Debian): homes are private here whatever it says.
    privileged.make_home_private(entry)
    return entry


def _create(hub_name: str, name: str, users: UsersSection) -> pwd.struct_passwd:
    users.home_root.mkdir(parents=True, exist_ok=True)
    argv = [
        "useradd", "--create-home", "--user-group",
        "--home-dir", str(users.home_root / name),
        "--shell", users.shell,
        "--comment", f"{GECOS_MARK} {hub_name}",
        "--key", "UMASK=0077",
    ]
    if users.extra_groups:
        argv += ["--groups", ",".join(users.extra_groups)]
    proc = run_locked(argv + [name])
    if proc.returncode not in (0, 9):  # 9: created meanwhile by a concurrent spawn
        raise PangeoError(f"could not create Linux account {name!r}: {proc.stderr.strip()}")
    try:
        return pwd.getpwnam(name)
    except KeyError:  # 9 also means "a group of that name exists": nothing was created
        raise PangeoError(f"could not create Linux account {name!r}: {proc.stderr.strip()}",
                          "pick another name") from None


def our_account(linux: str) -> pwd.struct_passwd | None:
    """The entry of Linux account ``linux`` if it exists and the platform made it."""
    try:
        entry = pwd.getpwnam(linux)
    except KeyError:
        return None
    return entry if is_ours(entry) else None


def remove_account(hub_name: str, users: UsersSection, keep_home: bool = False) -> bool:
    """Remove the Linux account of ``hub_name`` (only if pangeohub made it). Returns whether one existed."""
    name = system_name(hub_name, users.system_prefix)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return False
    if not is_ours(entry):
        raise PangeoError(f"refusing to remove {name!r}: it is not an account pangeohub created")
    end_processes(entry.pw_uid, name)  # raises while one survives: the uid is never freed under a live process
    proc = run_locked(["userdel", name])
    if proc.returncode not in (0, 6):
        raise PangeoError(f"could not remove Linux account {name!r}: {proc.stderr.strip()}")
    if not keep_home:
        shutil.rmtree(entry.pw_dir, ignore_errors=True)
    return True


def lock_account(hub_name: str, users: UsersSection) -> None:
    """Keep the account and home, but stop every process of it (used by remove --keep-home)."""
    name = system_name(hub_name, users.system_prefix)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    end_processes(entry.pw_uid, name)


def end_processes(uid: int, name: str = "", timeout: float = 20.0) -> int:
    """End every process of ``uid`` on this machine, and make sure none is left; returns how many were seen.

    Scanning the process table and killing what it lists is not enough: a process that forks and exits in a
    loop lives a millisecond under each pid, is gone (a zombie) by the time a scan reads it, and its child
    outlives the account; once ``userdel`` frees the uid it reads the next new person's files. So the kill is
    done as the account itself: a child of ours becomes ``uid`` and sends SIGKILL to every process it may
    signal (``kill(-1)``), which the kernel does in one walk of the task list that a fork cannot slip past,
    the way a cgroup is frozen and killed at once; looking by uid rather than by cgroup also reaches what left
    the person's cgroup. Passes repeat until a scan finds nothing alive; if something still is after
    ``timeout`` seconds (a process that changed its uid), a PangeoError names it and the uid stays taken.
    """
    import psutil

    if uid == 0:
        raise PangeoError("refusing to end the processes of root")
    seen = len(_processes_of({uid}))
    deadline = time.monotonic() + timeout
    while True:
        _kill_everything_as(uid)
        procs = _processes_of({uid})
        if not procs:
            return seen
        if time.monotonic() > deadline:
            pids = ", ".join(str(p.pid) for p in procs[:10])
            raise PangeoError(f"processes of {name or uid} are still running after {timeout:g} s (pids {pids})",
                              "find what keeps them running, end it, and run the command again")
        seen += len(procs)
        for proc in procs:  # what kill(-1) could not reach (another real uid): by pid
            _signal(proc, "kill")
        psutil.wait_procs(procs, timeout=0.5)


def _kill_everything_as(uid: int) -> None:
    pid = os.fork()
    if pid == 0:  # the child: becomes the account, kills all of its processes (never itself), exits
        try:
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


def _processes_of(uids: set[int]) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        ids = proc.info["uids"]
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue  # already dead, waiting for its parent to read its exit: it runs nothing
        # real, effective or saved: a setuid program the person started still counts as theirs
        if ids and (ids.real in uids or ids.effective in uids or ids.saved in uids):
            found.append(proc)
    return found


def _signal(proc, how: str) -> None:
    import psutil

    try:
        getattr(proc, how)()
    except psutil.NoSuchProcess:
        pass


def end_leftover_processes(users: UsersSection, grace: float = 5.0) -> int:
    """Stop every process still running as one of this platform's accounts (``pangeohub down``).

    Once the platform is down nothing of its users may keep running: a server the hub could not stop (it was
    restarting when ``down`` came) would otherwise keep its home open while the home is unmounted under it.
    SIGTERM first, so that servers and kernels can save; SIGKILL after ``grace`` seconds. Returns how many.
    """
    uids = {entry.pw_uid for entry in pwd.getpwall()
            if entry.pw_name.startswith(users.system_prefix) and is_ours(entry) and entry.pw_uid != 0}
    return _kill(uids, grace) if uids else 0


def _kill(uids: set[int], grace: float = 0.0) -> int:
    import psutil

    procs = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids]
    for proc in procs:
        try:
            proc.terminate() if grace else proc.kill()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace or 5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(procs)
