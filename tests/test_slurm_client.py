"""pangeohub's bounded Slurm client against the real multi-node test cluster."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

from pangeohub.config import parse_config
from pangeohub.envs.layout import BASE_PTH
from pangeohub.envs.layout import EnvDir
from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.checks import built_environments, check_partitions, probe_runtime
from pangeohub.targets.slurm.client import SlurmClient
from slurm_cluster import (  # noqa: F401 (cluster and person are fixtures)
    SlurmCluster, cluster, person, requires_slurm,
)

pytestmark = requires_slurm


@pytest.fixture
def client(cluster):
    return SlurmClient(cluster.conf, timeout=8)


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached")


def test_submit_poll_show_cancel_as_the_person(client, cluster, person):
    script = "#!/bin/bash\nsleep 300\n"
    job_id = client.sbatch(script, f"--output={person.pw_dir}/sleep.out", "--job-name=ph-sleep",
                           as_user=person.pw_name)
    job = wait_for(lambda: (j := client.job(job_id)) and j.state == "RUNNING" and j)
    assert job.node in cluster.node_names and job.user == person.pw_name and job.name == "ph-sleep"
    shown = client.show_job(job_id)
    assert shown["JobState"] == "RUNNING" and shown["Partition"] == cluster.partition
    assert shown["NodeList"] == job.node and shown["UserId"].startswith(person.pw_name)
    client.cancel(job_id)
    # One squeue per check: the job may leave between two.
    wait_for(lambda: (j := client.job(job_id)) is None or j.state not in ("RUNNING", "COMPLETING"))


def test_pending_job_reports_its_reason_and_expected_start(client, cluster, person):
    # A start an hour from now: Slurm keeps it pending with reason BeginTime and an expected start.
    job_id = client.sbatch("#!/bin/bash\ntrue\n", f"--output={person.pw_dir}/p.out", "--begin=now+1hour",
                           as_user=person.pw_name)
    try:
        job = wait_for(lambda: (j := client.job(job_id)) and j.reason == "BeginTime" and j)
        assert job.state == "PENDING" and job.node == "" and job.expected_start not in ("", "N/A")
    finally:
        client.cancel(job_id)


def test_jobs_that_are_gone_are_not_an_error(client):
    assert client.jobs(["999999"]) == {}
    assert client.jobs([]) == {}


def test_bad_submission_is_one_clear_error(client, person):
    with pytest.raises(PangeoError) as err:
        client.sbatch("#!/bin/bash\ntrue\n", "--partition=nosuch", as_user=person.pw_name)
    assert "sbatch" in str(err.value) and "invalid partition" in str(err.value).lower()


def test_partitions_and_live_checks(client, cluster):
    parts = client.partitions()
    assert parts[cluster.partition].available and parts[cluster.partition].nodes == 2
    check_partitions(client, [cluster.partition])
    with pytest.raises(PangeoError, match="partition 'gpu' does not exist.*compute"):
        check_partitions(client, ["gpu"])


def test_runtime_probe_sees_the_same_runtime_on_every_node(client, cluster):
    found = probe_runtime(client, cluster.partition, cluster.node_names)
    assert set(found) == set(cluster.node_names)
    assert all(seen["python"] == sys.executable for seen in found.values())


def test_runtime_probe_refuses_a_runtime_the_nodes_lack(client, cluster):
    node = cluster.node_names[0]
    with pytest.raises(PangeoError, match=node):
        probe_runtime(client, cluster.partition, [node], python="/nonexistent/bin/python")


def _version(install_dir: Path, name: str, python: bool = True) -> None:
    """Version 1 of environment ``name`` as a build leaves a ``base: pangeo`` one: a venv of the runtime's Python
    with the runtime's packages layered in (pangeohub.envs.build), or, without ``python``, one whose files are gone."""
    envdir = EnvDir.of(install_dir, name)
    folder = envdir.version_dir(1)
    if python:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
        site = next(folder.glob("lib/python*/site-packages"))
        (site / BASE_PTH).write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "build.json").write_text("{}")
    envdir.set_current(1)


def test_runtime_probe_runs_every_built_environment_on_every_node(client, cluster):
    install_dir = Path(tempfile.mkdtemp(prefix="pangeohub-test-envs-", dir="/var/tmp"))  # the nodes' view too
    try:
        config = parse_config(f"install_dir: {install_dir}\nenvironments:\n"
                              "  - {name: ocean, packages: ['xarray>=2023']}\n"
                              "  - {name: broken, packages: [pangeohub-no-such-dist-zz]}\n"
                              "  - {name: gone, packages: [xarray]}\n"
                              "  - {name: unbuilt, packages: [xarray]}\n")
        _version(install_dir, "ocean")
        ocean = built_environments(config)
        assert ocean == {"ocean (version 1)": [str(install_dir / "envs/ocean/1/bin/python"), "xarray"]}
        found = probe_runtime(client, cluster.partition, cluster.node_names, environments=ocean)
        assert all(seen["envs"] == ["ocean (version 1)"] for seen in found.values()), found

        _version(install_dir, "broken")
        _version(install_dir, "gone", python=False)
        node = cluster.node_names[0]
        with pytest.raises(PangeoError) as caught:
            probe_runtime(client, cluster.partition, [node], environments=built_environments(config))
        message = str(caught.value)
        assert f"environment(s) broken (version 1), gone (version 1) do not run on Slurm node {node}" in message
        assert "pangeohub-no-such-dist-zz" in message and str(install_dir / "envs/gone/1/bin/python") in message
        assert "ocean" not in message and "unbuilt" not in message
        assert "on the filesystem the compute nodes share" in message  # how to fix it
    finally:
        shutil.rmtree(install_dir)


def test_missing_slurm_conf_is_one_clear_error(tmp_path):
    with pytest.raises(PangeoError, match="does not exist"):
        SlurmClient(tmp_path / "slurm.conf").partitions()


def test_controller_down_gives_a_clear_error_within_the_bound():
    cluster = SlurmCluster(nodes=1)
    try:
        cluster.start()
        cluster.slurmctld.terminate()
        cluster.slurmctld.wait(10)
        client = SlurmClient(cluster.conf, timeout=3)
        for call in (client.partitions, lambda: client.jobs(["1"]),
                     lambda: client.sbatch("#!/bin/bash\ntrue\n")):
            started = time.monotonic()
            with pytest.raises(PangeoError) as err:
                call()
            assert time.monotonic() - started < 3 + 1
            assert "slurm" in str(err.value).lower() and "slurmctld" in str(err.value)
    finally:
        cluster.stop()
