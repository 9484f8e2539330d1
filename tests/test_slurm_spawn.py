"""People's servers as Slurm jobs, on the real two-node test cluster, through a real platform (target slurm).

One cluster and one platform for the module: each test adds its own people. The order matters only at the end:
the node failure, the hub restart and the controller going down come last.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from harness import Platform, recorded_cpu, wait_for
from slurm_cluster import cluster, requires_slurm  # noqa: F401 (fixture)

from pangeohub.usersim import SimError, run_sync

pytestmark = requires_slurm
USAGE_INTERVAL = 3


def slurm_extra(cluster, accounts="platform", **slurm) -> dict:
    return {
        "target": {"kind": "slurm", "slurm": {"slurm_conf": str(cluster.conf), "address": cluster.hub_address,
                                              "accounts": accounts, "poll_interval": "2s",
                                              "command_timeout": "8s", **slurm}},
        "hub": {"start_timeout": 45},
        # Dask Gateway on Slurm is tested on its own (tests/test_slurm_gateway.py).
        "gateway": {"enabled": False},
        "profiles": [
            {"name": "small", "cpus": 1, "memory": "400M"},
            {"name": "limited", "cpus": 2, "memory": "700M",
             "slurm": {"partition": cluster.partition, "time_limit": "20m"}},
            # Slurm keeps it pending (BeginTime) for an hour: longer than any start timeout.
            {"name": "later", "cpus": 1, "memory": "300M", "slurm": {"extra": ["--begin=now+1hour"]}},
        ],
    }


@pytest.fixture(scope="module")
def hub(cluster):
    # Samples every few seconds, so that the accounting test sees several.
    platform = Platform(extra={**slurm_extra(cluster), "usage": {"sample_interval": f"{USAGE_INTERVAL}s"}})
    try:
        platform.up()
        yield platform
    finally:
        log = platform.rt.paths.log("hub")
        if log.exists():  # shown by pytest when a test of the module failed
            print("--- hub log\n" + "\n".join(log.read_text(errors="replace").splitlines()[-80:]))
        platform.close()


def start(hub, options=None):
    name, _ = hub.add_user()

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            events = await user.start_server(options)
            return user.token, events

    token, events = run_sync(go())
    return name, token, events


def try_start(hub, name, options=None) -> str:
    """Start name's server, expecting a failure; the message the person sees."""
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server(options)

    with pytest.raises(SimError) as failed:
        run_sync(go())
    return str(failed.value)


def jobs_of(cluster, account: str) -> dict[str, list[str]]:
    out = cluster.run("squeue", "-h", "-u", account, "-o", "%i %T %N %j").stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()}


def running_job(cluster, account: str) -> tuple[str, str]:
    found = [(job_id, fields[1]) for job_id, fields in jobs_of(cluster, account).items() if fields[0] == "RUNNING"]
    assert len(found) == 1, found
    return found[0]


def server_address(hub, name) -> str:
    from pangeohub.hubapi import HubAPI

    return HubAPI(hub.rt).user(name)["servers"][""]["url"]


def test_server_runs_on_a_compute_node_as_the_person_and_writes_their_home(hub, cluster):
    name, token, events = start(hub)
    account = hub.system_user(name)
    job_id, node = running_job(cluster, account.pw_name)
    assert node in cluster.node_names
    result = hub.run_code(name, token, "import os, socket, pathlib\n"
                          "pathlib.Path('from-node.txt').write_text(os.environ['SLURMD_NODENAME'])\n"
                          "print(os.getuid(), os.environ['SLURM_JOB_ID'], os.environ['JUPYTERHUB_SERVICE_URL'])")
    uid, seen_job, url = result.stdout.split()
    assert (int(uid), seen_job) == (account.pw_uid, job_id)
    # Bound to the node's own cluster address (not the hub's, not every interface).
    assert f"//{cluster.node_address(node)}:" in url and f"//{cluster.hub_address}:" not in url
    # Its scratch space: the platform's S3 endpoint, on the hub's cluster address, reached from the node.
    result = hub.run_code(name, token, "import os, s3fs\n"
                          "path = os.environ['PANGEO_SCRATCH'] + 'from-node.txt'\n"
                          "fs = s3fs.S3FileSystem()\n"
                          "fs.pipe(path, b'written on a node')\n"
                          "print(os.environ['AWS_ENDPOINT_URL_S3'], fs.cat(path).decode())")
    assert result.stdout.split(" ", 1) == [f"http://{cluster.hub_address}:{hub.rt.config.storage.port}",
                                           "written on a node\n"], result.stdout
    written = Path(account.pw_dir) / "from-node.txt"
    assert written.read_text() == node and written.stat().st_uid == account.pw_uid
    # The job's output is in the person's own private directory.
    log_dir = Path(account.pw_dir) / ".pangeohub" / "slurm"
    assert (log_dir / f"server-{job_id}.log").exists() and log_dir.stat().st_mode & 0o077 == 0
    # The shared folders are linked into the home, as on one machine; a file put in scratch from the node is
    # in the platform's shared scratch folder.
    hub.run_code(name, token, "import os, pathlib\n"
                 "(pathlib.Path.home() / 'scratch' / os.environ['JUPYTERHUB_USER']).write_text('from a node')")
    from pangeohub.resources.shared import scratch_dir

    assert (scratch_dir(hub.rt.config) / name).read_text() == "from a node"


