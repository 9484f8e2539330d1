"""CPU time per person, split into server and Dask, from the kernel's cgroup counters.

cgroup v1 keeps CPU time in the ``cpuacct`` controller, which pangeohub's limits do not use (they set ``cpu``,
``memory`` and ``pids``), and on many machines it is mounted on its own. So the sampler keeps a cpuacct
cgroup per person with two children, ``server`` and ``dask``, and at every sample moves each process of the
person's memory cgroup that is not in the right one yet: a Dask scheduler, nanny or worker (it runs in its
cluster's working directory under the gateway's ``clusters`` folder, where the gateway starts it) to ``dask``,
anything else to ``server``. (Not by environment: Dask sets its process title, which overwrites what
``/proc/<pid>/environ`` shows.) Children inherit their parent's cgroup when
they fork, so a kernel started by a server that was moved is counted from its first instruction; the kernel
keeps ``cpuacct.usage`` after a process exits, so short computations between two samples are not lost.
The two children never share a process, so no CPU second is counted twice. CPU used by a process before its
first move (at most one sample interval, e.g. a server's start) is not attributed.

cgroup v2 has one hierarchy: ``cpu.stat``'s ``usage_usec`` of the person's cgroup gives the total, and Dask's
share is summed from its live processes.
"""

from __future__ import annotations

import os
from pathlib import Path

PARTS = ("server", "dask")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return None


def dask_cluster_of(pid: int, clusters_dir: Path) -> str | None:
    """The gateway cluster a process belongs to (the cluster's working directory it runs in), or None."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    if cwd.parent == clusters_dir or clusters_dir in cwd.parents:
        return cwd.relative_to(clusters_dir).parts[0]
    return None


def rss_bytes(pid: int) -> int:
    text = _read(Path(f"/proc/{pid}/statm"))
    return int(text.split()[1]) * os.sysconf("SC_PAGE_SIZE") if text else 0


def process_cpu_seconds(pid: int) -> float:
    text = _read(Path(f"/proc/{pid}/stat"))
    if not text:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_in(procs_file: Path) -> list[int]:
    return [int(p) for p in (_read(procs_file) or "").split()]


class CpuAccounting:
    """Reads (and on v1 maintains) per-person CPU counters. ``backend`` is the limits' CgroupBackend."""

    def __init__(self, backend, clusters_dir: Path):
        self.backend = backend
        self.clusters_dir = Path(clusters_dir)
        self.v1 = backend.version == "v1"
        self.base = self._cpuacct_base() if self.v1 else None

    def _cpuacct_base(self) -> Path | None:
        mount = self.backend._mount("cpuacct")
        if mount is None:
            return None
        return Path(mount) / self.backend._own_path("cpuacct").lstrip("/") / self.backend.parent

    def _member_pids(self, name: str) -> list[int]:
        """Every process in the person's (memory) cgroup: what their limits apply to."""
        return pids_in(self.backend.user_dirs(name)[0] / "cgroup.procs")

    def sample(self, name: str) -> dict | None:
        """{'server_cpu', 'dask_cpu' (seconds, monotonic), 'memory', 'dask_memory' (bytes now)}; None if the
        person has no cgroup."""
        stats = self.backend.stats(name)
        if stats is None:
            return None
        pids = self._member_pids(name)
        dask = {pid for pid in pids if dask_cluster_of(pid, self.clusters_dir) is not None}
        dask_memory = sum(rss_bytes(pid) for pid in dask)
        # Dask's memory is inside the cgroup's figure: the server's share is the rest.
        result = {"memory": max(stats["memory_used"] - dask_memory, 0), "dask_memory": dask_memory}
        if self.v1 and self.base is not None:
            result.update(self._v1_counters(name, pids, dask))
        else:
            total = self._v2_usage(name)
            dask_cpu = sum(process_cpu_seconds(pid) for pid in dask)
            result.update(server_cpu=max(total - dask_cpu, 0.0), dask_cpu=dask_cpu)
        return result

    def _v1_counters(self, name: str, pids: list[int], dask: set[int]) -> dict:
        person = self.base / name
        groups = {part: person / part for part in PARTS}
        for path in groups.values():
            path.mkdir(parents=True, exist_ok=True)
        members = {part: set(pids_in(path / "cgroup.procs")) for part, path in groups.items()}
        for pid in pids:
            part = "dask" if pid in dask else "server"
            if pid not in members[part]:
                try:
                    (groups[part] / "cgroup.procs").write_text(str(pid))
                except (ProcessLookupError, FileNotFoundError):
                    pass  # it ended meanwhile
        return {f"{part}_cpu": int(_read(path / "cpuacct.usage") or 0) / 1e9 for part, path in groups.items()}

    def _v2_usage(self, name: str) -> float:
        text = _read(self.backend.user_dirs(name)[0] / "cpu.stat") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        return 0.0

    def prune(self) -> None:
        """Remove the accounting cgroups of people whose limits cgroup is gone (released, or the platform
        stopped them): the kernel keeps an empty cgroup forever, and their use was recorded already."""
        if not (self.v1 and self.base is not None and self.base.is_dir()):
            return
        alive = set(self.backend.names())
        for person in self.base.iterdir():
            if person.is_dir() and person.name not in alive:
                for part in PARTS:
                    try:
                        (person / part).rmdir()
                    except OSError:
                        pass  # a process still in it: next round
                try:
                    person.rmdir()
                except OSError:
                    pass
