"""The multi-node Slurm test cluster itself: jobs run on separate network hosts, as the person, within limits.

Runs for real wherever the tests run as root (CI does); skipped only without root, with the reason.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from slurm_cluster import (  # noqa: F401 (cluster and person are fixtures)
    SlurmCluster, cluster, memory_cgroup_v1, person, requires_slurm,
)

pytestmark = requires_slurm


@pytest.mark.parametrize("index", [0, 1])
def test_job_runs_on_its_node_as_the_person_with_the_nodes_address(cluster, person, index):
    node = cluster.node_names[index]
    out = cluster.run("srun", f"--nodelist={node}", "-N1", "sh", "-c",
                      "echo $SLURMD_NODENAME $(id -u) $(hostname -I)", user=person.pw_name).stdout.split()
    assert out == [node, str(person.pw_uid), cluster.node_address(node)]
    assert cluster.node_address(node) != cluster.hub_address


def test_batch_job_writes_into_the_persons_home(cluster, person):
    result = f"{person.pw_dir}/where.txt"
    cluster.run("sbatch", "--wait", f"--output={person.pw_dir}/job.out", "--wrap",
                f"echo $SLURMD_NODENAME > {result}", user=person.pw_name, timeout=60)
    with open(result) as f:
        assert f.read().strip() in cluster.node_names


def test_node_reaches_the_hub_side_address_but_not_the_hubs_loopback(cluster, person):
    seen = []
    with socket.socket() as hub, socket.socket() as loopback:
        hub.bind((cluster.hub_address, 0))
        hub.listen()
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()

        def accept():
            conn, addr = hub.accept()
            seen.append(addr[0])
            conn.close()
        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        probe = ("import socket,sys; s=socket.socket(); s.settimeout(3); "
                 "print(s.connect_ex((sys.argv[1], int(sys.argv[2]))))")
        hub_port, lo_port = hub.getsockname()[1], loopback.getsockname()[1]
        node = f"--nodelist={cluster.node_names[0]}"
        out = cluster.run("srun", node, "-N1", "python3", "-c", probe, cluster.hub_address, str(hub_port),
                          user=person.pw_name).stdout.strip()
        assert out == "0"
        thread.join(5)
        assert seen == [cluster.node_address(cluster.node_names[0])]
        # The hub's 127.0.0.1 is not the node's: a URL that says 127.0.0.1 fails there, as on a real cluster.
        out = cluster.run("srun", node, "-N1", "python3", "-c", probe, "127.0.0.1", str(lo_port),
                          user=person.pw_name).stdout.strip()
        assert out != "0"


@pytest.mark.skipif(memory_cgroup_v1() is not None, reason=str(memory_cgroup_v1()))
def test_job_past_its_memory_limit_is_killed_by_slurm(cluster, person):
    assert cluster.memory_enforced
    grow = "x = []\nwhile True: x.append(bytearray(50 * 2**20))\n"
    started = time.monotonic()
    proc = cluster.run("srun", f"--nodelist={cluster.node_names[1]}", "-N1", "--mem=200M", "python3", "-c",
                       grow, user=person.pw_name, check=False, timeout=60)
    assert proc.returncode != 0
    assert "oom" in proc.stderr.lower() or "out-of-memory" in proc.stderr.lower(), proc.stderr
    assert time.monotonic() - started < 30
    # The same program inside its limit is left alone.
    small = "x = bytearray(50 * 2**20); print('ok')"
    out = cluster.run("srun", "-N1", "--mem=200M", "python3", "-c", small, user=person.pw_name).stdout
    assert out.strip() == "ok"


def test_cleanup_leaves_nothing_behind():
    import os
    import subprocess
    c = SlurmCluster(nodes=2)
    try:
        c.start()
        name = c.add_user().pw_name
    finally:
        c.stop()
    assert not c.root.exists()
    assert c.bridge not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not any(c.netns(n) in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                 text=True).stdout for n in c.node_names)
    assert subprocess.run(["id", name], capture_output=True).returncode != 0
    for proc in c.procs:
        assert proc.poll() is not None
    for controller in ("memory", "freezer", "cpuset", "devices"):
        assert not any(c.tag in p for p in os.listdir(f"/sys/fs/cgroup/{controller}"))
    assert c.tag not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
