"""PangeoSlurmBackend: each Dask scheduler and worker is a Slurm job of the person who asked for the cluster.

The platform's gateway rules (``pangeohub.gateway.backend.PangeoBackendMixin``: per-user totals, owner-only
dashboards, the admin API, stop-with-server) over upstream's jobqueue ``SlurmBackend``, which submits, polls
and cancels jobs as the cluster's owner through ``sudo`` and ``dask-gateway-jobqueue-launcher`` (the rules:
``pangeohub.targets.slurm.sudoers``). The gateway itself runs as its own account (``target.slurm.gateway.user``),
never root. What this fixes or adds to upstream ``SlurmBackend`` (each trap is pinned in
tests/test_slurm_upstream.py):

- Status and cancel commands run with an empty environment, so ``squeue``/``scancel`` lose ``SLURM_CONF``;
  here every command gets it.
- ``squeue --job=<ids>`` fails for every job as soon as one has left Slurm's memory (MinJobAge), so no cluster
  would ever be seen to end; here the platform's Dask jobs are listed by their name.
- A stop whose staging directory is already gone makes the launcher print nothing, upstream fails on the empty
  answer and the job is never cancelled; here the job is cancelled anyway.
- Jobs run as the person's account (a site account by name, or the one the platform made), only for members of
  ``people_group``; the launcher is bounded in time (a hung controller never blocks the gateway).
- Schedulers and workers bind the node's cluster address (``daskjob``), not 0.0.0.0; workers run without a
  nanny, so that a worker Slurm kills for its memory ends its job (and the gateway replaces it) instead of
  being restarted unseen inside the same job.
- The environment is the notebook's: the same runtime by absolute path, the person's ``pip install --user``
  packages (``usersite``), their scratch credentials and TMPDIR; sbatch exports only these.
- Dashboards: the gateway reads each cluster's certificate from its own database, not from the person's
  private staging directory, which the gateway's account cannot read.
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
from functools import cached_property
from pathlib import Path

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.jobqueue.slurm import SlurmBackend
from traitlets import Unicode

from pangeohub.errors import PangeoError
from pangeohub.gateway.backend import PangeoBackendMixin
from pangeohub.gateway.userenv import forwarded_env, person_env
from pangeohub.targets.slurm.client import parse_squeue, squeue_args
from pangeohub.targets.slurm.daskjob import NODE_ADDRESS
from pangeohub.targets.slurm.jobscript import JOB_PREFIX, platform_tag, slurm_options

# squeue's states of a job that is (or will be) running; upstream's R, CG, PD and CF.
ALIVE = ("RUNNING", "COMPLETING", "PENDING", "CONFIGURING")


def dask_job_name(config) -> str:
    """The name of every Dask job of this platform: one name, so one ``squeue --name`` lists them all. It never
    parses as a server job's name (``jobscript.hub_user_of``), so the hub's reconcile leaves these alone."""
    return f"{JOB_PREFIX}-dask-{platform_tag(config)}"


class PangeoSlurmBackend(PangeoBackendMixin, SlurmBackend):
    tls_cache_dir = Unicode(help="Private directory (the gateway's own) for the clusters' certificates, which "
                                 "the dashboard proxy presents to schedulers.").tag(config=True)
    # Replaced on the node by its own address (daskjob): the job is submitted before Slurm picks the node.
    default_host = NODE_ADDRESS

    @cached_property
    def target(self):
        from pangeohub.targets.slurm.target import SlurmTarget

        return SlurmTarget(self.pconfig)

    @property
    def bound(self) -> float:
        """Longest the launcher (sudo, then sbatch or scancel) may take."""
        return float(self.target.slurm.command_timeout) + 10

    # -- whose account ---------------------------------------------------------------------------------
    def account(self, username: str) -> pwd.struct_passwd:
        if ":" in username:  # dask-gateway names hub services "service:<name>": they have no account
            raise PublicException(f"{username} is not a hub user: only users can start Dask clusters")
        try:
            entry = self.target.existing_account(username)
        except PangeoError as err:
            raise PublicException(f"{err.what}: start your notebook server once, then retry") from None
        group = self.target.slurm.gateway.people_group
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise PublicException(f"the group {group} of the platform's people does not exist; "
                                  "ask an administrator (target.slurm.gateway.people_group)") from None
        if gid not in os.getgrouplist(entry.pw_name, entry.pw_gid):
            raise PublicException(f"{entry.pw_name} is not in the group {group}, whose members may start Dask "
                                  "clusters; ask an administrator")
        return entry

    def get_staging_directory(self, cluster):
        # Upstream looks up an account named like the hub user; the person's own account is meant.
        entry = self.account(cluster.username)
        base = cluster.config.staging_directory.format(home=entry.pw_dir, username=entry.pw_name)
        return os.path.join(base, cluster.name)

    async def start_cluster(self, user, cluster_options):
        # Upstream submits in the background and a person whose jobs cannot be submitted only learns that the
        # cluster "failed to start": ask the controller first (bounded), and say why in the reply.
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.target.client().run, "scontrol", "ping")
        except PangeoError as err:
            raise PublicException(f"cannot start a Dask cluster now: {err.what}; try again later or ask an "
                                  "administrator") from None
        return await super().start_cluster(user, cluster_options)

    # -- the launcher ----------------------------------------------------------------------------------
    async def do_as_user(self, user, action, **kwargs):
        name = self.account(user).pw_name
        proc = await asyncio.create_subprocess_exec(
            "sudo", "-nHu", name, self.dask_gateway_jobqueue_launcher, env={}, cwd="/",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        request = json.dumps({**kwargs, "action": action}).encode()
        try:
            out, err = await asyncio.wait_for(proc.communicate(request), self.bound)
        except asyncio.TimeoutError:
            try:
                proc.kill()
            except (ProcessLookupError, PermissionError):  # sudo may be root's by now; it ends with its child
                pass
            raise PublicException(f"Slurm did not answer within {self.bound:g} s (the controller may be down); "
                                  "try again later or ask an administrator") from None
        out, err = out.decode("utf8", "replace"), err.decode("utf8", "replace")
        if proc.returncode:
            raise Exception(f"dask-gateway-jobqueue-launcher as {name} failed ({proc.returncode}): {err.strip()}")
        if not out.strip() and action == "stop" and kwargs.get("staging_dir"):
            # The staging directory was already gone, so the launcher returned before cancelling the job.
            return await self.do_as_user(user, action, **{**kwargs, "staging_dir": None})
        result = json.loads(out)
        if not result["ok"]:
            raise Exception(result["error"])
        return result["returncode"], result["stdout"], result["stderr"]

    # -- the jobs --------------------------------------------------------------------------------------
    def get_submit_cmd_env_stdin(self, cluster, worker=None):
        cmd, env, script = super().get_submit_cmd_env_stdin(cluster, worker)
        cmd = [f"--job-name={dask_job_name(self.pconfig)}" if arg.startswith("--job-name=") else arg for arg in cmd]
        return cmd + slurm_options(self.pconfig, self.target.slurm.gateway.resources), env, script

    def get_stop_cmd_env(self, job_id):
        cmd, env = super().get_stop_cmd_env(job_id)
        return cmd, {**env, **self.slurm_env}

    async def check_jobs(self, job_ids):
        if not job_ids:
            return {}
        jobs = await asyncio.get_running_loop().run_in_executor(None, self.platform_jobs)
        return {job_id: job_id in jobs and jobs[job_id].state in ALIVE for job_id in job_ids}

    def platform_jobs(self) -> dict:
        """This platform's Dask jobs Slurm knows, by id (bounded: a hung controller is a PangeoError)."""
        out = self.target.client().run("squeue", *squeue_args(name=dask_job_name(self.pconfig)))
        return parse_squeue(out)

    @property
    def slurm_env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.target.slurm.slurm_conf)}

    def _on_node(self, command: list[str]) -> list[str]:
        python = str(self.pconfig.install_dir / "bin" / "python")
        return [python, "-m", "pangeohub.targets.slurm.daskjob", *command]

    def get_scheduler_command(self, cluster):
        return self._on_node(super().get_scheduler_command(cluster))

    def get_worker_command(self, cluster, worker_name, scheduler_address=None):
        return self._on_node(super().get_worker_command(cluster, worker_name, scheduler_address) + ["--no-nanny"])

    def get_env(self, cluster):
        entry = self.account(cluster.username)
        env = forwarded_env(self.pconfig.state_dir, cluster.username, self.gw.forward_env)
        env.update(super().get_env(cluster))  # the gateway's own variables win over forwarded ones
        env.update(person_env(entry, self.pconfig.install_dir, env.get("LANG", "C.UTF-8")))
        tmp = str(Path(entry.pw_dir) / ".cache" / "tmp")
        env.update({
            **self.slurm_env,  # sbatch needs it, and daskjob asks Slurm for the node's address
            # The same private temporary directory as the person's notebook (made at its spawn), not the node's
            # shared /tmp.
            "TMPDIR": tmp, "DASK_TEMPORARY_DIRECTORY": tmp,
        })
        return env

    # -- dashboards ------------------------------------------------------------------------------------
    def dashboard_tls_paths(self, cluster):
        directory = Path(self.tls_cache_dir)
        directory.mkdir(mode=0o700, exist_ok=True)
        paths = directory / f"{cluster.name}.crt", directory / f"{cluster.name}.pem"
        for path, data in zip(paths, (cluster.tls_cert, cluster.tls_key)):
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
        return tuple(str(p) for p in paths)

    async def do_stop_cluster(self, cluster):
        await super().do_stop_cluster(cluster)
        for suffix in (".crt", ".pem"):
            (Path(self.tls_cache_dir) / f"{cluster.name}{suffix}").unlink(missing_ok=True)
