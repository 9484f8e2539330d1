"""Dask Gateway as people use it: code in their own kernels, through the hub, against a real gateway."""

import json
import os
import signal

import aiohttp
import pytest
from harness import Platform, last_json, wait_for
from harness import run_in_kernel as run

from pangeohub.gateway.check import check_gateway
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

LIMITS = {"cluster_max_workers": 3, "user_max_clusters": 2, "user_max_cores": 4, "user_max_memory": "4G"}


@pytest.fixture(scope="module")
def gw():
    hub = Platform(extra={"gateway": {"limits": LIMITS, "stop_with_server_period": "2s"}})
    try:
        hub.up()
        yield hub
    finally:
        hub.close()


def cluster_names(platform):
    return {row["name"] for row in json.loads(platform.cli("clusters", "list", "--json").stdout)}


def test_zero_argument_gateway_runs_clusters_as_the_user(gw):
    name, token = gw.started_user()
    entry = gw.system_user(name)
    root_owner = os.stat("/").st_uid, os.stat("/").st_gid
    out = run(gw, name, token, """
import json, os
from dask_gateway import Gateway
gw = Gateway()
opts = gw.cluster_options()
cluster = gw.new_cluster(opts)
cluster.adapt(minimum=1, maximum=4)
client = cluster.get_client()
client.wait_for_workers(1, timeout=120)
def where():
    import os, tempfile
    tmp = os.environ["DASK_TEMPORARY_DIRECTORY"]
    return {"uid": os.getuid(), "gid": os.getgid(), "home": os.environ["HOME"], "tmp": tmp,
            "tmp_mode": oct(os.stat(tmp).st_mode & 0o777), "tmp_uid": os.stat(tmp).st_uid,
            "cwd_mode": oct(os.stat(os.getcwd()).st_mode & 0o777),
            "cgroup": sorted(line.split(":", 2)[2] for line in open("/proc/self/cgroup").read().splitlines()
                             if ":memory:" in line or line.startswith("0::"))}
kernel_cgroup = sorted(line.split(":", 2)[2] for line in open("/proc/self/cgroup").read().splitlines()
                       if ":memory:" in line or line.startswith("0::"))
worker = client.submit(where, pure=False).result()
scheduler = client.run_on_scheduler(where)
total = client.submit(sum, range(101)).result()
listed = [c.name for c in gw.list_clusters()]
cluster.scale(2)
client.wait_for_workers(2, timeout=120)
again = Gateway().connect(cluster.name)
workers = len(again.get_client().scheduler_info()["workers"])
options = sorted(opts.keys())
cluster.shutdown()
after = [c.name for c in gw.list_clusters()]
again.close(); gw.close()
print(json.dumps({"worker": worker, "scheduler": scheduler, "total": total, "listed": listed,
                  "name": cluster.name, "workers": workers, "options": options,
                  "after": after, "kernel_cgroup": kernel_cgroup}))
""")
    report = last_json(out)
    assert report["total"] == 5050
    assert report["options"] == ["environment", "worker_cores", "worker_memory"]  # environment: the kernel's
    assert report["listed"] == [report["name"]] and report["after"] == []
    assert report["workers"] == 2
    for proc in (report["worker"], report["scheduler"]):
        assert (proc["uid"], proc["gid"]) == (entry.pw_uid, entry.pw_gid)
        assert proc["home"] == entry.pw_dir
        assert proc["tmp"].endswith(f"/{report['name']}/tmp") and proc["tmp_uid"] == entry.pw_uid
        assert proc["tmp_mode"] == "0o700" and proc["cwd_mode"] == "0o700"
        # Dask processes live in the user's cgroup, under the same limits as their notebook server.
        assert proc["cgroup"] == report["kernel_cgroup"]
        assert any(entry.pw_name in path for path in proc["cgroup"])
    assert (os.stat("/").st_uid, os.stat("/").st_gid) == root_owner


def test_schedulers_workers_and_nannies_listen_on_loopback_only(gw):
    """Everything runs on this machine: a Dask process listening on all interfaces is reachable from the network."""
    name, token = gw.started_user()
    out = run(gw, name, token, """
import json, psutil
from dask_gateway import Gateway
def listening():
    me = psutil.Process()
    found = []
    for proc in (me, me.parent()):  # the worker and its nanny; for the scheduler, the scheduler and the backend's shell
        try:
            found += [conn.laddr.ip for conn in proc.net_connections("inet") if conn.status == psutil.CONN_LISTEN]
        except psutil.Error:
            pass
    return found
with Gateway() as gw:
    with gw.new_cluster() as cluster:
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=120)
        workers = client.run(listening)
        scheduler = client.run_on_scheduler(listening)
print(json.dumps({"workers": workers, "scheduler": scheduler}))
""")
    report = last_json(out)
    addresses = [ip for ips in report["workers"].values() for ip in ips] + report["scheduler"]
    assert report["workers"] and report["scheduler"]
    assert set(addresses) <= {"127.0.0.1", "::1"}, report