def test_a_profiles_partition_and_limits_reach_the_job(hub, cluster):
    name, _, _ = start(hub, {"profile": "limited"})
    account = hub.system_user(name)
    job_id, _ = running_job(cluster, account.pw_name)
    shown = cluster.run("scontrol", "--oneliner", "show", "job", job_id).stdout
    fields = dict(token.split("=", 1) for token in shown.split() if "=" in token)
    assert fields["Partition"] == cluster.partition
    assert fields["NumCPUs"] == "2" and fields["TimeLimit"] == "00:20:00"
    assert "mem=700M" in fields["TRES"], fields["TRES"]
    assert fields["UserId"].startswith(account.pw_name + "(")
    assert fields["JobName"].startswith("pangeohub-") and fields["JobName"].endswith("-" + name)
    assert fields["Requeue"] == "0"




def test_usage_records_what_slurm_allocated_and_keeps_it_once_the_job_ends(hub, cluster):
    """Without Slurm accounting (the test cluster has none) the record is the job's CPUs x its time, from
    squeue; the report says so. A finished job's use stays counted and stops growing."""
    name, _, _ = start(hub, {"profile": "limited"})  # 2 CPUs
    account = hub.system_user(name)
    job_id, _ = running_job(cluster, account.pw_name)
    wait_for(lambda: recorded_cpu(hub, name) >= 2 * 3 * USAGE_INTERVAL, "a few samples of the job")
    used = cluster.run("squeue", "-h", "-j", job_id, "-o", "%M").stdout.strip()
    recorded = recorded_cpu(hub, name)
    elapsed = sum(int(part) * 60 ** i for i, part in enumerate(reversed(used.split(":"))))
    # Counted from the job's start (it began after the sampler did), up to the latest sample.
    assert 2 * (elapsed - 3 * USAGE_INTERVAL - 2) <= recorded <= 2 * (elapsed + 1), (recorded, used)

    async def stop():
        async with hub.sim(name) as user:
            await user.login()
            await user.stop_server()

    run_sync(stop())
    wait_for(lambda: job_id not in jobs_of(cluster, account.pw_name), "the job to end")
    before = recorded_cpu(hub, name)
    time.sleep(3 * USAGE_INTERVAL)  # three more samples
    after = recorded_cpu(hub, name)
    assert before >= recorded and after == before

    report = hub.cli("usage", "report", "--since", "1d")
    assert name in report.stdout
    assert "compute: allocated: CPUs x time of each job from squeue" in report.stdout
    assert "no Slurm accounting" in report.stdout


ATTACK = r"""
import json, socket, sys, urllib.request, urllib.error
target = json.loads(sys.argv[1])
found = {}
try:
    urllib.request.urlopen(target["url"] + "api/contents", timeout=5)
    found["server"] = "open"
except urllib.error.HTTPError as e:
    found["server"] = e.code
except OSError as e:
    found["server"] = "unreachable"
for host in (target["node_addr"], "127.0.0.1"):
    for port in target["kernel_ports"]:
        try:
            import zmq
            ctx = zmq.Context.instance()
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"tcp://{host}:{port}")
            sock.send_multipart([b"<IDS|MSG>", b"", b"{}", b"{}", b"{}", b"{}"])
            found[f"{host}:{port}"] = "answered" if sock.poll(3000) else "silent"
            sock.close()
        except Exception as e:
            found[f"{host}:{port}"] = repr(e)
print(json.dumps(found))
"""


