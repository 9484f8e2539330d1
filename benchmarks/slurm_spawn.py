"""Spawn latency with servers as Slurm jobs, beside the local target, in the same run on the same machine.

For each target, a real platform (the test harness; for Slurm, the two-node test cluster of
tests/slurm_cluster.py with room for every server at once), then ``--single`` people who start one after the
other (one person's latency, no contention), then ``--burst`` people who ask for their server at the same
moment. ``local-plain`` is the local target without its fork server: each server imports Jupyter
from scratch, as a Slurm job does. Prints p50/p95/max of the spawn as the person sees it (request to ready) and failures.

    sudo /opt/pangeohub/bin/python benchmarks/slurm_spawn.py [--single 5] [--burst 20] [--targets local,slurm]

Needs root (Linux accounts, the test cluster's daemons and namespaces; all removed at the end). The load
average is printed with the figures: other work on the machine changes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

# tests/ first: its slurm_cluster is the cluster (benchmarks/ has a script of that name); spawn is
# benchmarks/spawn.py, found in this script's own directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402
from slurm_cluster import SlurmCluster  # noqa: E402
from spawn import burst, one_by_one  # noqa: E402

from pangeohub.ops.people import create_users, remove_users  # noqa: E402
from pangeohub.ops.loadtest_report import percentile  # noqa: E402

SHORT = {"local": "l", "local-plain": "p", "slurm": "s"}  # in the benchmark's account names
PROFILE = {"name": "bench", "cpus": 1, "memory": "300M"}


def extra_for(target: str, cluster: SlurmCluster | None) -> dict:
    extra = {"gateway": {"enabled": False}, "profiles": [PROFILE], "hub": {"start_timeout": 300}}
    if target == "local-plain":  # the stock server start, as on Slurm (no fork server): where the time goes
        extra["hub"]["fast_spawn"] = False
    if target == "slurm":
        extra["target"] = {"kind": "slurm", "slurm": {
            "slurm_conf": str(cluster.conf), "address": cluster.hub_address, "accounts": "platform",
            "poll_interval": "2s", "command_timeout": "15s"}}
    return extra


def row(target: str, users: str, times: list[float], failed: int, load: float, errors=()) -> dict:
    out = {"target": target, "users": users, "ok": len(times), "failed": failed,
           "p50_s": round(percentile(times, 50) or 0, 2), "p95_s": round(percentile(times, 95) or 0, 2),
           "max_s": round(max(times, default=0), 2), "loadavg_1m_before": round(load, 2), "errors": list(errors)[:3]}
    print(json.dumps(out), flush=True)
    return out


def run_target(target: str, single: int, many: int) -> list[dict]:
    cluster = None
    results = []
    try:
        if target == "slurm":
            # Every server of the burst fits at once: the figure is the spawn path's, not the queue's.
            cluster = SlurmCluster(nodes=2, cpus=max(4, many), memory_mb=max(4000, many * 400)).start()
        plat = Platform(extra=extra_for(target, cluster))
        try:
            plat.up()
            rt = plat.rt
            if single:
                names = [f"bs{SHORT[target]}1x{i:03d}" for i in range(single)]
                load = os.getloadavg()[0]
                times = asyncio.run(one_by_one(plat.url, create_users(rt, names)))
                results.append(row(target, f"1 x{single}", times, single - len(times), load))
                remove_users(rt, names)
            if many:
                names = [f"bs{SHORT[target]}{many}x{i:03d}" for i in range(many)]
                passwords = create_users(rt, names)
                load = os.getloadavg()[0]
                times, errors, _ = asyncio.run(burst(plat.url, passwords))
                results.append(row(target, str(many), times, len(errors), load, errors))
                remove_users(rt, names)
        finally:
            plat.close()
    finally:
        if cluster is not None:
            cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=5, help="one-after-the-other spawns (0: skip)")
    parser.add_argument("--burst", type=int, default=20, help="people spawning at the same moment (0: skip)")
    parser.add_argument("--targets", default="local,local-plain,slurm",
                        help="local (fork server), local-plain (stock start), slurm")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates Linux accounts and a Slurm test cluster")
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(),
                      "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    results = [r for target in args.targets.split(",") for r in run_target(target, args.single, args.burst)]
    print(f"\n{'target':<7} {'users':>6} {'ok':>4} {'fail':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'load':>5}")
    for r in results:
        print(f"{r['target']:<7} {r['users']:>6} {r['ok']:>4} {r['failed']:>4} {r['p50_s']:>6} {r['p95_s']:>6} "
              f"{r['max_s']:>6} {r['loadavg_1m_before']:>5}")


if __name__ == "__main__":
    main()
