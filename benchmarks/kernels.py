"""Kernel start latency and CPU, fresh Python kernels ("plain") against forked ones ("fast", hub.fast_kernels).

For each mode, a real platform on random loopback ports (the test harness) with N people whose servers are
running. Then: one person starts ``--single`` kernels one after the other (no contention), and all N people
start a kernel at the same moment (a class opening its first notebook). Latency is what JupyterLab waits
for: the request until the kernel answers ``kernel_info``. CPU is what each kernel process used to get
there and its unique memory (USS) while it idles (read from /proc).

    sudo /opt/pangeohub/bin/python benchmarks/kernels.py [--people 30] [--single 10] [--modes plain,fast]

Needs root (it creates Linux accounts, removed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402

from pangeohub.ops.people import create_users, remove_users  # noqa: E402
from pangeohub.ops.loadtest_report import percentile  # noqa: E402
from pangeohub.usersim import UserSim  # noqa: E402


def kernel_stats(prefix: str) -> list[tuple[float, float]]:
    """(CPU-seconds, USS in MiB) of every running kernel of the platform's accounts."""
    found = []
    for proc in psutil.process_iter(["username", "cmdline"]):
        if (proc.info["username"] or "").startswith(prefix) and "ipykernel_launcher" in proc.info["cmdline"]:
            try:
                found.append((sum(proc.cpu_times()[:2]), proc.memory_full_info().uss / 2**20))
            except psutil.Error:
                pass
    return found


def mean(values: list[float], digits: int) -> float:
    return round(sum(values) / max(len(values), 1), digits)


async def sessions(url: str, passwords: dict[str, str]) -> list[UserSim]:
    sims = [UserSim(url, name, password=password, timeout=600) for name, password in passwords.items()]
    for sim in sims:
        await sim.__aenter__()
    await asyncio.gather(*(sim.login() for sim in sims))
    for sim in sims:  # one at a time: this benchmark is about kernels, not about a spawn burst
        await sim.start_server()
    return sims


async def one_by_one(sim: UserSim, count: int, prefix: str) -> tuple[list[float], list[tuple[float, float]]]:
    times, stats = [], []
    for _ in range(count):
        kernel = await sim.start_kernel()
        times.append(sim.timings["kernel"])
        await asyncio.sleep(0.5)
        stats += kernel_stats(prefix)
        await sim.stop_kernel(kernel)
    return times, stats


async def at_once(sims: list[UserSim]) -> tuple[list[float], list[str]]:
    results = await asyncio.gather(*(sim.start_kernel() for sim in sims), return_exceptions=True)
    times = [sim.timings["kernel"] for sim, r in zip(sims, results) if not isinstance(r, BaseException)]
    errors = [f"{sim.username}: {r}" for sim, r in zip(sims, results) if isinstance(r, BaseException)]
    return times, errors


def run_mode(mode: str, people: int, single: int) -> list[dict]:
    plat = Platform(extra={"hub": {"fast_kernels": mode == "fast"}})
    names = [f"kb{mode[0]}{i:03d}" for i in range(people)]
    rows = []
    try:
        plat.up()
        passwords = create_users(plat.rt, names)

        async def go():
            sims = await sessions(plat.url, passwords)
            try:
                load = os.getloadavg()[0]
                times, stats = await one_by_one(sims[0], single, plat.prefix)
                rows.append({"mode": mode, "kernels": f"1 x{single}", "ok": len(times), "failed": 0,
                             "p50_s": round(percentile(times, 50), 3), "p95_s": round(percentile(times, 95), 3),
                             "cpu_s": mean([c for c, _ in stats], 3), "uss_mib": mean([u for _, u in stats], 1),
                             "load_1m": round(load, 2)})
                load = os.getloadavg()[0]
                times, errors = await at_once(sims)
                await asyncio.sleep(2)
                stats = kernel_stats(plat.prefix)
                rows.append({"mode": mode, "kernels": people, "ok": len(times), "failed": len(errors),
                             "p50_s": round(percentile(times, 50) or 0, 2),
                             "p95_s": round(percentile(times, 95) or 0, 2),
                             "cpu_s": mean([c for c, _ in stats], 3), "uss_mib": mean([u for _, u in stats], 1),
                             "load_1m": round(load, 2), "errors": errors[:3]})
            finally:
                for sim in sims:
                    await sim.__aexit__(None, None, None)

        asyncio.run(go())
        for row in rows:
            print(json.dumps(row), flush=True)
        remove_users(plat.rt, names)
    finally:
        plat.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--single", type=int, default=10)
    parser.add_argument("--modes", default="plain,fast")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates Linux accounts")
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(),
                      "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    rows = [row for mode in args.modes.split(",") for row in run_mode(mode, args.people, args.single)]
    print(f"\n{'mode':<6} {'kernels':>7} {'ok':>4} {'fail':>4} {'p50 s':>6} {'p95 s':>6} {'CPU s':>6} "
          f"{'USS':>6} {'load':>5}")
    for r in rows:
        print(f"{r['mode']:<6} {str(r['kernels']):>7} {r['ok']:>4} {r['failed']:>4} {r['p50_s']:>6} "
              f"{r['p95_s']:>6} {r['cpu_s']:>6} {r['uss_mib']:>6} {r['load_1m']:>5}")


if __name__ == "__main__":
    main()
