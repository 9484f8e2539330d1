"""cgroup v2 (unified hierarchy): one directory per user below ``<mount>/<limits.cgroup_name>``.

v2 forbids processes in a cgroup whose children have controllers enabled, so users' cgroups cannot sit below
the cgroup pangeohub runs in (it holds pangeohub's own processes): the parent is made at the hierarchy's root,
where that rule does not apply. Under systemd this is a cgroup systemd does not manage; it leaves it alone.
"""

from __future__ import annotations

from pathlib import Path

from pangeohub.targets.local.cgroup_base import CgroupBackend, UserCgroup, keyed, read, write

CONTROLLERS = ("cpu", "memory", "pids")
CPU_PERIOD_US = 100_000


class CgroupV2(CgroupBackend):
    version = "v2"

    def root(self) -> Path:
        for point, fstype, _options in self.mounts:
            if fstype == "cgroup2":
                return Path(point)
        raise FileNotFoundError("no cgroup v2 hierarchy is mounted")

    def base(self) -> Path:
        return self.root() / self.parent

    def user_dirs(self, name: str) -> list[Path]:
        return [self.base() / name]

    def problems(self) -> list[str]:
        try:
            root = self.root()
        except FileNotFoundError:
            return ["cgroup v2: no cgroup2 filesystem is mounted (and cgroup v1 has no cpu/memory/pids controllers)"]
        available = set((read(root / "cgroup.controllers") or "").split())
        missing = [c for c in CONTROLLERS if c not in available]
        if missing:
            return [f"cgroup v2: {root} offers controllers {sorted(available) or 'none'}, not "
                    f"{' and '.join(missing)} (they may be bound to a cgroup v1 hierarchy)"]
        try:
            self._enable_parent()
        except OSError as exc:
            return [f"cgroup v2: cannot enable cpu, memory and pids for {self.base()}: {exc.strerror}"]
        return []

    def _enable_parent(self) -> None:
        enable = " ".join(f"+{c}" for c in CONTROLLERS)
        root, base = self.root(), self.base()
        if not set(CONTROLLERS) <= set((read(root / "cgroup.subtree_control") or "").split()):
            write(root / "cgroup.subtree_control", enable)
        base.mkdir(exist_ok=True)
        if not set(CONTROLLERS) <= set((read(base / "cgroup.subtree_control") or "").split()):
            write(base / "cgroup.subtree_control", enable)

    def prepare(self, name: str, cpus: float, memory: int, processes: int) -> UserCgroup:
        self._enable_parent()
        path = self.base() / name
        path.mkdir(exist_ok=True)
        write(path / "memory.max", str(memory))
        if (path / "memory.swap.max").exists():
            write(path / "memory.swap.max", "0")  # swap must not stretch the limit
        write(path / "cpu.max", f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        write(path / "pids.max", str(processes))
        return UserCgroup(
            name=name,
            procs_files=(str(path / "cgroup.procs"),),
            cpus=cpus,
            memory=memory,
            memory_events=str(path / "memory.events"),
            processes=processes,
            pids_events=str(path / "pids.events"),
            dirs=(str(path),),
        )

    def stats(self, name: str) -> dict | None:
        path = self.base() / name
        if not path.is_dir():
            return None
        limit = read(path / "memory.max") or "max"
        quota, _, period = (read(path / "cpu.max") or "max 100000").partition(" ")
        return {
            "memory_limit": None if limit == "max" else int(limit),
            "memory_used": int(read(path / "memory.current") or 0),
            "cpus": None if quota == "max" else int(quota) / int(period or CPU_PERIOD_US),
            "oom_kills": keyed(read(path / "memory.events"), "oom_kill"),
            "processes": len((read(path / "cgroup.procs") or "").split()),
            "processes_limit": int(pids) if (pids := read(path / "pids.max") or "max") != "max" else None,
            "processes_refused": keyed(read(path / "pids.events"), "max"),
        }
