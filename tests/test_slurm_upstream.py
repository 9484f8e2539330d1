"""What upstream Slurm launchers do against the real multi-node test cluster, as pinned.

batchspawner's ``SlurmSpawner`` (servers as jobs) and dask-gateway-server's jobqueue ``SlurmBackend`` (Dask
clusters as jobs) are driven here without a hub, through their own start/poll/stop and launcher code, so that
an upgrade that changes what they do shows up here. Each test names the trap it pins down; the Slurm target's
subclasses fix those traps.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from slurm_cluster import (  # noqa: F401 (cluster and person are fixtures)
    SlurmCluster, cluster, person, requires_slurm,
)

pytestmark = requires_slurm


class _User:
    """The little of JupyterHub's ``User`` that a spawner reads outside a hub."""

    def __init__(self, name):
        self.name = name
        self.escaped_name = name
        self.id = 1
        self.url = f"/user/{name}/"
        self.spawners = {}

    @property
    def server(self):
        return None


def make_spawner(cluster, person, **traits):
    from batchspawner import SlurmSpawner

    from jupyterhub.objects import Hub

    # start() commits the hub's database once the job runs; outside a hub there is nothing to commit.
    db = SimpleNamespace(commit=lambda: None)
    spawner = SlurmSpawner(user=_User(person.pw_name), hub=Hub(), db=db, **traits)
    # What the hub would add to the job's environment; SLURM_CONF reaches sbatch/squeue/scancel this way.
    spawner.environment = {"SLURM_CONF": str(cluster.conf)}
    spawner.exec_prefix = "runuser -u {username} --"  # the hub runs as root here; sudo -E works the same
    spawner.cmd = ["/bin/sleep", "300"]  # an absolute path: see docs/slurm.md on PATH in the job
    spawner.batchspawner_singleuser_cmd = ""  # no hub to report a port to: the job only has to run
    spawner.mock_port = 9  # batchspawner's own test hook: start() waits for the port the server reports
    spawner.startup_poll_interval = 0.2
    return spawner


def test_batchspawner_imports_with_the_pinned_jupyterhub():
    import batchspawner
    import jupyterhub
    from jupyterhub.apihandlers import default_handlers

    assert batchspawner.__version__ == "1.3.0" and jupyterhub.__version__ == "6.1.1"
    # Importing it registers the API the job's batchspawner-singleuser reports its port to.
    assert any(path == r"/api/batchspawner" for path, *_ in default_handlers)


def test_slurmspawner_polls_and_cancels_without_the_spawners_environment(cluster, person, monkeypatch):
    """Trap: only sbatch gets ``get_env()``; squeue and scancel run with the hub's own environment."""
    monkeypatch.delenv("SLURM_CONF", raising=False)
    spawner = make_spawner(cluster, person)
    with pytest.raises(RuntimeError, match="disappeared"):
        asyncio.run(asyncio.wait_for(spawner.start(), 30))
    # The job was submitted (sbatch had SLURM_CONF) but squeue could not find the cluster: it is orphaned.
    orphans = cluster.run("squeue", "-h", "-u", person.pw_name, "-o", "%i").stdout.split()
    assert orphans
    cluster.run("scancel", *orphans)


def test_slurmspawner_start_poll_stop_runs_a_job_as_the_person(cluster, person, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))  # the hub's own environment names the cluster
    spawner = make_spawner(cluster, person)

    async def cycle():
        started = time.monotonic()
        ip, port = await asyncio.wait_for(spawner.start(), 30)
        took = time.monotonic() - started
        job = cluster.run("squeue", "-h", "-j", spawner.job_id, "-o", "%u %T %N").stdout.split()
        running = await spawner.poll()
        logs = {p.name: p.read_text() for p in Path(person.pw_dir).glob("jupyterhub_slurmspawner_*.log")}
        assert running is None, f"poll() says the job ended; squeue: {spawner.job_status!r} {job} {logs}"
        await spawner.stop()
        stopped = await spawner.poll()
        return ip, job, running, stopped, took

    ip, job, running, stopped, took = asyncio.run(cycle())
    assert job[:2] == [person.pw_name, "RUNNING"] and job[2] in cluster.node_names
    assert running is None and stopped == 1
    # Trap: the address batchspawner hands to the proxy is squeue's %B, the Slurm node NAME ("node1"),
    # not an address the hub can resolve. A subclass must map it to the node's NodeAddr (scontrol show node).
    assert ip == job[2]
    print(f"\nSlurmSpawner start to RUNNING: {took:.2f}s")


