"""Spawn latency and idle memory per server, stock spawner ("plain") against the fork server ("fast").

For each mode, a real platform on random loopback ports (the test harness), then rounds of N people who are
all logged in and ask for their server at the same moment (N = 1, 10, 30, 60 by default), after a round of
``--single`` people who start one after the other (single-user latency, no contention). Prints p50/p95 of
the spawn as the person sees it (request to ready), failures, the CPU the server processes used to get there,
and, after the servers have been idle a few seconds, RSS, USS and PSS per server.

    sudo /opt/pangeohub/bin/python benchmarks/spawn.py [--rounds 1,10,30,60] [--modes plain,fast] [--json out.json]

Needs root (it creates Linux accounts, removed at the end). The machine's load average is printed with the
figures: other work on the machine changes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as pyplatform
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402

from pangeohub.ops.people import create_users, remove_users  # noqa: E402
from pangeohub.ops.loadtest_report import percentile  # noqa: E402
from pangeohub.usersim import UserSim  # noqa: E402

IDLE_SETTLE = 5.0


def server_processes(prefix: str) -> list[psutil.Process]:
    """The single-user servers (not kernels) of the platform's accounts."""
    found = []
    for proc in psutil.process_iter(["username", "cmdline", "name"]):
        if not (proc.info["username"] or "").startswith(prefix):
            continue
        cmd = " ".join(proc.info["cmdline"] or [])
        if "jupyterhub-singleuser" in cmd or proc.info["name"] == "jupyterhub-sing" or "forkserver" in cmd:
            found.append(proc)
    return found


async def burst(url: str, passwords: dict[str, str]) -> tuple[list[float], list[str], float]:
    sims = [UserSim(url, name, password=password, timeout=600) for name, password in passwords.items()]
    for sim in sims:
        await sim.__aenter__()
    try:
        await asyncio.gather(*(sim.login() for sim in sims))
        started = time.perf_counter()
        results = await asyncio.gather(*(sim.start_server() for sim in sims), return_exceptions=True)
        wall = time.perf_counter() - started
        times = [sim.timings["spawn"] for sim, r in zip(sims, results) if not isinstance(r, BaseException)]
        errors = [f"{sim.username}: {r}" for sim, r in zip(sims, results) if isinstance(r, BaseException)]
        return times, errors, wall
    finally:
        for sim in sims:
            await sim.__aexit__(None, None, None)


def memory(prefix: str) -> dict:
    procs = server_processes(prefix)
    rows = []
    for proc in procs:
        try:
            info = proc.memory_full_info()
            rows.append((info.rss, info.uss, info.pss, sum(proc.cpu_times()[:2])))
        except psutil.Error:
            pass
    if not rows:
        return {}
    mib = lambda values: round(sum(values) / len(values) / 2**20, 1)  # noqa: E731
    return {"servers": len(rows), "rss_mib": mib([r[0] for r in rows]), "uss_mib": mib([r[1] for r in rows]),
            "pss_mib": mib([r[2] for r in rows]), "cpu_s_per_server": round(sum(r[3] for r in rows) / len(rows), 2)}


async def one_by_one(url: str, passwords: dict[str, str]) -> list[float]:
    """Single-user spawn latency: each person starts a server while nobody else is starting one."""
    times = []
    for name, password in passwords.items():
        async with UserSim(url, name, password=password, timeout=600) as sim:
            await sim.login()
            await sim.start_server()
            times.append(sim.timings["spawn"])
            await sim.stop_server()
    return times


def run_mode(mode: str, rounds: list[int], single: int) -> list[dict]:
    plat = Platform(extra={"hub": {"fast_spawn": mode == "fast"}})
    results = []
    try:
        plat.up()
        rt = plat.rt
        if single:
            names = [f"bench{mode[0]}sx{i:03d}" for i in range(single)]
            load = os.getloadavg()
            times = asyncio.run(one_by_one(plat.url, create_users(rt, names)))
            row = {"mode": mode, "users": f"1 x{single}", "ok": len(times), "failed": single - len(times),
                   "p50_s": round(percentile(times, 50), 2), "p95_s": round(percentile(times, 95), 2),
                   "max_s": round(max(times), 2), "loadavg_1m_before": round(load[0], 2), "errors": []}
            print(json.dumps(row), flush=True)
            results.append(row)
            remove_users(rt, names)
        for n in rounds:
            names = [f"bench{mode[0]}{n}x{i:03d}" for i in range(n)]
            passwords = create_users(rt, names)
            load = os.getloadavg()
            times, errors, wall = asyncio.run(burst(plat.url, passwords))
            time.sleep(IDLE_SETTLE)
            mem = memory(plat.prefix)
            row = {"mode": mode, "users": n, "ok": len(times), "failed": len(errors),
                   "p50_s": round(percentile(times, 50) or 0, 2), "p95_s": round(percentile(times, 95) or 0, 2),
                   "max_s": round(max(times, default=0), 2), "wall_s": round(wall, 2),
                   "loadavg_1m_before": round(load[0], 2), **mem, "errors": errors[:3]}
            print(json.dumps(row), flush=True)
            results.append(row)
            remove_users(rt, names)
    finally:
        plat.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", default="1,10,30,60")
    parser.add_argument("--modes", default="plain,fast")
    parser.add_argument("--single", type=int, default=10, help="sequential one-person spawns (0: skip)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates Linux accounts")
    rounds = [int(n) for n in args.rounds.split(",") if n]
    machine = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "host": pyplatform.node(), "cpus": os.cpu_count(),
               "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "cpu": _cpu_model(),
               "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(machine), flush=True)
    results = [row for mode in args.modes.split(",") for row in run_mode(mode, rounds, args.single)]
    print(f"\n{'mode':<6} {'users':>5} {'ok':>4} {'fail':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} "
          f"{'load':>5} {'RSS':>6} {'USS':>6} {'PSS':>6} {'CPU s':>6}")
    for r in results:
        print(f"{r['mode']:<6} {str(r['users']):>5} {r['ok']:>4} {r['failed']:>4} {r['p50_s']:>6} {r['p95_s']:>6} "
              f"{r['max_s']:>6} {r['loadavg_1m_before']:>5} {r.get('rss_mib', '-'):>6} {r.get('uss_mib', '-'):>6} "
              f"{r.get('pss_mib', '-'):>6} {r.get('cpu_s_per_server', '-'):>6}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return pyplatform.processor()


if __name__ == "__main__":
    main()