def test_another_person_cannot_reach_a_server_or_its_kernel(hub, cluster):
    from pangeohub.services.hub import stop_all_servers

    stop_all_servers(hub.rt)  # room on both nodes for the intruder's own job
    owner, token, _ = start(hub)
    account = hub.system_user(owner)
    _, node = running_job(cluster, account.pw_name)
    # A kernel of the owner's runs; an intruder who learnt its ports (it cannot read the connection file) and
    # the server's address on the cluster network.
    found = json.loads(hub.run_code(owner, token, "import json, os\n"
                                    "from ipykernel.connect import get_connection_file\n"
                                    "print(json.dumps({'connection': json.load(open(get_connection_file())),"
                                    " 'url': os.environ['JUPYTERHUB_SERVICE_URL']}))").stdout)
    ports = [found["connection"][k] for k in ("shell_port", "iopub_port", "control_port")]
    url = found["url"].rstrip("/") + "/"
    assert url.startswith(f"http://{cluster.node_address(node)}:"), url
    target = {"url": url, "node_addr": cluster.node_address(node), "kernel_ports": ports}
    other, _ = hub.add_user()
    intruder = hub.rt.target.account(other)
    for where in cluster.node_names:  # the owner's node and the other one
        out = cluster.run("srun", f"--nodelist={where}", "--time=1", "--mem=200M",
                          f"{hub.rt.config.install_dir}/bin/python", "-c", ATTACK, json.dumps(target),
                          user=intruder.pw_name, timeout=60).stdout
        found = json.loads(out.strip().splitlines()[-1])
        assert found["server"] in (302, 401, 403), (where, found)
        assert "answered" not in found.values(), (where, found)


def progress_of_a_failing_start(hub, name, options) -> list[dict]:
    """Every event of the spawn's progress stream, up to the failure."""
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            url = f"{user.base}/hub/api/users/{name}/server"
            async with user.session.post(url, json=options, headers=user._auth) as resp:
                assert resp.status in (201, 202), await resp.text()
            events = []
            async with user.session.get(f"{url}/progress", headers=user._auth) as resp:
                async for raw in resp.content:
                    line = raw.decode().strip()
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
            return events

    return run_sync(go())


def test_a_job_slurm_never_starts_fails_with_its_reason_and_leaves_no_job(hub, cluster):
    name, _ = hub.add_user()
    events = progress_of_a_failing_start(hub, name, {"profile": "later"})
    messages = [event.get("message", "") for event in events]
    # While it waits, the person sees the job's state, Slurm's reason and when Slurm expects to start it.
    assert any("Pending (BeginTime), expected start" in m for m in messages), messages
    assert events[-1].get("failed"), events[-1]
    message = messages[-1]
    assert "BeginTime" in message and "cancelled" in message, message
    account = hub.system_user(name)
    deadline = time.monotonic() + 15
    while jobs_of(cluster, account.pw_name) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not jobs_of(cluster, account.pw_name)


def test_stopping_a_server_cancels_its_job(hub, cluster):
    name, _, _ = start(hub)
    account = hub.system_user(name)
    running_job(cluster, account.pw_name)

    async def stop():
        async with hub.sim(name) as user:
            await user.login()
            await user.stop_server()

    run_sync(stop())
    assert all(fields[0] == "COMPLETING" for fields in jobs_of(cluster, account.pw_name).values())


def test_a_node_failure_stops_the_server_with_its_reason_and_the_person_starts_elsewhere(hub, cluster):
    from pangeohub.services.hub import stop_all_servers

    stop_all_servers(hub.rt)  # room on the other node
    name, _, _ = start(hub)
    account = hub.system_user(name)
    job_id, node = running_job(cluster, account.pw_name)
    try:
        _kill_node(cluster, node)
        cluster.run("scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=slurmd killed by the test")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server_running(hub, name):
            time.sleep(0.5)
        assert not server_running(hub, name)
        listed = hub.cli("users", "list").stdout
        assert f"{name}: Slurm ended job {job_id}" in listed and "NODE_FAIL" in listed, listed
        start_again(hub, name)
        _, new_node = running_job(cluster, account.pw_name)
        assert new_node != node
    finally:
        cluster.start_node(node)
        cluster.run("scontrol", "update", f"NodeName={node}", "State=RESUME", check=False)