def test_options_and_limits_refuse_with_the_limit_and_the_request(gw):
    name, token = gw.started_user()
    out = run(gw, name, token, """
import gc, json, warnings
from dask_gateway import Gateway
report = {}
with Gateway() as gw:
    try:
        gw.new_cluster(worker_cores=5)
    except Exception as exc:
        report["options"] = str(exc)
    # The refused cluster is garbage that the collector may find on the client's own event-loop thread; the
    # kernel must go on working when it does (upstream's finaliser waited for that thread from it, forever).
    gw.loop.add_callback(gc.collect)
    with gw.new_cluster() as one:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            one.scale(10)
        report["cluster_limit"] = " ".join(str(w.message) for w in caught)
        one.scale(2)
        with gw.new_cluster() as two:
            try:
                two.scale(1)
            except Exception as exc:
                report["user_cores"] = str(exc)
            try:
                gw.new_cluster()
            except Exception as exc:
                report["user_clusters"] = str(exc)
print(json.dumps(report))
""")
    report = last_json(out)
    assert "worker_cores must be <= 2" in report["options"] and "got 5" in report["options"]
    assert "10 workers" in report["cluster_limit"] and "limit of 3 workers" in report["cluster_limit"]
    assert "cannot scale cluster" in report["user_cores"] and "to 1 workers" in report["user_cores"]
    assert "4 cores per user" in report["user_cores"] and "at most 0 workers" in report["user_cores"]
    assert "you have 2 running and the limit is 2 per user" in report["user_clusters"]


START_PERSISTENT = """
import json
from dask_gateway import Gateway
gw = Gateway()
name = gw.submit()
cluster = gw.connect(name)
client = cluster.get_client()
port = client.scheduler_info()["services"]["dashboard"]
client.close(); cluster.close(); gw.close()
print(json.dumps({"name": name, "port": port}))
"""


async def browser_get(platform, username, path):
    """Open a gateway URL like a browser that is logged in as ``username`` (None: not logged in)."""
    async with platform.sim(username) if username else UserSim(platform.url, "nobody") as user:
        if username:
            await user.login()
        async with user.session.get(f"{platform.url}{path}") as resp:
            return resp.status, str(resp.url), await resp.text()


def test_other_users_and_strangers_cannot_reach_a_cluster(gw):
    alice, alice_token = gw.started_user()
    bob, bob_token = gw.started_user()
    started = last_json(run(gw, alice, alice_token, START_PERSISTENT))
    cluster, port = started["name"], started["port"]
    missing = "f" * len(cluster) if cluster != "f" * len(cluster) else "e" * len(cluster)
    attack = last_json(run(gw, bob, bob_token, f"""
import json, ssl, urllib.request
from dask_gateway import Gateway
gw = Gateway()
report = {{"listed": [c.name for c in gw.list_clusters()]}}
for action in ("connect", "stop_cluster"):
    for target, key in (({cluster!r}, action), ({missing!r}, action + "_missing")):
        try:
            getattr(gw, action)(target)
            report[key] = "no error"
        except Exception as exc:
            report[key] = (type(exc).__name__ + ": " + str(exc)).replace(target, "NAME")
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
for url in ("https://127.0.0.1:{port}/status", "http://127.0.0.1:{port}/status"):
    try:
        urllib.request.urlopen(url, context=context if url.startswith("https") else None, timeout=10).read()
        report[url[:5]] = "read"
    except Exception as exc:
        report[url[:5]] = type(exc).__name__
print(json.dumps(report))
"""))
    assert attack["listed"] == []
    # Bob learns nothing: alice's cluster answers exactly as a name nobody uses (not found; a stop is a no-op).
    assert attack["connect"] == attack["connect_missing"] != "no error"
    assert attack["stop_cluster"] == attack["stop_cluster_missing"]
    assert attack["https"] != "read" and attack["http:"] != "read"
    assert cluster in cluster_names(gw), "bob's stop request stopped alice's cluster"

    path = f"/services/dask-gateway/clusters/{cluster}/status"
    status, url, body = run_sync(browser_get(gw, None, path))
    assert "/hub/login" in url and cluster not in body
    status, url, body = run_sync(browser_get(gw, bob, path))
    assert status == 404 and "Bokeh" not in body
    status, url, body = run_sync(browser_get(gw, alice, path))
    assert status == 200 and url.endswith(path) and "Bokeh" in body

    # dask-labextension's server-side check: the same fixed plot list for real and made-up clusters.
    status, _, real = run_sync(browser_get(gw, None, path.replace("/status", "/individual-plots.json")))
    status2, _, made_up = run_sync(browser_get(gw, None, "/services/dask-gateway/clusters/nope/individual-plots.json"))
    assert status == status2 == 200 and real == made_up and "Individual Task Stream" in real

    async def with_token(token):
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{gw.url}{path}", headers={"Authorization": f"token {token}"},
                                   allow_redirects=False) as resp:
                return resp.status
    assert run_sync(with_token(bob_token)) == 404
    assert run_sync(with_token(alice_token)) == 200
    gw.cli("clusters", "stop", cluster)


