"""cgroup v1: one hierarchy per controller (cpu, memory, pids), each user's cgroup made in each.

Users' cgroups live below the cgroup pangeohub itself runs in (``/proc/<pid>/cgroup``), so that any limit
placed on pangeohub as a whole (a container, a systemd slice) still bounds every user inside it.
"""

from __future__ import annotations

from pathlib import Path

from pangeohub.targets.local.cgroup_base import CgroupBackend, UserCgroup, keyed, read, write

CONTROLLERS = ("memory", "cpu", "pids")
CFS_PERIOD_US = 100_000
UNLIMITED = 1 << 62  # memory.limit_in_bytes reads back 9223372036854771712 when unset


class CgroupV1(CgroupBackend):
    version = "v1"

    def _mount(self, controller: str) -> str | None:
        for point, fstype, options in self.mounts:
            if fstype == "cgroup" and controller in options:
                return point
        return None

    def mounted(self) -> bool:
        return all(self._mount(c) for c in CONTROLLERS)

    def _own_path(self, controller: str) -> str:
        """This process's cgroup within the controller's hierarchy, e.g. '/' or '/system.slice/x'."""
        text = read(Path(f"/proc/{self.pid}/cgroup")) or ""
        for line in text.splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return path
        return "/"

    def base(self, controller: str) -> Path:
        mount = self._mount(controller)
        if mount is None:
            raise FileNotFoundError(f"no cgroup v1 '{controller}' hierarchy is mounted")
        return Path(mount) / self._own_path(controller).lstrip("/") / self.parent

    def user_dirs(self, name: str) -> list[Path]:
        return [self.base(c) / name for c in CONTROLLERS]

    def problems(self) -> list[str]:
        missing = [c for c in CONTROLLERS if not self._mount(c)]
        if missing:
            return [f"cgroup v1: the {' and '.join(missing)} controller(s) are not mounted under /sys/fs/cgroup"]
        problems = []
        for controller, knob in (("memory", "memory.limit_in_bytes"), ("cpu", "cpu.cfs_quota_us"),
                                 ("pids", "pids.max")):
            base = self.base(controller)
            try:
                base.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(f"cgroup v1: cannot create {base}: {exc.strerror}")
                continue
            if not (base / knob).exists():
                problems.append(f"cgroup v1: {base} has no {knob}")
        return problems

    def prepare(self, name: str, cpus: float, memory: int, processes: int) -> UserCgroup:
        dirs = self.user_dirs(name)
        mem_dir, cpu_dir, pids_dir = dirs
        for path in dirs:
            path.mkdir(parents=True, exist_ok=True)
        _set_memory(mem_dir, memory)
        write(cpu_dir / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        write(cpu_dir / "cpu.cfs_quota_us", str(int(cpus * CFS_PERIOD_US)))
        write(pids_dir / "pids.max", str(processes))
        return UserCgroup(
            name=name,
            procs_files=tuple(str(d / "cgroup.procs") for d in dirs),
            cpus=cpus,
            memory=memory,
            memory_events=str(mem_dir / "memory.oom_control"),
            processes=processes,
            pids_events=str(pids_dir / "pids.events"),
            dirs=tuple(str(d) for d in dirs),
        )

    def stats(self, name: str) -> dict | None:
        mem_dir, cpu_dir, pids_dir = self.user_dirs(name)
        if not mem_dir.is_dir():
            return None
        limit = int(read(mem_dir / "memory.limit_in_bytes") or UNLIMITED)
        quota = int(read(cpu_dir / "cpu.cfs_quota_us") or -1)
        period = int(read(cpu_dir / "cpu.cfs_period_us") or CFS_PERIOD_US)
        procs = (read(mem_dir / "cgroup.procs") or "").split()
        return {
            "memory_limit": None if limit >= UNLIMITED else limit,
            "memory_used": int(read(mem_dir / "memory.usage_in_bytes") or 0),
            "cpus": None if quota < 0 else quota / period,
            "oom_kills": keyed(read(mem_dir / "memory.oom_control"), "oom_kill"),
            "processes": len(procs),
            "processes_limit": _int_or_none(read(pids_dir / "pids.max")),
            "processes_refused": keyed(read(pids_dir / "pids.events"), "max"),
        }


def _int_or_none(text: str | None) -> int | None:
    """pids.max reads 'max' when unlimited."""
    return int(text) if text and text.isdigit() else None


def _set_memory(mem_dir: Path, memory: int) -> None:
    """Memory limit, and the same limit on memory+swap so that swap cannot stretch it.

    The kernel requires memsw >= memory at every step, so the order depends on raising or lowering.
    """
    memsw = mem_dir / "memory.memsw.limit_in_bytes"
    if not memsw.exists():
        write(mem_dir / "memory.limit_in_bytes", str(memory))
        return
    try:
        write(mem_dir / "memory.limit_in_bytes", str(memory))
        write(memsw, str(memory))
    except OSError:
        write(memsw, str(memory))
        write(mem_dir / "memory.limit_in_bytes", str(memory))
