"""Accounting on a real platform: CPU burned in a kernel and in a Dask worker reaches the hourly record, each
in its own column, measured by the kernel's counters; a sampler that is killed and started again by the hub
neither loses nor repeats what was recorded. (Gaps and counter arithmetic: test_usage_report.py.)"""

import json
import os
import signal
from pathlib import Path

import pytest
from harness import Platform, usage_of, wait_for
from harness import kernel_json as run

from pangeohub.targets.local import cgroups
from pangeohub.usage.cpuacct import CpuAccounting

pytestmark = pytest.mark.platform

INTERVAL = 3  # seconds between samples: the test waits for a few of them


@pytest.fixture(scope="module")
def person(hub):
    """A person whose running server the sampler has seen (what comes later is measured from then on)."""
    name, token = hub.started_user()
    assert wait_for(lambda: (usage_of(hub, name) or {}).get("server_starts"), "the sampler to see the server") == 1
    return name, token


@pytest.fixture(scope="module")
def hub():
    platform = Platform(extra={"usage": {"sample_interval": f"{INTERVAL}s", "storage_interval": "5s"}})
    try:
        platform.up()
        yield platform
    finally:
        rt = platform.rt
        platform.close()
        # The sampler removes the accounting groups of people who are gone, but it stops with the hub, before
        # the people are released: do what its next round would have done.
        CpuAccounting(cgroups.backend_for(rt.config.limits), rt.paths.gateway_clusters).prune()




# Sleep past two samples first, so that the sampler has put the new kernel in the person's accounting group,
# then burn a known amount of CPU and report what the process itself measured.
BURN = """
import json, time
time.sleep({wait})
start = time.process_time()
while time.process_time() - start < {seconds}:
    sum(i * i for i in range(10000))
print(json.dumps({{"burned": time.process_time() - start}}))
"""


def test_cpu_burned_in_a_kernel_is_recorded_as_server_cpu(hub, person):
    name, token = person
    before = usage_of(hub, name)["server_cpu_seconds"]
    burned = run(hub, name, token, BURN.format(wait=2 * INTERVAL + 1, seconds=5))["burned"]
    row = wait_for(lambda: (lambda r: r if r["server_cpu_seconds"] - before >= 0.8 * burned else None)(
        usage_of(hub, name)), "the burned CPU in the report")
    # Within 20 %: the server's and kernel's own work (starting the kernel, messages) is the rest.
    recorded = row["server_cpu_seconds"] - before
    assert 0.8 * burned <= recorded <= 1.2 * burned, (recorded, burned)
    assert row["dask_core_hours"] < 0.1 / 3600 * 60  # nothing of it counted as Dask
    assert row["server_memory_gb_hours"] > 0 and row["server_hours"] > 0
    assert row["home_bytes"] > 0


DASK_BURN = """
import json, time
from dask_gateway import Gateway

def burn(wait, seconds):
    import time
    time.sleep(wait)
    start = time.process_time()
    while time.process_time() - start < seconds:
        sum(i * i for i in range(10000))
    return time.process_time() - start

with Gateway() as gw:
    with gw.new_cluster() as cluster:
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=180)
        burned = client.submit(burn, {wait}, {seconds}, pure=False).result()
        time.sleep({wait})  # a sample while the cluster still holds its worker
        client.close()
print(json.dumps({{"burned": burned}}))
"""


def test_dask_cpu_is_counted_as_dask_and_not_also_as_server_cpu(hub, person):
    name, token = person
    before = usage_of(hub, name)
    out = run(hub, name, token, DASK_BURN.format(wait=2 * INTERVAL + 1, seconds=6))
    burned = out["burned"]

    row = wait_for(lambda: (lambda r: r if r["dask_core_hours"] * 3600 >= 0.9 * burned else None)(
        usage_of(hub, name)), "the Dask CPU in the report")
    dask_seconds = row["dask_core_hours"] * 3600 - before["dask_core_hours"] * 3600
    server_seconds = row["server_cpu_seconds"] - before["server_cpu_seconds"]
    assert dask_seconds >= 0.9 * burned
    # The kernel only waited on the cluster: the worker's burn is not in the server's column too.
    assert server_seconds < 0.5 * burned, (server_seconds, burned)
    # The gateway's records give what the cluster held (scheduler and a worker), labelled as requested.
    assert row["dask_requested_core_hours"] > 0


def test_a_restarted_sampler_neither_loses_nor_repeats_what_was_recorded(hub, person):
    name, _ = person
    pid = sampler_pid(hub)
    assert pid
    before = usage_of(hub, name)
    os.kill(pid, signal.SIGKILL)
    # JupyterHub starts a managed service again when it exits; the new one carries on from the database.
    wait_for(lambda: (sampler_pid(hub) or pid) != pid, "the hub to start the sampler again")
    wait_for(lambda: usage_of(hub, name)["server_hours"] > before["server_hours"] + 2 * INTERVAL / 3600,
             "samples from the new sampler")
    after = usage_of(hub, name)
    # Repeating the counters' readings would add everything measured so far (over 10 s of each); what may come
    # on top is the idle server's and the last Dask processes' stopping, a second or two.
    assert before["server_cpu_seconds"] <= after["server_cpu_seconds"] <= before["server_cpu_seconds"] + 3.0
    assert before["dask_core_hours"] <= after["dask_core_hours"] <= before["dask_core_hours"] + 3.0 / 3600
    report = hub.cli("usage", "report", "--since", "1d").stdout
    assert name in report


def sampler_pid(hub) -> int | None:
    """The sampler of this platform (its settings name this platform's state dir)."""
    marker = str(hub.rt.paths.root).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"pangeohub.usage.sampler" in (proc / "cmdline").read_bytes() \
                    and marker in (proc / "environ").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    return None


def test_a_corrupted_usage_database_leaves_the_platform_running(hub, person):
    name, token = person
    hub.rt.paths.usage_db.write_bytes(b"not a database" * 1000)
    proc = hub.cli("usage", "report", check=False)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    # The sampler says so in the hub's log at its next round and carries on; people keep working.
    wait_for(lambda: "cannot be read" in hub.rt.paths.log("hub").read_text(errors="replace"),
             "the sampler to report the damaged database")
    assert sampler_pid(hub)
    assert run(hub, name, token, "import json; print(json.dumps({'sum': sum(range(10))}))") == {"sum": 45}
    assert json.loads(hub.cli("status", "--json").stdout)
