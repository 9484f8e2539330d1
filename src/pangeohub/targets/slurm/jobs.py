"""``SlurmServerJob``: batchspawner 1.3.0's ``SlurmSpawner`` with what it gets wrong on a real cluster fixed.

What each override fixes (the numbers are docs/slurm.md's list of what upstream does with JupyterHub 6.1.1):

- Every Slurm command goes through ``AsyncSlurmClient``: ``SLURM_CONF`` on each (1: upstream gives it to sbatch
  only, so squeue failed and the job was orphaned), a time bound on each (4: none upstream, a down controller
  held poll() for Slurm's retry time), asyncio subprocesses so that nothing blocks the hub's event loop, and
  one ``PangeoError`` with Slurm's message and the fix instead of a bare ``RuntimeError`` (7).
- ``start()``: the address handed to the proxy is the node's ``NodeAddr`` (``scontrol show node``), not
  squeue's node *name* (2); ``ip`` is empty and the job binds its node's cluster address
  (``pangeohub.targets.slurm.singleuser``), never 0.0.0.0 (3); a job still pending when the hub's
  ``start_timeout`` is near is cancelled and the spawn fails with Slurm's reason and expected start; the hub's
  database is not committed from here (7).
- ``query_job_status()``/``poll()``: only a definite end counts as stopped: squeue answered and the job is gone
  or in an end state (5: upstream took any answer it did not recognise, an empty one included, for "gone"). A
  controller that does not answer leaves the server running. An end Slurm chose (time limit, node failure,
  preemption, an admin's scancel) is logged and recorded with its reason (``ends``).
- ``submit_batch_script()``: the script is ``jobscript.render`` (profile resources, a job name that marks the
  platform and the person, output in the person's own directory, the runtime by absolute path, no
  ``--get-user-env``: 6), submitted as the person's account.
- ``progress()``: the job's state, Slurm's reason and expected start, instead of "Pending in queue..." (7).
- ``stop()``: cancels through the client, then waits (bounded) for the job to leave.
"""

from __future__ import annotations

import asyncio
import time

from batchspawner import JobStatus, SlurmSpawner
from tornado import web
from traitlets import Unicode, default

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm import ends, jobscript
from pangeohub.targets.slurm.aclient import AsyncSlurmClient

RUNNING = {"RUNNING"}
PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "POWER_UP_NODE"}
# States after which the server is gone (COMPLETING: the job has ended and Slurm is cleaning up).
ENDED = {"COMPLETED", "COMPLETING", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}
STATUS_EVERY = 1.0  # seconds between squeue calls while a job starts (20 spawns: 20 squeue/s at most)
PROOF_POLL_EVERY = 2.0  # while the hub checks the server's proof (every 0.1 s), ask Slurm this often at most