def test_slurmspawner_binds_every_interface_by_default():
    from batchspawner import SlurmSpawner

    # Trap: servers on compute nodes listen on 0.0.0.0 unless the subclass gives the node's cluster address.
    assert SlurmSpawner.class_traits()["ip"].default_value == "0.0.0.0"


def test_slurmspawner_commands_have_no_bound_when_the_controller_is_down(person, monkeypatch):
    """With slurmctld down, poll() waits for Slurm's own retries; nothing in batchspawner bounds it."""
    c = SlurmCluster(nodes=1)
    try:
        c.start()
        monkeypatch.setenv("SLURM_CONF", str(c.conf))
        spawner = make_spawner(c, person)
        spawner.job_id = "1"
        c.slurmctld.terminate()
        c.slurmctld.wait(10)
        started = time.monotonic()
        result = asyncio.run(spawner.poll())
        took = time.monotonic() - started
    finally:
        c.stop()
    # squeue's "Unable to contact slurm controller" maps to UNKNOWN: poll says "still running" after the wait.
    assert result is None
    assert took >= 4, took  # MessageTimeout=5 in the test cluster; 10 s with Slurm's default
    print(f"\nSlurmSpawner.poll() with the controller down: {took:.1f}s, reports the server as running")


def _launcher() -> str:
    return str(Path(sys.executable).parent / "dask-gateway-jobqueue-launcher")


def make_backend(slurm_conf=None):
    from dask_gateway_server.backends.jobqueue.slurm import SlurmBackend

    class Backend(SlurmBackend):
        # What the Slurm target's subclass must do: sudo and the backend give every command an EMPTY
        # environment, so SLURM_CONF has to be in the env the backend passes with each command.
        def get_status_cmd_env(self, job_ids):
            cmd, env = super().get_status_cmd_env(job_ids)
            return cmd, {**env, **({"SLURM_CONF": slurm_conf} if slurm_conf else {})}

        def get_stop_cmd_env(self, job_id):
            cmd, env = super().get_stop_cmd_env(job_id)
            return cmd, {**env, **({"SLURM_CONF": slurm_conf} if slurm_conf else {})}

    return Backend(dask_gateway_jobqueue_launcher=_launcher())


def test_gateway_slurm_backend_status_loses_slurm_conf(cluster, person):
    backend = make_backend()
    cmd, env = backend.get_status_cmd_env(["1"])
    assert env == {}  # status and stop commands get no environment at all
    # Trap: without SLURM_CONF squeue looks for the machine's default config (here: none) and fails.
    with pytest.raises(Exception, match="Job status check failed"):
        asyncio.run(backend.check_jobs(["1"]))


def test_gateway_slurm_backend_submits_polls_and_cancels_as_the_person(cluster, person):
    backend = make_backend(str(cluster.conf))
    conf = {"SLURM_CONF": str(cluster.conf)}
    staging = f"{person.pw_dir}/.dask-gateway/c1"
    # The command get_submit_cmd_env_stdin builds for a scheduler (it needs a cluster object from the DB).
    submit = [backend.submit_command, "--parsable", "--job-name=dask-gateway", f"--chdir={staging}",
              f"--output={staging}/scheduler.log", "--cpus-per-task=1", "--mem=200M", "--export=SLURM_CONF"]

    async def cycle():
        job_id = await backend.start_job(person.pw_name, submit, conf, "#!/bin/sh\nsleep 300\n",
                                         staging_dir=staging, files={"dask.crt": "x"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = await backend.check_jobs([job_id])
            owner = cluster.run("squeue", "-h", "-j", job_id, "-o", "%u %T").stdout.split()
            if owner[1:] == ["RUNNING"]:
                break
            await asyncio.sleep(0.3)
        await backend.stop_job(person.pw_name, job_id, staging_dir=staging)
        return job_id, states, owner

    job_id, states, owner = asyncio.run(cycle())
    assert states == {job_id: True} and owner == [person.pw_name, "RUNNING"]
    assert not Path(staging).exists()
