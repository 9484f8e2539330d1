"""Dask cluster start on Slurm (schedulers and workers as jobs) beside the local target, in the same run.

For each target, a real platform with the gateway (the test harness; for Slurm, the two-node test cluster of
tests/slurm_cluster.py), one person with a running server, then ``--repeat`` times, in their kernel:
``Gateway().new_cluster()`` (until the scheduler answers), ``cluster.scale(2)`` until both workers are
connected, one computation, ``cluster.shutdown()``. Prints p50/max of each phase as the person sees it.

    sudo /opt/pangeohub/bin/python benchmarks/slurm_dask.py [--repeat 5] [--targets local,slurm]

Needs root (Linux accounts, the test cluster's daemons and namespaces, the gateway's account and sudo rule;
all removed at the end). The load average is printed with the figures: other work on the machine changes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402
from slurm_cluster import SlurmCluster  # noqa: E402

from pangeohub.ops.loadtest_report import percentile  # noqa: E402
from pangeohub.usersim import UserSim, run_sync  # noqa: E402

CODE = """
import json, time
from dask_gateway import Gateway
gw = Gateway()
t0 = time.monotonic()
cluster = gw.new_cluster()
client = cluster.get_client()
t1 = time.monotonic()
cluster.scale(2)
client.wait_for_workers(2, timeout=300)
t2 = time.monotonic()
assert client.submit(sum, range(101), pure=False).result() == 5050
t3 = time.monotonic()
client.close(); cluster.shutdown(); gw.close()
t4 = time.monotonic()
print(json.dumps({"cluster": t1 - t0, "workers": t2 - t1, "compute": t3 - t2, "shutdown": t4 - t3,
                  "total": t3 - t0}))
"""
PHASES = ("cluster", "workers", "compute", "total", "shutdown")
GATEWAY = {"enabled": True, "scheduler_memory": "400M",
           "options": {"worker_memory": {"min": "256M", "default": "512M", "max": "1G"}}}


def extra_for(target: str, cluster: SlurmCluster | None, tag: str) -> dict:
    extra = {"gateway": dict(GATEWAY), "profiles": [{"name": "bench", "cpus": 1, "memory": "400M"}],
             "hub": {"start_timeout": 120}}
    if target == "slurm":
        extra["target"] = {"kind": "slurm", "slurm": {
            "slurm_conf": str(cluster.conf), "address": cluster.hub_address, "accounts": "platform",
            "poll_interval": "2s", "command_timeout": "15s",
            "gateway": {"user": f"phbgw{tag}", "people_group": f"phbpeople{tag}"}}}
    return extra


def run_target(target: str, repeat: int) -> dict:
    tag = str(os.getpid() % 100000)
    cluster = SlurmCluster(nodes=2).start() if target == "slurm" else None
    plat = Platform(extra=extra_for(target, cluster, tag))
    rule = None
    try:
        if target == "slurm":
            from pangeohub.targets.slurm.gatewaysetup import sudoers_file

            rule = sudoers_file(plat.rt.config)
        plat.up()
        name, token = plat.started_user()
        load = os.getloadavg()[0]
        rounds = []
        for _ in range(repeat):
            async def go():
                async with UserSim(plat.url, name, token=token) as user:
                    return await user.run(CODE, timeout=600)

            out = run_sync(go())
            if not out.ok:
                raise SystemExit(f"{target}: {out.error}\n{out.stderr[-2000:]}")
            rounds.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        plat.close()
        if rule is not None:
            rule.unlink(missing_ok=True)
            subprocess.run(["userdel", f"phbgw{tag}"], capture_output=True)
            subprocess.run(["groupdel", f"phbpeople{tag}"], capture_output=True)
        if cluster is not None:
            cluster.stop()
    result = {"target": target, "rounds": len(rounds), "loadavg_1m_before": round(load, 2)}
    for phase in PHASES:
        values = [r[phase] for r in rounds]
        result[f"{phase}_p50_s"] = round(percentile(values, 50) or 0, 2)
        result[f"{phase}_max_s"] = round(max(values, default=0), 2)
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="cluster starts per target")
    parser.add_argument("--targets", default="local,slurm", help="local, slurm")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates Linux accounts and a Slurm test cluster")
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(),
                      "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    results = [run_target(target, args.repeat) for target in args.targets.split(",")]
    print(f"\n{'target':<7} " + " ".join(f"{p + ' p50/max s':>22}" for p in PHASES))
    for r in results:
        print(f"{r['target']:<7} " + " ".join(f"{r[p + '_p50_s']:>13} / {r[p + '_max_s']:<6}" for p in PHASES))


if __name__ == "__main__":
    main()
