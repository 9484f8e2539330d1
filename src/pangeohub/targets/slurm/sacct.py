"""Measured compute use on Slurm, from Slurm's own accounting: for clusters with slurmdbd and jobacct_gather.

Each round asks three things for the whole platform, each bounded by the client's timeout: ``squeue`` (which of
the platform's jobs run now, server or Dask by job name), ``sstat`` (CPU time and memory of their running steps,
as jobacct_gather last polled them) and ``sacct`` (the final CPU time of the jobs that ended lately). A job's
final figure is the rusage of its tasks (what the operating system reports once they are waited for), so it
also holds processes that ended while the job ran (a stopped Jupyter kernel), which ``sstat`` no longer sees.

The sampler wants one monotonic counter per person and kind; this keeps, per job, the most it has counted
(readings only raise it) and, once ``sacct`` has a job's final figure, folds that job into its person's total.
What a job had used before the sampler's first reading of it is not counted (the usage store's rule: that time
is a gap). When ``sstat`` fails, running jobs are credited CPUs x time from ``squeue`` for that round, and later
readings count only once they pass what was credited; nothing is counted twice. When ``sacct`` fails, ended
jobs keep their last reading until it answers again.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.usage import RunningJob, SlurmAllocationSource, accounting

log = logging.getLogger("pangeohub-usage")

ENDED = "BF,CA,CD,DL,F,NF,OOM,PR,TO"  # sacct's states of jobs that are over
SSTAT_FORMAT = "--format=JobID,TRESUsageInTot"
SACCT_FORMAT = "--format=JobIDRaw,JobName,User,TotalCPU,End"
# slurmdbd hears of a job's end a little after squeue forgets it: each sacct looks this far back.
MARGIN = 600.0
FORGET = 3600.0  # a job gone from squeue that sacct never reports as ended is folded in at its last reading
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class EndedJob(NamedTuple):
    name: str
    user: str
    cpu: float  # CPU seconds of all its steps
    end: float


def cpu_seconds(text: str) -> float:
    """Slurm's CPU time, ``[days-][hours:]minutes:seconds[.fraction]`` (``00:08.019``, ``1-02:03:04``)."""
    text = text.strip()
    if not text:
        return 0.0
    days, _, clock = text.rpartition("-")
    parts = [float(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, secs = parts
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + secs


def size_bytes(text: str) -> int:
    """A size as sstat prints it (``11152K``, ``1.5G``; a bare number is bytes)."""
    text = text.strip()
    unit = text[-1:] if text[-1:] in _UNITS and text[-1:] else ""
    try:
        return int(float(text[:-1] if unit else text) * _UNITS[unit])
    except ValueError:
        return 0


def tres(text: str) -> dict[str, str]:
    """``cpu=00:00:08,mem=11152K,...`` as a dict."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def parse_sstat(out: str) -> dict[str, tuple[float, int]]:
    """sstat's lines (one per running step): per job, CPU seconds and memory in use (all steps summed)."""
    jobs: dict[str, tuple[float, int]] = {}
    for line in out.splitlines():
        step, sep, usage = line.partition("|")
        if not sep:
            continue
        fields = tres(usage)
        job_id = step.split(".")[0]
        cpu, memory = jobs.get(job_id, (0.0, 0))
        jobs[job_id] = (cpu + cpu_seconds(fields.get("cpu", "")), memory + size_bytes(fields.get("mem", "")))
    return jobs


def parse_sacct(out: str) -> dict[str, EndedJob]:
    """sacct's lines: per job, its name, user, end and the CPU time of its steps (the job's own line holds no
    figure of its own: sacct shows the steps' sum there, so only the steps are added)."""
    jobs: dict[str, tuple[str, str, float]] = {}
    cpu: dict[str, float] = {}
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) != 5:
            continue
        job_id, name, user, total, end = fields
        if "." in job_id:
            job = job_id.split(".")[0]
            cpu[job] = cpu.get(job, 0.0) + cpu_seconds(total)
        else:
            try:  # sacct prints local time
                ended = time.mktime(time.strptime(end, "%Y-%m-%dT%H:%M:%S"))
            except ValueError:  # "Unknown": not over after all
                continue
            jobs[job_id] = (name, user, ended)
    return {job: EndedJob(name, user, cpu.get(job, 0.0), ended) for job, (name, user, ended) in jobs.items()}


class SlurmAccountingSource(SlurmAllocationSource):
    """Measured CPU seconds (and memory in use) of each person's server and Dask jobs."""

    name = "slurm-accounting"
    measured = True

    def __init__(self, config, client=None, storage: str = "accounting_storage/slurmdbd"):
        super().__init__(config, client)
        self.storage = storage
        self.counted: dict[str, float] = {}  # job id -> CPU seconds counted so far (only grows)
        self.owner: dict[str, tuple[str, str, float]] = {}  # job id -> (user, kind, last seen running)
        self.used: dict[str, int] = {}  # job id -> squeue's seconds used at the last round (for credit)
        self.baseline: dict[str, float] = {}  # job id -> what it had used at the sampler's first reading
        self.unread: set[str] = set()  # jobs running at the first round that have no reading yet
        self.totals: dict[str, dict[str, float]] = {}  # user -> kind -> CPU seconds of jobs folded in
        self.folded: dict[str, float] = {}  # job id -> when: its final figure is in totals (never again)
        self.first: float | None = None  # the first round: jobs that ended before it are not counted
        self.since: float | None = None  # where the next sacct looks back to
        self.failing: set[str] = set()  # the commands that failed, said once until they answer again

    def describe(self) -> str:
        return (f"measured: CPU time from Slurm's accounting (sacct/sstat, {self.storage}); memory in use from "
                "sstat where measured, else requested")

    def _listing(self) -> dict[str, dict]:
        if self.round is not None:
            return self.round
        now = time.time()
        running = self.running_jobs()  # the controller down: a PangeoError, and this round records no compute
        if self.first is None:
            self.first, self.since = now, now
            self.unread = set(running)
        readings = self._read(running, now)
        memory: dict[str, dict[str, int]] = {}
        for job_id, job in running.items():
            if job_id in self.folded:  # completing, and sacct already has its final figure
                continue
            self.owner[job_id] = (job.user, job.kind, now)
            reading = readings.get(job_id) if readings is not None else None
            if reading is None:
                if readings is None and job_id in self.used:  # Slurm's accounting failed: allocation credit
                    self.counted[job_id] = self.counted.get(job_id, 0.0) + job.cpus * max(
                        job.used - self.used[job_id], 0)
                used_memory = job.memory
            else:
                cpu, used_memory = reading
                if job_id in self.unread:  # running before the sampler started: that part is a gap
                    self.baseline[job_id] = cpu
                    self.unread.discard(job_id)
                self._raise(job_id, cpu - self.baseline.get(job_id, 0.0))
            self.used[job_id] = job.used
            memory.setdefault(job.user, {}).setdefault(job.kind, 0)
            memory[job.user][job.kind] += used_memory or job.memory
        self._forget(running, now)
        self.round = self._counters(memory)
        return self.round

    def _read(self, running: dict[str, RunningJob], now: float) -> dict[str, tuple[float, int]] | None:
        """Running steps' figures from sstat, and ended jobs folded in from sacct; None when sstat failed."""
        readings: dict[str, tuple[float, int]] | None = {}
        failed: dict[str, str] = {}  # command -> what went wrong
        if running:
            try:
                readings = parse_sstat(self.client.run("sstat", "--noheader", "--parsable2", "--allsteps",
                                                       "--jobs=" + ",".join(running), SSTAT_FORMAT))
            except PangeoError as exc:
                if "No steps running" not in exc.what:  # jobs still starting have no step yet: no reading
                    readings = None
                    failed["sstat"] = exc.what
        try:
            self._fold_ended(now)
        except PangeoError as exc:
            failed["sacct"] = exc.what
        self._say(failed)
        return readings

    def _fold_ended(self, now: float) -> None:
        start = self.since - MARGIN
        window = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start))
        out = self.client.run("sacct", "--allusers", "--noheader", "--parsable2", f"--starttime={window}",
                              "--endtime=now", f"--state={ENDED}", SACCT_FORMAT)
        for job_id, job in parse_sacct(out).items():
            kind = self.kind_of(job.name)
            if kind is None or job_id in self.folded or job.end < start:
                continue
            # Never seen running: it ran between two rounds (counted), or ended before the first (not counted).
            if job_id not in self.owner and job.end < self.first:
                continue
            if job_id not in self.unread:  # else what it used before the sampler started is unknown
                self._raise(job_id, job.cpu - self.baseline.get(job_id, 0.0))
            self._fold(job_id, job.user, kind, now)
        self.since = now
        # A job folded before the window's start ended before it too: sacct will not list it again.
        self.folded = {job: at for job, at in self.folded.items() if at >= self.since - MARGIN}

    def _raise(self, job_id: str, value: float) -> None:
        self.counted[job_id] = max(self.counted.get(job_id, 0.0), value)

    def _fold(self, job_id: str, user: str, kind: str, now: float) -> None:
        total = self.totals.setdefault(user, {}).setdefault(kind, 0.0)
        self.totals[user][kind] = total + self.counted.pop(job_id, 0.0)
        for table in (self.owner, self.used, self.baseline):
            table.pop(job_id, None)
        self.unread.discard(job_id)
        self.folded[job_id] = now

    def _forget(self, running: dict[str, RunningJob], now: float) -> None:
        for job_id, (user, kind, seen) in list(self.owner.items()):
            if job_id not in running and seen < now - FORGET:
                self._fold(job_id, user, kind, now)

    def _counters(self, memory: dict[str, dict[str, int]]) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        for user in set(self.totals) | {user for user, _, _ in self.owner.values()}:
            rows[user] = {f"{kind}_cpu": self.totals.get(user, {}).get(kind, 0.0) for kind in ("server", "dask")}
            rows[user]["memory"] = memory.get(user, {}).get("server", 0)
            rows[user]["dask_memory"] = memory.get(user, {}).get("dask", 0)
        for job_id, value in self.counted.items():
            if job_id in self.owner:
                user, kind, _ = self.owner[job_id]
                rows[user][f"{kind}_cpu"] += value
        return rows

    def _say(self, failed: dict[str, str]) -> None:
        """Say once that Slurm's accounting failed (and once that it answers again), not every round."""
        commands = set(failed)
        if commands and commands != self.failing:
            what = []
            if "sstat" in commands:
                what.append("running jobs are counted as CPUs x time from squeue (allocated, not measured)")
            if "sacct" in commands:
                what.append("jobs that ended keep their last reading until sacct answers")
            log.warning("Slurm's accounting failed (%s): %s; %s", ", ".join(sorted(failed)),
                        "; ".join(failed[c] for c in sorted(failed)), "; ".join(what))
        elif not commands and self.failing:
            log.info("Slurm's accounting answers again: CPU time is measured")
        self.failing = commands


def slurm_source(config) -> SlurmAllocationSource:
    """The measured source when the cluster has slurmdbd, else what Slurm allocated (squeue). Asked once, as the
    sampler starts: a controller that does not answer then means allocations until the sampler's next start."""
    allocation = SlurmAllocationSource(config)
    try:
        storage = accounting(allocation.client)
    except Exception as exc:  # the controller down as the sampler starts: its description says so
        log.warning("cannot ask Slurm whether it has accounting (%s): recording allocations from squeue", exc)
        return allocation
    if storage == "accounting_storage/slurmdbd":
        return SlurmAccountingSource(config, allocation.client, storage)
    return allocation
