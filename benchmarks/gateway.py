#!/usr/bin/env python3
"""Dask Gateway latency, measured inside a real user's kernel on a throw-away platform.

    sudo /opt/pangeohub/bin/python benchmarks/gateway.py [--runs 5]

Per run: new_cluster() until the scheduler is ready; scale(0 -> 2) until both workers are up; a small xarray
reduction (mean over a 2000x2000 chunked array); shutdown. Beside it, the anchor from the same kernel and run:
``LocalCluster(processes=True)`` with two workers until both are up (``localcluster_2_workers``), against the
gateway's ``new_cluster + scale(2)`` (``gateway_2_workers``). Prints p50/p95 of each phase and the machine's
load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402
from pangeohub.usersim import UserSim, run_sync  # noqa: E402

CODE = r"""
import json, time
import dask.array as da, xarray as xr
from dask.distributed import Client, LocalCluster
from dask_gateway import Gateway
runs = []
with Gateway() as gateway:
    for _ in range({runs}):
        a0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
            with Client(local) as client:
                client.wait_for_workers(2, timeout=300)
                a1 = time.perf_counter()
        t0 = time.perf_counter()
        with gateway.new_cluster() as cluster:
            t1 = time.perf_counter()
            cluster.scale(2)
            with cluster.get_client() as client:
                client.wait_for_workers(2, timeout=300)
                t2 = time.perf_counter()
                data = xr.DataArray(da.random.random((2000, 2000), chunks=(500, 500)), dims=("y", "x"))
                value = float(data.mean("x").std().compute())
                t3 = time.perf_counter()
        t4 = time.perf_counter()
        runs.append({{"new_cluster": t1 - t0, "scale_0_to_2": t2 - t1, "xarray_reduction": t3 - t2,
                      "shutdown": t4 - t3, "gateway_2_workers": t2 - t0, "localcluster_2_workers": a1 - a0}})
print(json.dumps(runs))
"""


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    platform = Platform()
    try:
        started = time.perf_counter()
        platform.up()
        name, token = platform.started_user()
        print(f"platform up and server started in {time.perf_counter() - started:.1f}s", flush=True)

        async def go():
            async with UserSim(platform.url, name, token=token, timeout=1800) as user:
                return await user.run(CODE.format(runs=args.runs), timeout=1800)

        out = run_sync(go())
        if not out.ok:
            sys.exit(f"benchmark failed: {out.error}\n{out.stderr[-2000:]}")
        runs = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        platform.close()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'phase':<22} {'p50 s':>7} {'p95 s':>7} {'min s':>7} {'max s':>7}   ({len(runs)} runs)")
    for phase in runs[0]:
        values = [r[phase] for r in runs]
        print(f"{phase:<22} {pct(values, 50):>7.2f} {pct(values, 95):>7.2f} {min(values):>7.2f} {max(values):>7.2f}")


if __name__ == "__main__":
    main()
