"""A bounded client for the Slurm commands the platform uses.

Every call passes ``SLURM_CONF`` explicitly (the platform's Slurm config need not be the machine's default)
and has a timeout: Slurm's client commands retry for ~10 s when slurmctld is down, and the hub must never
block on them. Failures become one ``PangeoError`` that names the command, Slurm's own message and the fix.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pangeohub.errors import PangeoError

DEFAULT_TIMEOUT = 15.0
# Slurm prints these when it cannot reach the controller (22.05 wording).
_CONTROLLER_DOWN = ("Unable to contact slurm controller", "Socket timed out", "Connection refused", "is DOWN",
                    "connect failure")
# These ask Slurm's accounting database daemon, not the controller: their failures name slurmdbd.
_DBD_COMMANDS = ("sacct", "sacctmgr", "sreport")
_DBD_FIX = "start slurmdbd, or fix AccountingStorageHost/AccountingStoragePort in "


@dataclass(frozen=True)
class Job:
    """One job as ``squeue`` reports it."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETING, ...
    reason: str  # why it is pending, or "None"
    node: str  # the node it runs on ("" while pending)
    expected_start: str  # Slurm's estimate ("N/A" when it has none)
    name: str = ""
    user: str = ""


@dataclass(frozen=True)
class Partition:
    name: str
    available: bool  # "up"
    nodes: int
    default: bool


class SlurmClient:
    """Runs ``sbatch``/``squeue``/``scancel``/``sinfo``/``scontrol``/``srun`` against one Slurm config."""

    def __init__(self, slurm_conf: str | Path, timeout: float = DEFAULT_TIMEOUT, bin_dir: str | None = None):
        self.slurm_conf = str(slurm_conf)
        self.timeout = timeout
        self.bin_dir = bin_dir

    # -- the one place commands run --------------------------------------------------------------------
    def run(self, command: str, *args: str, stdin: str | None = None, timeout: float | None = None,
            as_user: str | None = None) -> str:
        """Run one Slurm command; its stdout, or a ``PangeoError`` saying what failed and what to do."""
        if not Path(self.slurm_conf).is_file():
            raise PangeoError(f"Slurm config {self.slurm_conf} does not exist",
                              "set target.slurm.slurm_conf to the slurm.conf the cluster's clients use")
        exe = os.path.join(self.bin_dir, command) if self.bin_dir else command
        argv = [exe, *args]
        if as_user:
            # runuser keeps the job's owner the person; SLURM_CONF is passed through env, which runuser keeps.
            argv = ["runuser", "-u", as_user, "--", "env", f"SLURM_CONF={self.slurm_conf}", *argv]
        bound = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=bound,
                                  env=self.env(), cwd="/")
        except subprocess.TimeoutExpired:
            raise self.no_answer(command, bound) from None
        except FileNotFoundError:
            raise self.not_found(exe) from None
        return self.outcome(command, args, proc.returncode, proc.stdout, proc.stderr)

    # -- shared with the asynchronous client (pangeohub.targets.slurm.aclient) ---------------------------
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": self.slurm_conf}

    def no_answer(self, command: str, bound: float) -> PangeoError:
        if command in _DBD_COMMANDS:
            return PangeoError(f"Slurm's accounting (slurmdbd) did not answer `{command}` within {bound:g} s",
                               _DBD_FIX + self.slurm_conf)
        return PangeoError(f"Slurm did not answer `{command}` within {bound:g} s (SLURM_CONF={self.slurm_conf})",
                           "check that slurmctld is running and reachable: `scontrol ping`")

    @staticmethod
    def not_found(exe: str) -> PangeoError:
        return PangeoError(f"Slurm command `{exe}` not found",
                           "install the Slurm client commands (Debian: slurm-client)")

    def outcome(self, command: str, args, returncode: int, stdout: str, stderr: str) -> str:
        """stdout of a finished command, or the PangeoError its failure means."""
        if returncode:
            message = (stderr.strip() or stdout.strip()).splitlines()
            message = message[-1] if message else f"exit {returncode}"
            if command in _DBD_COMMANDS and any(marker in message for marker in _CONTROLLER_DOWN):
                raise PangeoError(f"Slurm's accounting (slurmdbd) is down or unreachable: {message}",
                                  _DBD_FIX + self.slurm_conf)
            if any(marker in message for marker in _CONTROLLER_DOWN):
                raise PangeoError(f"the Slurm controller is down or unreachable ({command}: {message})",
                                  "start slurmctld, or fix SlurmctldHost in " + self.slurm_conf)
            raise PangeoError(f"`{command} {' '.join(args)}` failed: {message}",
                              "see the Slurm message above; `sinfo` shows partitions and nodes")
        return stdout

    # -- commands --------------------------------------------------------------------------------------
    def sbatch(self, script: str, *options: str, as_user: str | None = None) -> str:
        """Submit a batch script (given as text on stdin); the new job's id."""
        out = self.run("sbatch", "--parsable", *options, stdin=script, as_user=as_user).strip()
        # --parsable prints "jobid" or "jobid;cluster"
        job_id = out.split(";")[0]
        if not job_id.isdigit():
            raise PangeoError(f"sbatch answered {out!r} instead of a job id", "check the Slurm config")
        return job_id

    def jobs(self, job_ids: list[str] | None = None, user: str | None = None) -> dict[str, Job]:
        """The jobs Slurm still knows (finished jobs drop out after MinJobAge), by id."""
        args = squeue_args(job_ids, user)
        if args is None:
            return {}
        try:
            out = self.run("squeue", *args)
        except PangeoError as err:
            # squeue --jobs fails ("Invalid job id specified") once a single listed job is gone.
            if job_ids and "Invalid job id" in err.what:
                return {}
            raise
        return parse_squeue(out)

    def job(self, job_id: str) -> Job | None:
        return self.jobs([job_id]).get(job_id)

    def show_job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (``JobState``, ``Reason``, ``NodeList``, ``Partition``, ...)."""
        out = self.run("scontrol", "--oneliner", "show", "job", job_id)
        return parse_scontrol(out)

    def cancel(self, *job_ids: str) -> None:
        if job_ids:
            self.run("scancel", *job_ids)

    def partitions(self) -> dict[str, Partition]:
        out = self.run("sinfo", "--noheader", "--format=%P|%a|%D")
        found = {}
        for line in out.splitlines():
            name, avail, count = line.split("|")
            default = name.endswith("*")
            name = name.rstrip("*")
            found[name] = Partition(name, avail == "up", int(count), default)
        return found


def squeue_args(job_ids: list[str] | None = None, user: str | None = None, name: str | None = None,
                ) -> list[str] | None:
    """squeue's arguments for ``jobs()`` (None: an empty list of ids, nothing to ask)."""
    args = ["--noheader", "--format=%i|%T|%r|%N|%S|%j|%u"]
    if job_ids is not None:
        if not job_ids:
            return None
        args.append("--jobs=" + ",".join(job_ids))
    if user:
        args.append("--user=" + user)
    if name:
        args.append("--name=" + name)
    return args


def parse_squeue(out: str) -> dict[str, Job]:
    found = {}
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) == 7:
            job = Job(*fields[:5], name=fields[5], user=fields[6])
            found[job.job_id] = job
    return found


def parse_scontrol(text: str) -> dict[str, str]:
    """Parse ``scontrol --oneliner`` output: space-separated ``Key=Value`` pairs (values may contain '=')."""
    fields: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields
