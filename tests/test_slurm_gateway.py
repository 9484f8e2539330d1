"""Dask Gateway on Slurm, on the real two-node test cluster, through a real platform (target slurm).

A person's notebook runs as a Slurm job on a compute node; ``Gateway().new_cluster()`` there, with no
arguments, starts the scheduler and the workers as Slurm jobs of that person. One cluster and one platform
for the module; each test adds its own people. The gateway runs as its own unprivileged account with the sudo
rule the platform installed; the module removes the rule, the account and the group at the end.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess

import pytest
from harness import Platform, kernel_json, wait_for
from slurm_cluster import cluster, requires_slurm  # noqa: F401 (fixture)
from test_slurm_spawn import slurm_extra

from pangeohub.usersim import UserSim, run_sync

pytestmark = requires_slurm

WORKER_MEMORY = "600M"


@pytest.fixture(scope="module")
def hub(cluster):
    tag = os.getpid() % 100000
    gateway_user, people = f"phgw{tag}", f"phpeople{tag}"
    extra = slurm_extra(cluster)
    extra["target"]["slurm"]["gateway"] = {
        "user": gateway_user, "people_group": people,
        "resources": {"partition": cluster.partition, "time_limit": "30m"}}
    extra["gateway"] = {
        "enabled": True, "stop_with_server_period": "2s",
        "scheduler_memory": "400M",
        "options": {"worker_memory": {"min": "256M", "default": WORKER_MEMORY, "max": "1G"}},
        "limits": {"cluster_max_workers": 4, "user_max_clusters": 2, "user_max_cores": 6},
    }
    platform = Platform(extra=extra)  # sections merge: the gateway keeps the ports Platform chose
    from pangeohub.targets.slurm.gatewaysetup import sudoers_file

    rule = sudoers_file(platform.rt.config)
    try:
        platform.up()
        yield platform
    finally:
        log = platform.rt.paths.log("dask-gateway")
        if log.exists():
            print("--- gateway log\n" + "\n".join(log.read_text(errors="replace").splitlines()[-80:]))
        platform.close()
        rule.unlink(missing_ok=True)
        subprocess.run(["userdel", gateway_user], capture_output=True)
        subprocess.run(["groupdel", people], capture_output=True)


def run(platform, name, token, code):
    return kernel_json(platform, name, token, code, timeout=420)  # jobs wait for Slurm to schedule them


def stop_server(hub, name, token):
    """Stop a person's server (and with it their clusters): the test cluster has 8 cores for the module."""
    async def stop():
        async with UserSim(hub.url, name, token=token) as user:
            await user.stop_server()

    run_sync(stop())


def dask_jobs(cluster, account: str) -> dict[str, list[str]]:
    out = cluster.run("squeue", "-h", "-u", account, "-o", "%i|%T|%N|%j").stdout
    return {fields[0]: fields[1:] for fields in (line.split("|") for line in out.splitlines())
            if "-dask-" in fields[3]}


START = """
import json, os, socket
from dask_gateway import Gateway
gw = Gateway()
cluster = gw.new_cluster()
cluster.scale({workers})
client = cluster.get_client()
client.wait_for_workers({workers}, timeout=300)
def where():
    import os, sys
    return {{"uid": os.getuid(), "node": os.environ.get("SLURMD_NODENAME"), "job": os.environ.get("SLURM_JOB_ID"),
            "python": sys.executable, "home": os.environ["HOME"], "scratch": os.environ.get("PANGEO_SCRATCH")}}
workers = client.run(where)
scheduler = client.run_on_scheduler(where)
total = client.submit(sum, range(101), pure=False).result()
print(json.dumps({{"name": cluster.name, "workers": workers, "scheduler": scheduler, "total": total,
                  "notebook": where(), "address": client.scheduler.address,
                  "dashboard": client.scheduler_info()["services"]["dashboard"]}}))
"""


def test_new_cluster_runs_scheduler_and_workers_as_the_persons_jobs_on_both_nodes(hub, cluster):
    name, token = hub.started_user()
    account = hub.system_user(name)
    report = run(hub, name, token, START.format(workers=3))
    assert report["total"] == 5050
    nodes = set()
    for proc in [report["scheduler"], *report["workers"].values()]:
        # As the person, with the notebook's own runtime and storage: notebook env == worker env.
        assert proc["uid"] == account.pw_uid and proc["home"] == account.pw_dir
        assert proc["python"] == report["notebook"]["python"]
        assert proc["scratch"] == report["notebook"]["scratch"] and proc["scratch"]
        assert proc["job"] and proc["job"] != report["notebook"]["job"]
        nodes.add(proc["node"])
    # Three one-core workers, the scheduler and the notebook need more cores than one node has.
    assert nodes == set(cluster.node_names), nodes
    # Each worker listens on its node's own address, not 0.0.0.0 and not the hub's.
    for address in report["workers"]:
        host = address.split("://")[1].rsplit(":", 1)[0]
        assert host in {cluster.node_address(n) for n in cluster.node_names}, address
    jobs = dask_jobs(cluster, account.pw_name)
    assert len(jobs) == 4 and all(state == "RUNNING" for state, *_ in jobs.values()), jobs
    # Partition, memory and time limit reach Slurm.
    worker_job = next(iter(report["workers"].values()))["job"]
    shown = cluster.run("scontrol", "--oneliner", "show", "job", worker_job).stdout
    assert f"Partition={cluster.partition}" in shown and "TimeLimit=00:30:00" in shown, shown
    assert "MinMemoryNode=600M" in shown and "NumCPUs=1" in shown, shown
    # The kernel that made it has ended: so has the cluster (dask-gateway's shutdown_on_close), and its jobs.
    wait_for(lambda: not dask_jobs(cluster, account.pw_name), what="the cluster's jobs to end")
    stop_server(hub, name, token)


def test_limits_refuse_a_cluster_bigger_than_allowed(hub):
    name, token = hub.started_user()
    report = run(hub, name, token, """
import json, warnings
from dask_gateway import Gateway
report = {}
with Gateway() as gw:
    try:
        gw.new_cluster(worker_memory="8G")
    except Exception as exc:
        report["options"] = str(exc)
    with gw.new_cluster() as one:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            one.scale(10)
        report["cluster_limit"] = " ".join(str(w.message) for w in caught)
print(json.dumps(report))
""")
    assert "worker_memory" in report["options"] and "8G" in report["options"], report
    assert "10 workers" in report["cluster_limit"] and "limit of 4 workers" in report["cluster_limit"]
    stop_server(hub, name, token)


def test_another_person_cannot_reach_the_scheduler_or_the_dashboard(hub, cluster):
    alice, alice_token = hub.started_user()
    bob, bob_token = hub.started_user()
    started = run(hub, alice, alice_token, """
import json
from dask_gateway import Gateway
gw = Gateway()
name = gw.submit()
c = gw.connect(name)
client = c.get_client()
info = client.scheduler_info()
import distributed
print(json.dumps({"name": name, "address": info["address"], "dashboard": info["services"]["dashboard"]}))
""")
    host = started["address"].split("://")[1].rsplit(":", 1)[0]
    assert host in {cluster.node_address(n) for n in cluster.node_names}
    attack = run(hub, bob, bob_token, f"""
import json, ssl, socket, urllib.request
from dask_gateway import Gateway
report = {{}}
with Gateway() as gw:
    report["listed"] = [c.name for c in gw.list_clusters()]
    try:
        gw.connect({started['name']!r})
        report["connect"] = "connected"
    except Exception as exc:
        report["connect"] = type(exc).__name__
# Straight at the scheduler across the cluster network, without the cluster's certificate.
import asyncio
from distributed.comm import connect
try:
    asyncio.run(asyncio.wait_for(connect({started['address']!r}, timeout=10), 20))
    report["scheduler"] = "connected"
except Exception as exc:
    report["scheduler"] = type(exc).__name__
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
try:
    urllib.request.urlopen("https://{host}:{started['dashboard']}/status", context=context, timeout=10).read()
    report["dashboard"] = "read"
except Exception as exc:
    report["dashboard"] = type(exc).__name__
print(json.dumps(report))
""")
    assert attack["listed"] == [] and attack["connect"] != "connected"
    assert attack["scheduler"] != "connected" and attack["dashboard"] != "read", attack

    async def dashboard(token):
        import aiohttp

        path = f"{hub.url}/services/dask-gateway/clusters/{started['name']}/status"
        async with aiohttp.ClientSession() as session:
            async with session.get(path, headers={"Authorization": f"token {token}"}, allow_redirects=False) as r:
                return r.status, await r.text()

    status, body = run_sync(dashboard(bob_token))
    assert status == 404 and "Bokeh" not in body
    # The owner gets it, through the gateway on the hub's machine, from the scheduler on its node.
    status, body = run_sync(dashboard(alice_token))
    assert status == 200 and "Bokeh" in body
    # The operator sees it and stops it: its jobs are cancelled.
    rows = {row["name"]: row for row in json.loads(hub.cli("clusters", "list", "--json").stdout)}
    assert rows[started["name"]]["user"] == alice
    hub.cli("clusters", "stop", started["name"])
    wait_for(lambda: not dask_jobs(cluster, hub.system_user(alice).pw_name), what="alice's Dask jobs to end")
    stop_server(hub, alice, alice_token)
    stop_server(hub, bob, bob_token)