def test_pip_user_packages_and_server_environment_reach_workers(gw):
    name, token = gw.started_user()
    report = last_json(run(gw, name, token, r"""
import json, os, subprocess, sys, tempfile, zipfile
wheel = os.path.join(tempfile.mkdtemp(), "pangeotestpkg-1.0-py3-none-any.whl")
with zipfile.ZipFile(wheel, "w") as whl:
    whl.writestr("pangeotestpkg/__init__.py", "ANSWER = 42\n")
    whl.writestr("pangeotestpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pangeotestpkg\nVersion: 1.0\n")
    whl.writestr("pangeotestpkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    whl.writestr("pangeotestpkg-1.0.dist-info/RECORD", "")
pip = subprocess.run([sys.executable, "-m", "pip", "install", "--user", "--no-index", "--no-deps", wheel],
                     capture_output=True, text=True)
from dask_gateway import Gateway
with Gateway() as gw, gw.new_cluster() as cluster:
    cluster.scale(1)
    with cluster.get_client() as client:
        client.wait_for_workers(1, timeout=120)
        def probe():
            import os, pangeotestpkg
            return pangeotestpkg.ANSWER, pangeotestpkg.__file__, os.environ.get("DASK_GATEWAY__ADDRESS")
        answer, where, address = client.submit(probe, pure=False).result()
print(json.dumps({"pip": pip.returncode, "pip_err": pip.stderr[-500:], "answer": answer, "where": where,
                  "address": address, "mine": os.environ["DASK_GATEWAY__ADDRESS"], "home": os.environ["HOME"]}))
"""))
    assert report["pip"] == 0, report["pip_err"]
    assert report["answer"] == 42 and report["where"].startswith(report["home"] + "/.local/")
    assert report["address"] == report["mine"]


FORKED_PROBE = r"""
import json, os
import dask, distributed.system
os.makedirs(os.path.expanduser("~/.config/dask"), exist_ok=True)
with open(os.path.expanduser("~/.config/dask/probe.yaml"), "w") as f:
    f.write("pangeohub-probe: 42\n")
def seen():
    import dask, dask.system, distributed.system, os, sys, tempfile
    with open("/proc/self/status") as status:
        caps = {k: v.strip() for k, v in (l.split(":", 1) for l in status) if k in ("CapEff", "CapPrm")}
    def cmdline(pid):
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ")
    with open(f"/proc/{os.getppid()}/stat") as f:
        grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
    return {"parent": cmdline(os.getppid()), "grandparent": cmdline(grandparent),
            "probe": dask.config.get("pangeohub-probe", None),
            "dask_tmp": dask.config.get("temporary-directory"), "env_tmp": os.environ["DASK_TEMPORARY_DIRECTORY"],
            "tempdir": tempfile.gettempdir(), "cpus": dask.system.CPU_COUNT,
            "memory_limit": distributed.system.MEMORY_LIMIT, "isolated": sys.flags.isolated, "caps": caps,
            "cwd": os.getcwd()}
from dask_gateway import Gateway
with Gateway() as gw, gw.new_cluster() as cluster:
    cluster.scale(1)
    with cluster.get_client() as client:
        client.wait_for_workers(1, timeout=120)
        worker = client.submit(seen, pure=False).result()
        scheduler = client.run_on_scheduler(seen)
print(json.dumps({"worker": worker, "scheduler": scheduler, "cpus": dask.system.cpu_count(),
                  "memory_limit": distributed.system.memory_limit()}))
"""


