"""Compute use on Slurm, for the usage sampler: what Slurm allocated to each person's jobs, and for how long.

Slurm's own accounting (``sacct``) needs its database daemon (``AccountingStorageType=accounting_storage/slurmdbd``);
a cluster without it still knows what every running job holds (``squeue``: CPUs, memory, time used). That is
what is recorded here, and labelled as allocated rather than measured: a job's CPUs count for as long as it runs,
busy or not, which is also what a site charges. ``accounting()`` says which of the two a cluster has, for the
sampler's log and the report.

The sampler wants monotonic counters per person, read every minute; ``squeue`` forgets a job when it ends. So
the counter is kept here: every job's CPU-seconds so far (CPUs × time used) is remembered while Slurm lists it,
and what a finished job had reached stays in its person's total. A sampler that starts again starts each person
at zero (the usage store treats a counter that starts again as new use from then on): the time it was down is a
gap in the record, never an estimate.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pangeohub.targets.slurm.client import SlurmClient, parse_scontrol
from pangeohub.targets.slurm.gateway import dask_job_name
from pangeohub.targets.slurm.jobscript import hub_user_of

# squeue: id | name | user | allocated CPUs | minimum memory | time used. Running and completing jobs hold
# their allocation; pending ones hold nothing yet.
SQUEUE_FORMAT = "--format=%i|%j|%u|%C|%m|%M"
HOLDING = "RUNNING,COMPLETING"
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class RunningJob(NamedTuple):
    user: str  # the Linux account it runs as
    kind: str  # "server" or "dask"
    cpus: int
    memory: int  # bytes requested (per node)
    used: int  # seconds it has run


def accounting(client: SlurmClient) -> str | None:
    """The cluster's accounting storage (``accounting_storage/slurmdbd``), or None when it has none."""
    kind = parse_scontrol_config(client.run("scontrol", "show", "config")).get("AccountingStorageType", "")
    return None if kind in ("", "accounting_storage/none") else kind


def parse_scontrol_config(text: str) -> dict[str, str]:
    """``scontrol show config``: one ``Key = value`` per line."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields or parse_scontrol(text)


def seconds(used: str) -> int:
    """squeue's time used, ``[days-][hours:]minutes:seconds``, in seconds."""
    days, _, clock = used.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    hours, minutes, secs = parts
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + secs


def memory_bytes(text: str) -> int:
    """squeue's minimum memory (``2G``, ``500M``; per node): bytes. Slurm's default unit is megabytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip())
    if not match:
        return 0
    return int(float(match.group(1)) * _UNITS.get(match.group(2) or "M"))


class SlurmAllocationSource:
    """CPU-seconds and memory that Slurm allocated to each person's server and Dask jobs."""

    name = "slurm-allocation"
    measured = False

    def __init__(self, config, client: SlurmClient | None = None):
        from pangeohub.targets.slurm.target import SlurmTarget

        self.config = config
        self.client = client or SlurmTarget(config).client()
        self.dask_name = dask_job_name(config)
        self.jobs: dict[str, tuple[str, str, float]] = {}  # job id -> (system user, kind, CPU-seconds counted)
        self.ended: dict[str, dict[str, float]] = {}  # system user -> kind -> CPU-seconds of jobs now gone
        self.before: dict[str, float] | None = None  # job id -> what it had used when this sampler started
        self.round: dict[str, dict] | None = None

    def describe(self) -> str:
        try:
            kind = accounting(self.client)
        except Exception as exc:  # the controller down as the sampler starts: the figures still come from squeue
            kind, why = None, f"cannot ask Slurm ({exc})"
        else:
            why = "this cluster has no Slurm accounting (AccountingStorageType=accounting_storage/none)"
        if kind:
            return (f"allocated: CPUs x time of each job from squeue; the cluster's accounting ({kind}) also "
                    "has measured CPU time (`sacct`)")
        return f"allocated: CPUs x time of each job from squeue; {why}, so CPU time is not measured"

    def kind_of(self, job_name: str) -> str | None:
        """``dask`` or ``server`` for this platform's jobs (told apart by their names), None for others."""
        return "dask" if job_name == self.dask_name else "server" if hub_user_of(self.config, job_name) else None

    def running_jobs(self) -> dict[str, RunningJob]:
        """One squeue for the whole platform: its jobs that hold an allocation now, by id."""
        out = self.client.run("squeue", "--noheader", f"--states={HOLDING}", SQUEUE_FORMAT)
        jobs = {}
        for line in out.splitlines():
            fields = line.split("|")
            if len(fields) != 6:
                continue
            job_id, name, user, cpus, mem, used = fields
            kind = self.kind_of(name)
            if kind is not None:  # else not this platform's job
                jobs[job_id] = RunningJob(user, kind, int(cpus), memory_bytes(mem), seconds(used))
        return jobs

    def _listing(self) -> dict[str, dict]:
        """One squeue per round for the whole platform: per system user, their counters and memory."""
        if self.round is not None:
            return self.round
        listed: dict[str, tuple[str, str, float]] = {}
        memory: dict[str, dict[str, int]] = {}
        for job_id, job in self.running_jobs().items():
            user, kind = job.user, job.kind
            listed[job_id] = (user, kind, job.cpus * job.used)
            memory.setdefault(user, {}).setdefault(kind, 0)
            memory[user][kind] += job.memory
        if self.before is None:  # use before this sampler started was not seen by it: a gap, not new use
            self.before = {job_id: cpu for job_id, (_, _, cpu) in listed.items()}
        listed = {job_id: (user, kind, cpu - self.before.get(job_id, 0.0))
                  for job_id, (user, kind, cpu) in listed.items()}
        for job_id, (user, kind, cpu) in self.jobs.items():
            if job_id not in listed:  # ended since the last round: what it reached stays counted
                self.ended.setdefault(user, {}).setdefault(kind, 0.0)
                self.ended[user][kind] += cpu
        self.jobs = listed
        self.round = {}
        for user in set(self.ended) | {user for user, _, _ in listed.values()}:
            row = {f"{kind}_cpu": self.ended.get(user, {}).get(kind, 0.0) for kind in ("server", "dask")}
            for job_user, kind, cpu in listed.values():
                if job_user == user:
                    row[f"{kind}_cpu"] += cpu
            row["memory"] = memory.get(user, {}).get("server", 0)
            row["dask_memory"] = memory.get(user, {}).get("dask", 0)
            self.round[user] = row
        return self.round

    def sample(self, person: str, system_user: str) -> dict | None:
        listing = self._listing()
        if self.config.target.slurm.accounts == "site":  # jobs run as the site account named like the person
            return listing.get(person)
        return listing.get(system_user)

    def close(self) -> None:
        self.round = None
