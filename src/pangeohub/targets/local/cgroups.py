"""Per-user cgroups: the kernel enforces each profile's CPUs and memory on a person's server and everything
it starts (kernels, terminals, local Dask processes).

One small base class, :class:`CgroupBackend`, with a backend per hierarchy (``cgroup_v1.py``, ``cgroup_v2.py``).
The hub (root) prepares a user's cgroup and sets its limits *before* forking the server; the forked child then
calls :func:`enter_user_cgroup` while still root, before it drops privileges and execs user code, so that
nothing the user runs ever lives outside the cgroup. Other launchers (the Dask Gateway backend, fast spawners)
do the same: ``cg = user_cgroup(config, account_name)`` in the parent, ``enter_user_cgroup(cg)`` in the child.
"""

from __future__ import annotations

import os

from pangeohub.errors import PangeoError
from pangeohub.targets.local.cgroup_base import (
    CgroupBackend,
    UserCgroup,
    cgroup_mounts,
    enter_cgroup_files,
    enter_user_cgroup,
)

# Re-exported: launchers import these from here (``cgroups`` is the package's face for limits).
__all__ = ["CgroupBackend", "UserCgroup", "backend_for", "cgroup_mounts", "enforceability_problems",
           "enter_cgroup_files", "enter_user_cgroup", "require_enforceable", "user_cgroup"]


def backend_for(limits, pid: int | None = None, mounts=None) -> CgroupBackend:
    """The backend the config asks for (``limits.backend``), or the one this machine offers ('auto')."""
    from pangeohub.targets.local.cgroup_v1 import CgroupV1
    from pangeohub.targets.local.cgroup_v2 import CgroupV2

    mounts = mounts if mounts is not None else cgroup_mounts()
    if limits.backend == "v1":
        return CgroupV1(limits.cgroup_name, mounts, pid)
    if limits.backend == "v2":
        return CgroupV2(limits.cgroup_name, mounts, pid)
    v1 = CgroupV1(limits.cgroup_name, mounts, pid)
    if v1.mounted():
        return v1
    return CgroupV2(limits.cgroup_name, mounts, pid)


def user_cgroup(config, account: str, profile=None) -> UserCgroup | None:
    """Prepare ``account``'s cgroup (run as root, in the parent) for :func:`enter_user_cgroup`.

    Without a ``profile``, the cgroup keeps the limits it already has (set when the person's server started),
    else gets the first profile's. Returns None when the config turns limits off.
    """
    if not config.limits.enforce:
        return None
    backend = backend_for(config.limits)
    first = config.profiles[0]
    if profile is not None:
        cpus, memory, processes = profile.cpus, profile.memory, profile.processes
    else:
        current = backend.stats(account) or {}
        if current.get("memory_limit"):
            cpus, memory = current["cpus"] or first.cpus, current["memory_limit"]
            processes = current.get("processes_limit") or first.processes
        else:
            cpus, memory, processes = first.cpus, first.memory, first.processes
    return backend.prepare(account, cpus, memory, processes)


def enforceability_problems(config) -> list[str]:
    """Why this machine cannot enforce ``config``'s limits (empty: it can, or limits are off)."""
    if not config.limits.enforce:
        return []
    try:
        backend = backend_for(config.limits)
        problems = backend.problems()
    except OSError as exc:
        return [f"cannot inspect cgroups: {exc}"]
    ncpu = os.cpu_count() or 1
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    from pangeohub.units import format_size

    for profile in config.profiles:
        if profile.cpus > ncpu:
            problems.append(f"profile {profile.name!r} asks for {profile.cpus:g} CPUs; this machine has {ncpu}")
        if profile.memory > total:
            problems.append(f"profile {profile.name!r} asks for {format_size(profile.memory)} of memory; "
                            f"this machine has {format_size(total)}")
    return problems


def require_enforceable(config) -> None:
    problems = enforceability_problems(config)
    if problems:
        raise PangeoError(
            "this machine cannot enforce the configured CPU and memory limits:\n"
            + "\n".join(f"  - {p}" for p in problems),
            "fix the machine (mount the cgroup cpu and memory controllers, run as root) or the profiles, "
            "or turn limits off explicitly with `limits: {enforce: false}` in the config",
        )