def test_forked_schedulers_and_workers_see_what_a_fresh_process_would(gw):
    """Schedulers and nannies come from the fork server's Dask template (gateway.fast_start) and each worker
    from its nanny; they must compute from their own environment what a freshly started process would: the
    person's Dask config, the cluster's temporary directory, the CPUs and memory of the person's cgroup."""
    name, token = gw.started_user()
    report = last_json(run(gw, name, token, FORKED_PROBE))
    worker, scheduler = report["worker"], report["scheduler"]
    assert "dask template" in scheduler["parent"]
    assert "dask worker" in worker["parent"] and "dask template" in worker["grandparent"]  # template, nanny, worker
    for proc in (worker, scheduler):
        assert proc["probe"] == 42  # read from the person's ~/.config/dask, not root's
        assert proc["dask_tmp"] == proc["env_tmp"] == proc["tempdir"] and proc["cwd"] in proc["env_tmp"]
        assert (proc["cpus"], proc["memory_limit"]) == (report["cpus"], report["memory_limit"])
        assert proc["isolated"] == 0
        assert all(int(value, 16) == 0 for value in proc["caps"].values()), proc["caps"]


def test_admin_lists_and_stops_clusters(gw):
    name, token = gw.started_user()
    first, second = last_json(run(gw, name, token, """
import json
from dask_gateway import Gateway
with Gateway() as gw:
    names = [gw.submit(), gw.submit()]
    for name in names:
        gw.connect(name).close()  # waits until it runs
print(json.dumps(names))
"""))
    rows = {r["name"]: r for r in json.loads(gw.cli("clusters", "list", "--json").stdout)}
    assert {first, second} <= set(rows)
    assert rows[first]["user"] == name and rows[first]["cores"] >= 1 and rows[first]["memory"] > 0
    assert {"workers", "age", "status"} <= set(rows[first])
    assert first in gw.cli("clusters", "list").stdout
    gw.cli("clusters", "stop", first)
    wait_for(lambda: first not in cluster_names(gw), what="cluster stop")
    gw.cli("clusters", "stop", "--user", name)
    wait_for(lambda: second not in cluster_names(gw), what="user's clusters stop")
    refused = gw.cli("clusters", "stop", "no-such-cluster", check=False)
    assert refused.returncode == 2 and "no running cluster 'no-such-cluster'" in refused.stderr
    assert gw.cli("clusters", "stop", check=False).returncode == 2


def test_clusters_stop_with_their_server(gw):
    name, token = gw.started_user()
    cluster = last_json(run(gw, name, token, START_PERSISTENT))["name"]
    assert cluster in cluster_names(gw)

    async def stop():
        async with UserSim(gw.url, name, token=token) as user:
            await user.stop_server()

    run_sync(stop())
    wait_for(lambda: cluster not in cluster_names(gw), what="cluster to stop with its server")


def test_check_gateway_computes_on_a_one_worker_cluster(gw):
    name, token = gw.started_user()

    async def go():
        async with UserSim(gw.url, name, token=token) as user:
            return await check_gateway(user)

    summary = run_sync(go())
    assert "1 worker" in summary and "500500" in summary and "\n" not in summary


def test_a_gateway_that_dies_is_restarted_and_keeps_its_clusters(gw):
    name, token = gw.started_user()
    cluster = last_json(run(gw, name, token, START_PERSISTENT))["name"]
    run(gw, name, token, f"""
from dask_gateway import Gateway
with Gateway() as gw:
    cluster = gw.connect({cluster!r})
    cluster.scale(1)
    cluster.get_client().wait_for_workers(1, timeout=120)
""")
    before = json.loads(gw.cli("status", "--json").stdout)["services"]["dask-gateway"]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted():
        report = json.loads(gw.cli("status", "--json", check=False).stdout)
        now = report["services"]["dask-gateway"]
        return now["pid"] not in (None, before["pid"]) and report["healthy"] and now

    assert wait_for(restarted, what="the gateway to be restarted")["restarts"] == before["restarts"] + 1
    # The person's cluster and its worker survived: listed, reachable, computing; then it stops as usual.
    report = last_json(run(gw, name, token, f"""
import json
from dask_gateway import Gateway
gw = Gateway()
listed = [c.name for c in gw.list_clusters()]
cluster = gw.connect({cluster!r})
client = cluster.get_client()
total = client.submit(sum, range(11), pure=False).result()
cluster.shutdown(); gw.close()
print(json.dumps({{"listed": listed, "total": total}}))
"""))
    assert report == {"listed": [cluster], "total": 55}
    wait_for(lambda: cluster not in cluster_names(gw), what="the cluster to stop")
