"""`pangeohub restart hub` with many servers running: how long until every one of them answers again.

A real platform on random loopback ports (the test harness). N people log in and start their servers (in waves,
through the spawn queue); then, timed: `pangeohub restart hub` until the command returns, and until every
server answers its owner's token through the proxy (``GET /user/NAME/api/status``, what JupyterLab polls).
Servers must not restart: each one's start time is compared before and after. Also printed: the hub's and the
servers' memory (PSS per server), and the load average. Anchor: jupyterhub-bench measured 15.3 s with 5,000
servers on stock JupyterHub.

    sudo /opt/pangeohub/bin/python benchmarks/hub_restart.py [--servers 400] [--wave 40] [--json out.json]

Needs root (it creates Linux accounts, removed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402
from spawn import memory  # noqa: E402

from pangeohub.ops.people import create_users, remove_users  # noqa: E402
from pangeohub.usersim import UserSim  # noqa: E402


async def start_servers(url: str, passwords: dict[str, str], wave: int) -> dict[str, str]:
    """Each person's API token once their server runs (``wave`` people asking at a time)."""
    tokens: dict[str, str] = {}
    gate = asyncio.Semaphore(wave)

    async def one(name: str, password: str) -> None:
        async with gate, UserSim(url, name, password=password, timeout=900) as sim:
            await sim.login()
            await sim.start_server()
            tokens[name] = sim.token

    results = await asyncio.gather(*(one(n, p) for n, p in passwords.items()), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        print(f"{len(failed)} servers did not start, e.g. {failed[0]!r}", flush=True)
    return tokens


async def started_times(url: str, admin_token: str) -> dict[str, str]:
    async with aiohttp.ClientSession(headers={"Authorization": f"token {admin_token}"}) as session:
        async with session.get(f"{url}/hub/api/users") as response:
            users = await response.json()
    return {u["name"]: (u.get("servers") or {}).get("", {}).get("started") for u in users}


async def until_all_answer(url: str, tokens: dict[str, str], began: float) -> dict[str, float]:
    """Seconds from ``began`` until each server answered its owner through the proxy."""
    answered: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async def one(name: str, token: str) -> None:
            while True:
                try:
                    async with session.get(f"{url}/user/{name}/api/status",
                                           headers={"Authorization": f"token {token}"},
                                           allow_redirects=False) as response:
                        if response.status == 200:
                            answered[name] = time.monotonic() - began
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.2)

        await asyncio.wait_for(asyncio.gather(*(one(n, t) for n, t in tokens.items())), 300)
    return answered


def settle(limit: float) -> float:
    """Wait (up to ``limit`` seconds) until the spawns' load has passed: the 1-minute load average under the core
    count, so that the restart is timed on a machine at rest, not behind the tail of 400 starts."""
    began = time.monotonic()
    time.sleep(5)
    while os.getloadavg()[0] > (os.cpu_count() or 1) and time.monotonic() - began < limit:
        time.sleep(5)
    return round(time.monotonic() - began, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=400)
    parser.add_argument("--wave", type=int, default=40, help="people asking for a server at the same time")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates Linux accounts")
    plat = Platform()
    names = [f"hr{i:04d}" for i in range(args.servers)]
    try:
        plat.up()
        rt = plat.rt
        passwords = create_users(rt, names)
        t = time.monotonic()
        tokens = asyncio.run(start_servers(plat.url, passwords, args.wave))
        print(f"{len(tokens)} servers running after {time.monotonic() - t:.0f} s", flush=True)
        admin = rt.secret("hub_admin_token")
        before = asyncio.run(started_times(plat.url, admin))
        settled = settle(limit=120)
        mem = memory(plat.prefix)
        load = os.getloadavg()
        hub_pid = json.loads(plat.cli("status", "--json").stdout)["services"]["hub"]["pid"]
        hub_rss = psutil.Process(hub_pid).memory_info().rss / 2**20

        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pangeohub", "--config", str(plat.config_path),
                               "restart", "hub"], capture_output=True, text=True)
        command_s = time.monotonic() - began
        answered = asyncio.run(until_all_answer(plat.url, tokens, began))
        after = asyncio.run(started_times(plat.url, admin))
        restarted = [n for n in tokens if before.get(n) != after.get(n)]
        row = {"servers": len(tokens), "restart_command_s": round(command_s, 2),
               "all_servers_answer_s": round(max(answered.values(), default=0), 2),
               "servers_restarted": len(restarted), "hub_rss_mib_before": round(hub_rss, 1),
               "loadavg_1m": round(load[0], 2), "settled_s": settled, "restart_ok": proc.returncode == 0, **mem}
        print(json.dumps(row), flush=True)
        print(f"\nrestart hub with {row['servers']} servers: command {row['restart_command_s']} s, every server "
              f"answering after {row['all_servers_answer_s']} s, {len(restarted)} servers restarted "
              f"(anchor: jupyterhub-bench 15.3 s with 5,000)")
        if args.json:
            args.json.write_text(json.dumps(row, indent=2) + "\n")
    finally:
        remove_users(plat.rt, names)
        plat.close()


if __name__ == "__main__":
    main()
