"""The Slurm client for code on the hub's event loop: the same commands, bounds and errors as ``SlurmClient``,
run as asyncio subprocesses. A thread per command would do too, until a down controller holds one thread per
server for the whole bound and the hub's default pool (a handful of threads) stalls every other spawn step."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.client import Job, SlurmClient, parse_scontrol, parse_squeue, squeue_args


class AsyncSlurmClient(SlurmClient):
    async def arun(self, command: str, *args: str, stdin: str | None = None, timeout: float | None = None,
                   as_user: str | None = None, env: dict[str, str] | None = None) -> str:
        if not Path(self.slurm_conf).is_file():
            raise PangeoError(f"Slurm config {self.slurm_conf} does not exist",
                              "set target.slurm.slurm_conf to the slurm.conf the cluster's clients use")
        # Found on the hub's own PATH: ``env`` (a job's environment) may name another, or none.
        exe = os.path.join(self.bin_dir, command) if self.bin_dir else shutil.which(command) or command
        argv = [exe, *args]
        if as_user:
            argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", as_user, "--", "/usr/bin/env",
                    f"SLURM_CONF={self.slurm_conf}", *argv]
        bound = self.timeout if timeout is None else timeout
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**self.env(), **(env or {})},
                cwd="/")
        except FileNotFoundError:
            raise self.not_found(exe) from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), bound)
        except (asyncio.TimeoutError, asyncio.CancelledError) as why:
            proc.kill()
            await proc.wait()
            if isinstance(why, asyncio.CancelledError):
                raise
            raise self.no_answer(command, bound) from None
        return self.outcome(command, args, proc.returncode, out.decode(errors="replace"),
                            err.decode(errors="replace"))

    async def asbatch(self, script: str, *options: str, as_user: str | None = None,
                      env: dict[str, str] | None = None) -> str:
        """Submit; ``env`` is what the script's ``--export`` names take their values from."""
        out = (await self.arun("sbatch", "--parsable", *options, stdin=script, as_user=as_user, env=env)).strip()
        job_id = out.splitlines()[-1].split(";")[0] if out else ""
        if not job_id.isdigit():
            raise PangeoError(f"sbatch answered {out!r} instead of a job id", "check the Slurm config")
        return job_id

    async def ajobs(self, job_ids: list[str] | None = None, user: str | None = None,
                    name: str | None = None) -> dict[str, Job]:
        args = squeue_args(job_ids, user, name)
        if args is None:
            return {}
        try:
            out = await self.arun("squeue", *args)
        except PangeoError as err:
            if job_ids and "Invalid job id" in err.what:
                return {}
            raise
        return parse_squeue(out)

    async def ashow_job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` (empty once Slurm has forgotten the job: MinJobAge after its end)."""
        try:
            return parse_scontrol(await self.arun("scontrol", "--oneliner", "show", "job", job_id))
        except PangeoError as err:
            if "Invalid job id" in err.what:
                return {}
            raise

    async def anode_address(self, node: str) -> str:
        """The address the node is reached at (its NodeAddr; the node name when the config gives none)."""
        fields = parse_scontrol(await self.arun("scontrol", "--oneliner", "show", "node", node))
        return fields.get("NodeAddr") or node

    async def acancel(self, *job_ids: str) -> None:
        if job_ids:
            await self.arun("scancel", *job_ids)
