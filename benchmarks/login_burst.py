"""A workshop's first minute: N generated accounts log in at once through the login form.

Prints per-login latency (p50 / p95 / max) and the whole burst's wall time. Argon2 verification runs in
the hub's thread pool, so this shows what the chosen hash cost means for a room of attendees.

    sudo /opt/pangeohub/bin/python benchmarks/login_burst.py --count 60
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402
from pangeohub.usersim import UserSim  # noqa: E402


async def burst(url: str, rows: list[dict]) -> list[float]:
    async def one(row):
        async with UserSim(url, row["username"], password=row["password"]) as sim:
            started = time.perf_counter()
            await sim.login()
            return time.perf_counter() - started

    return await asyncio.gather(*(one(r) for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    platform = Platform()
    try:
        platform.up()
        out = Path(tempfile.mkdtemp())
        started = time.perf_counter()
        platform.cli("users", "generate", "--count", str(args.count), "--prefix", "bench", "--out", str(out))
        generate = time.perf_counter() - started
        rows = list(csv.DictReader(next(out.glob("*.csv")).open()))
        started = time.perf_counter()
        times = sorted(asyncio.run(burst(platform.url, rows)))
        wall = time.perf_counter() - started
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f}")
        print(f"generate {args.count} accounts: {generate:.1f}s (CLI, incl. start-up)")
        print(f"{args.count} simultaneous logins: wall {wall:.2f}s, p50 {statistics.median(times):.2f}s, "
              f"p95 {p95:.2f}s, max {times[-1]:.2f}s")
    finally:
        platform.close()


if __name__ == "__main__":
    main()