def server_running(hub, name) -> bool:
    from pangeohub.hubapi import HubAPI

    return bool(HubAPI(hub.rt).user(name)["servers"])


def start_again(hub, name):
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            return user.token, await user.start_server()

    token, events = run_sync(go())
    return name, token, events


def _kill_node(cluster, node):
    """Everything in the node's network namespace dies: its slurmd, the job's slurmstepd and the server."""
    ns = os.stat(f"/run/netns/{cluster.netns(node)}").st_ino
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino == ns:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
    cluster.slurmd[node].wait(10)


def test_a_hub_restart_cancels_orphan_jobs_and_forgets_ghost_servers(hub, cluster):
    from pangeohub.services import supervisor
    from pangeohub.targets.slurm.jobscript import job_name

    ghost, _, _ = start(hub)
    ghost_account = hub.system_user(ghost)
    ghost_job, _ = running_job(cluster, ghost_account.pw_name)
    kept, kept_token, _ = start(hub)  # a server the hub knows: it must come through untouched
    kept_job, _ = running_job(cluster, hub.system_user(kept).pw_name)
    orphan_owner, _ = hub.add_user()
    orphan_account = hub.rt.target.account(orphan_owner)
    rt = hub.rt
    hub_pid = supervisor.read_status(rt)["services"]["hub"]["pid"]
    os.kill(hub_pid, signal.SIGSTOP)  # the hub is away while Slurm changes
    try:
        cluster.run("scancel", ghost_job)
        orphan = cluster.run("sbatch", "--parsable", f"--job-name={job_name(rt.config, orphan_owner)}",
                             "--mem=100M", "--output=/dev/null", "--wrap", "sleep 300",
                             user=orphan_account.pw_name).stdout.strip()
    finally:
        os.killpg(hub_pid, signal.SIGTERM)
        os.kill(hub_pid, signal.SIGCONT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = supervisor.read_status(rt)["services"]["hub"]
        if status.get("pid") not in (None, hub_pid) and status.get("state") == "running":
            break
        time.sleep(0.5)
    assert status.get("pid") != hub_pid, status
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (orphan in jobs_of(cluster, orphan_account.pw_name)
                                           or server_running(hub, ghost)):
        time.sleep(0.5)
    assert orphan not in jobs_of(cluster, orphan_account.pw_name)
    assert not server_running(hub, ghost)
    assert running_job(cluster, hub.system_user(kept).pw_name)[0] == kept_job
    assert hub.run_code(kept, kept_token, "print(6 * 7)").stdout.strip() == "42"


def test_status_shows_the_cluster_and_the_platforms_jobs(hub, cluster):
    out = hub.cli("status", check=False).stdout
    assert "slurm nodes:" in out and all(n in out for n in cluster.node_names), out
    assert f"slurm partitions: {cluster.partition}*" in out, out
    report = json.loads(hub.cli("status", "--json", check=False).stdout)
    assert set(report["target"]["nodes"]) == set(cluster.node_names)


def test_up_refuses_a_partition_the_cluster_does_not_have(cluster):
    extra = slurm_extra(cluster)
    extra["profiles"][1]["slurm"]["partition"] = "nosuchpartition"
    other = Platform(extra=extra)
    try:
        proc = other.cli("up", "--detach", check=False)
        assert proc.returncode != 0
        assert "partition 'nosuchpartition' does not exist" in proc.stdout + proc.stderr
        # What differs on Slurm is said before the live checks.
        assert "note: servers start as Slurm jobs" in proc.stdout, proc.stdout
        assert "Traceback" not in proc.stderr
    finally:
        other.close()


def test_the_controller_down_gives_a_clear_spawn_error_within_the_bound_and_up_refuses(hub, cluster):
    cluster.slurmctld.terminate()
    cluster.slurmctld.wait(10)
    try:
        name, _ = hub.add_user()
        started = time.monotonic()
        message = try_start(hub, name)
        took = time.monotonic() - started
        assert "Slurm controller is down or unreachable" in message, message
        assert took < 8 + 20, took
        other = Platform(extra=slurm_extra(cluster))
        try:
            proc = other.cli("up", "--detach", check=False)
            assert proc.returncode != 0
            assert "Slurm controller is down" in proc.stdout + proc.stderr or \
                "did not answer" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        finally:
            other.close()
    finally:
        cluster.start_controller()