def test_a_worker_past_its_memory_is_killed_by_slurm_on_its_node(hub, cluster):
    if not cluster.memory_enforced:
        pytest.fail("the test cluster cannot enforce memory (no cgroup memory controller): "
                    "Slurm's task/cgroup needs it")
    name, token = hub.started_user()
    account = hub.system_user(name)
    report = run(hub, name, token, """
import json, os
from dask_gateway import Gateway
gw = Gateway()
cluster = gw.new_cluster(worker_memory="512M")
cluster.scale(1)
client = cluster.get_client()
client.wait_for_workers(1, timeout=300)
job = list(client.run(lambda: os.environ["SLURM_JOB_ID"]).values())[0]
def hog():
    block = bytearray(1500 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: the memory is really used
    return len(block)
future = client.submit(hog, pure=False)
try:
    future.result(timeout=120)
    outcome = "allocated"
except Exception as exc:
    outcome = type(exc).__name__
print(json.dumps({"job": job, "outcome": outcome, "name": cluster.name}))
""")

    def ended():
        shown = cluster.run("scontrol", "--oneliner", "show", "job", report["job"], check=False).stdout
        return "JobState=OUT_OF_MEMORY" in shown and shown

    shown = wait_for(ended, timeout=120, what="Slurm to end the worker's job for its memory")
    assert f"UserId={account.pw_name}(" in shown
    stop_server(hub, name, token)


def test_clusters_stop_with_their_server_and_leave_no_job(hub, cluster):
    name, token = hub.started_user()
    account = hub.system_user(name)
    run(hub, name, token, """
import json
from dask_gateway import Gateway
gw = Gateway()
name = gw.submit()
gw.connect(name).scale(1)
print(json.dumps({"name": name}))
""")
    wait_for(lambda: len(dask_jobs(cluster, account.pw_name)) == 2, what="scheduler and worker jobs")

    stop_server(hub, name, token)
    wait_for(lambda: not dask_jobs(cluster, account.pw_name), what="the cluster's jobs to be cancelled")


def test_the_gateway_runs_unprivileged_and_its_sudo_rule_cannot_become_root(hub):
    config = hub.rt.config
    gateway_user = config.target.slurm.gateway.user
    pid = int(hub.rt.paths.pidfile("dask-gateway").read_text().split()[0])
    with open(f"/proc/{pid}/status") as status:
        uids = next(line for line in status if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(pwd.getpwnam(gateway_user).pw_uid)}
    from pangeohub.targets.slurm.sudoers import launcher_path

    launcher = launcher_path(config)
    person, _ = hub.started_user()
    account = hub.system_user(person).pw_name

    def as_gateway(*argv):
        return subprocess.run([shutil.which("runuser"), "-u", gateway_user, "--", "sudo", "-n", *argv],
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, input="{}", timeout=30)

    # The one thing it may do: run the launcher as a platform person (who gets an empty request here).
    allowed = as_gateway("-Hu", account, launcher)
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["ok"] is False, allowed
    for attack in (("-u", "root", launcher), ("-u", "nobody", launcher), ("-u", account, "/bin/sh", "-c", "id"),
                   ("-u", account, launcher, "--extra"), ("-u", account, "-E", launcher),
                   ("-u", "root", "/bin/sh", "-c", "id"), ("/bin/sh", "-c", "id")):
        result = as_gateway(*attack)
        assert result.returncode != 0 and "uid=0" not in result.stdout, (attack, result.stdout)


def test_controller_down_refuses_a_new_cluster_with_the_reason_within_the_bound(hub, cluster):
    """Last in the module: it stops the cluster's controller (and starts it again for the module's teardown)."""
    name, token = hub.started_user()
    cluster.slurmctld.terminate()
    cluster.slurmctld.wait(10)
    try:
        report = run(hub, name, token, """
import json, time
from dask_gateway import Gateway
started = time.monotonic()
try:
    Gateway().new_cluster()
    outcome = "started"
except Exception as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "took": time.monotonic() - started}))
""")
    finally:
        # Without it, `down` asked a dead controller to cancel every server's job: ~50 s of Slurm's retries.
        cluster.start_controller()
    assert "cannot start a Dask cluster now" in report["outcome"], report
    assert "Slurm" in report["outcome"] or "Slurmctld" in report["outcome"], report
    print(f"\nnew_cluster() with the controller down: refused after {report['took']:.1f}s: {report['outcome']}")
