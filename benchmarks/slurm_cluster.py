"""Start-up and job round-trip of the multi-node Slurm test cluster (tests/slurm_cluster.py).

Prints: time until both compute nodes are idle; `srun` round trip (submit, run `true` on one node as a
non-root person, return); `sbatch` to RUNNING as seen by `squeue` through pangeohub's Slurm client.
Run as root with the runtime's Python: sudo /opt/pangeohub/bin/python benchmarks/slurm_cluster.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from slurm_cluster import SlurmCluster  # noqa: E402

from pangeohub.targets.slurm.client import SlurmClient  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster = SlurmCluster(nodes=2)
    try:
        cluster.start()
        print(f"cluster start (munged, slurmctld, 2 slurmd, until idle): {cluster.started_in:.2f}s")
        person = cluster.add_user().pw_name
        client = SlurmClient(cluster.conf)
        rtt, to_running = [], []
        for _ in range(args.runs):
            started = time.monotonic()
            cluster.run("srun", "-N1", "true", user=person)
            rtt.append(time.monotonic() - started)
            started = time.monotonic()
            job = client.sbatch("#!/bin/sh\nsleep 60\n", f"--output=/var/tmp/{os.getpid()}.out",
                                "--uid=" + person)
            while (j := client.job(job)) is None or j.state != "RUNNING":
                time.sleep(0.05)
            to_running.append(time.monotonic() - started)
            client.cancel(job)
        for name, values in (("srun round trip", rtt), ("sbatch to RUNNING", to_running)):
            print(f"{name}: p50 {statistics.median(values):.2f}s, max {max(values):.2f}s over {len(values)}")
        print(f"load average: {os.getloadavg()}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
