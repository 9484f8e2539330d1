"""What every cgroup backend shares: the prepared cgroup a process joins, joining it, the backend's base class
and the small file helpers. The hierarchies (``cgroup_v1.py``, ``cgroup_v2.py``) build on this;
``cgroups.py`` picks one for the machine.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class UserCgroup:
    """A prepared cgroup: the files a process writes its pid into to join it, and what it enforces."""

    name: str
    procs_files: tuple[str, ...]
    cpus: float
    memory: int
    memory_events: str = ""  # file holding the OOM-kill counter (users can read it)
    processes: int = 0  # pids.max; 0: no process limit (a hierarchy without the pids controller)
    pids_events: str = ""  # file counting forks refused at the process limit (users can read it)
    dirs: tuple[str, ...] = field(default=())


def enter_cgroup_files(procs_files, pid: int = 0) -> None:
    """Like :func:`enter_user_cgroup`, from the ``cgroup.procs`` paths alone (what the fork server receives)."""
    data = str(pid or os.getpid()).encode()
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def enter_user_cgroup(cgroup: UserCgroup | None, pid: int = 0) -> None:
    """Move process ``pid`` (0: the caller) into ``cgroup``; None (limits off) does nothing.

    Safe to call in a ``preexec_fn`` between fork and exec: plain ``os`` calls, no imports, no locks. It must
    run while the process is still root, before it drops to the user's uid. A failure raises (OSError), so a
    server that cannot be limited does not start.
    """
    if cgroup is not None:
        enter_cgroup_files(cgroup.procs_files, pid)


class CgroupBackend:
    """How limits reach the kernel on one kind of cgroup hierarchy. Subclasses implement:

    - ``problems()``: why this machine cannot enforce limits (empty list: it can); may create the parent cgroup.
    - ``prepare(name, cpus, memory, processes)``: create or update the user's cgroup, return a
      :class:`UserCgroup`.
    - ``stats(name)``: memory limit/use, CPUs and OOM kills of a user's cgroup (None if it does not exist).
    - ``user_dirs(name)``: the directories that make up a user's cgroup (one per controller for v1).
    """

    version = ""

    def __init__(self, parent: str, mounts: list[tuple[str, str, set[str]]] | None = None, pid: int | None = None):
        self.parent = parent
        self.mounts = mounts if mounts is not None else cgroup_mounts()
        self.pid = pid or os.getpid()

    def problems(self) -> list[str]:
        raise NotImplementedError

    def prepare(self, name: str, cpus: float, memory: int, processes: int) -> UserCgroup:
        raise NotImplementedError

    def stats(self, name: str) -> dict | None:
        raise NotImplementedError

    def user_dirs(self, name: str) -> list[Path]:
        raise NotImplementedError

    def parent_dirs(self) -> list[Path]:
        return sorted({d.parent for d in self.user_dirs("x")})

    def names(self) -> list[str]:
        found: set[str] = set()
        for parent in self.parent_dirs():
            if parent.is_dir():
                found.update(p.name for p in parent.iterdir() if p.is_dir())
        return sorted(found)

    def remove(self, name: str) -> bool:
        """Remove a user's (empty) cgroup; False if processes still live in it."""
        ok = True
        for path in self.user_dirs(name):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                ok = False
        return ok

    def remove_parent(self) -> None:
        """Remove the parent cgroup once no user cgroup is left in it (another platform may still use it)."""
        for parent in self.parent_dirs():
            try:
                parent.rmdir()
            except OSError:
                pass


def cgroup_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str, set[str]]]:
    """(mount point, 'cgroup'|'cgroup2', controllers) of every cgroup hierarchy this process sees."""
    found = []
    for line in Path(mountinfo).read_text().splitlines():
        before, _, after = line.partition(" - ")
        fstype, _source, options = (after.split(" ") + ["", "", ""])[:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mount_point = before.split(" ")[4].replace("\\040", " ")
        found.append((mount_point, fstype, set(options.split(","))))
    return found


def write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None


def keyed(text: str | None, key: str) -> int:
    """The value of ``key`` in a 'key value' per line cgroup file (memory.events, memory.oom_control)."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0