class SlurmServerJob(SlurmSpawner):
    ip = Unicode("", help="Empty: the job binds its node's cluster address (see the module docstring).").tag(
        config=True)

    job = None  # the last squeue answer for the job (client.Job)
    job_ended: tuple[str, str] | None = None  # (state, reason) once the job is found ended
    slurm_problem: str | None = None  # why Slurm did not answer, the last time it did not
    _progress: str = ""
    _stopping = False
    _last_query = 0.0

    @default("poll_interval")
    def _poll_interval(self):
        return float(self.runtime.config.target.slurm.poll_interval)

    @property
    def slurm(self) -> AsyncSlurmClient:
        settings = self.runtime.config.target.slurm
        return AsyncSlurmClient(settings.slurm_conf, timeout=float(settings.command_timeout))

    # -- environment and account -------------------------------------------------------------------------
    def user_env(self, env):
        # Upstream looks up the hub user's name in the password database: the account is the target's choice.
        account = self.account
        env["USER"] = env["LOGNAME"] = account.pw_name
        env["HOME"] = account.pw_dir
        env["SHELL"] = account.pw_shell
        return env

    def get_env(self):
        env = super().get_env()
        env["SLURM_CONF"] = self.slurm.slurm_conf  # the job's launcher asks Slurm for its node's address
        return env

    # -- submit, follow, cancel ----------------------------------------------------------------------------
    async def submit_batch_script(self):
        config = self.runtime.config
        env = self.get_env()
        script = jobscript.render(config, self.profile, self.user.name, self.account.pw_dir, self.log_dir, list(env),
                                  [*self.cmd, *self.get_args()])
        self.log.debug("Server job script of %s:\n%s", self.user.name, script)
        self.job_id = await self.slurm.asbatch(script, as_user=self.account.pw_name, env=env)
        self.log.info("Submitted Slurm job %s for %s", self.job_id, self.user.name)
        return self.job_id

    async def query_job_status(self):
        self._last_query = time.monotonic()
        if not self.job_id:
            self.job_status = ""
            return JobStatus.NOTFOUND
        try:
            job = (await self.slurm.ajobs([self.job_id])).get(self.job_id)
        except PangeoError as err:
            self.slurm_problem = err.what
            self.log.warning("Slurm job %s of %s: %s", self.job_id, self.user.name, err.what)
            return JobStatus.UNKNOWN  # not an answer: the job may well still run
        self.slurm_problem = None
        self.job = job
        if job is None or job.state in ENDED:
            self.job_ended = await self._how_it_ended(job)
            self.job_status = ""
            return JobStatus.NOTFOUND
        self.job_status = f"{job.state} {job.node}"
        if job.state in RUNNING:
            return JobStatus.RUNNING
        if job.state in PENDING:
            return JobStatus.PENDING
        return JobStatus.UNKNOWN  # SUSPENDED, STOPPED, ...: alive, not serving now

    async def _how_it_ended(self, job) -> tuple[str, str]:
        if job is not None:
            return job.state, job.reason
        try:  # squeue forgets ended jobs at once; scontrol keeps them for MinJobAge
            fields = await self.slurm.ashow_job(self.job_id)
        except PangeoError:
            fields = {}
        return fields.get("JobState", "ENDED"), fields.get("Reason", "no longer known to Slurm")

    async def cancel_batch_job(self):
        self.log.info("Cancelling Slurm job %s of %s", self.job_id, self.user.name)
        await self.slurm.acancel(self.job_id)

    # -- the spawner's interface ---------------------------------------------------------------------------
    async def start(self):
        self.ip, self.port = "", 0
        self.job, self.job_ended, self._stopping = None, None, False
        self._progress = "Submitting the server's job to Slurm"
        try:
            await self.submit_batch_script()
        except PangeoError as err:
            # Failing within the spawn request itself: JupyterHub shows an HTTPError's message, and nothing
            # but "Internal Server Error" for any other exception.
            raise web.HTTPError(503, str(err).replace("%", "%%"), reason="Slurm refused the job") from None
        loop = asyncio.get_running_loop()
        budget = self.pending_budget()
        deadline = loop.time() + budget
        while True:
            status = await self.query_job_status()
            if status == JobStatus.RUNNING:
                break
            if status == JobStatus.NOTFOUND:
                raise self._ended_early()
            self._progress = self.describe_wait()
            if loop.time() > deadline:
                raise await self._give_up(budget)
            await asyncio.sleep(STATUS_EVERY)
        node = self.job.node
        self.ip = await self.slurm.anode_address(node)
        self._progress = f"Job {self.job_id} running on {node} ({self.ip}): waiting for the server"
        last = loop.time()
        while self.port == 0:  # set by the job's launcher through batchspawner's API
            if loop.time() - last > 2 * STATUS_EVERY:
                last = loop.time()
                if await self.query_job_status() == JobStatus.NOTFOUND:
                    raise self._ended_early()
            if loop.time() > deadline + 60:
                raise await self._give_up(budget + 60)
            await asyncio.sleep(0.1)
        self.log.info("Server of %s: job %s on %s at %s:%s", self.user.name, self.job_id, node, self.ip, self.port)
        return self.ip, self.port

    def pending_budget(self) -> float:
        """How long a job may wait in the queue: the hub's start_timeout, less what the rest of a start needs,
        so that the spawn fails with Slurm's reason (and the job cancelled) before the hub's bare timeout."""
        return max(self.start_timeout * 0.5, self.start_timeout - 30)

    def describe_wait(self) -> str:
        job = self.job
        if job is None:
            return f"Job {self.job_id}: Slurm does not answer ({self.slurm_problem})"
        expected = f", expected start {job.expected_start}" if job.expected_start not in ("N/A", "") else ""
        return f"Job {self.job_id}: {job.state.capitalize()} ({job.reason}){expected}"

    def _ended_early(self) -> PangeoError:
        state, reason = self.job_ended or ("ENDED", "unknown")
        job_id = self.job_id
        self.clear_state()
        return PangeoError(f"the server's Slurm job {job_id} ended before the server answered: {state} ({reason})",
                           f"its output is in {self.log_dir}/server-{job_id}.log")

    async def _give_up(self, budget: float) -> PangeoError:
        waiting, job_id = self.describe_wait(), self.job_id
        try:
            await self.cancel_batch_job()
        except PangeoError as err:
            self.log.warning("Could not cancel job %s of %s: %s", job_id, self.user.name, err.what)
        self.clear_state()
        return PangeoError(f"Slurm did not start the server within {budget:.0f} s. {waiting}. The job is cancelled",
                           "choose a smaller profile or try later; `sinfo` shows what the cluster has free")

    async def poll(self):
        if not self.job_id:
            return 0
        status = await self.query_job_status()
        if status != JobStatus.NOTFOUND:
            return None
        if self.job_ended and not self._stopping:
            state, reason = self.job_ended
            self.log.warning("Slurm ended the server of %s: job %s %s (%s)", self.user.name, self.job_id, state,
                             reason)
            ends.record_end(self.runtime.config.state_dir, self.user.name, self.job_id, state, reason)
        self.clear_state()
        return 1

    async def poll_starting(self):
        """While the hub waits for the server's proof: the job was running a moment ago; ask Slurm every
        PROOF_POLL_EVERY seconds, not at the proof's pace."""
        if time.monotonic() - self._last_query < PROOF_POLL_EVERY:
            return None
        return await self.poll()

    async def stop(self, now=False):
        if not self.job_id:
            return
        self._stopping = True
        await self.cancel_batch_job()
        if now:
            return
        for _ in range(10):
            if await self.query_job_status() == JobStatus.NOTFOUND:
                return
            await asyncio.sleep(1)
        self.log.warning("Slurm job %s of %s still there 10 s after scancel", self.job_id, self.user.name)

    async def progress(self):
        entry = ends.last_end(self.runtime.config.state_dir, self.user.name)
        if entry and not entry.get("shown"):
            ends.mark_shown(self.runtime.config.state_dir, self.user.name, entry)
            yield {"message": f"Your previous server stopped: {ends.describe(entry)}"}
        shown = None
        while not self.port:
            if self._progress != shown:
                shown = self._progress
                yield {"message": shown}
            await asyncio.sleep(0.5)
