"""Where compute use comes from, per target: one small class per source, the sampler owns the workflow.

A source's ``sample(person, system_user)`` returns the person's monotonic CPU counters (``server_cpu``,
``dask_cpu``, seconds) and current memory (``memory``, ``dask_memory``, bytes), or None when it sees nothing
of them. ``measured`` says whether Dask figures are measured (True) or only requested sizes × time.
"""

from __future__ import annotations


class ComputeSource:
    name = ""
    measured = True

    def describe(self) -> str:
        """One line for the report: where the compute figures come from."""
        return self.name

    def sample(self, person: str, system_user: str) -> dict | None:
        raise NotImplementedError

    def close(self) -> None:
        """Called after every round: drop what the source keeps for people who are gone."""


class LocalCgroupSource(ComputeSource):
    """The local target: the kernel's cgroup counters (see cpuacct.py)."""

    name = "cgroups"

    def describe(self) -> str:
        return ("measured: the CPU time and memory of each person's processes, from their cgroups"
                if self.accounting else "not measured: limits.enforce is off, so people have no cgroups")

    def __init__(self, config):
        from pangeohub.paths import StatePaths
        from pangeohub.targets.local import cgroups
        from pangeohub.usage.cpuacct import CpuAccounting

        self.accounting = None
        if config.limits.enforce:
            clusters = StatePaths(config.state_dir).gateway_clusters
            self.accounting = CpuAccounting(cgroups.backend_for(config.limits), clusters)

    def sample(self, person: str, system_user: str) -> dict | None:
        return self.accounting.sample(system_user) if self.accounting else None

    def close(self) -> None:
        if self.accounting:
            self.accounting.prune()


def source_for(config) -> ComputeSource | None:
    """The compute source of the config's target (Slurm: its own accounting when it has slurmdbd); None where compute is not measured here (Kubernetes: see
    docs/admin-guide.md for the Prometheus queries that give the same figures)."""
    kind = config.target.kind
    if kind == "local":
        return LocalCgroupSource(config)
    if kind == "slurm":
        from pangeohub.targets.slurm.sacct import slurm_source

        return slurm_source(config)
    return None
