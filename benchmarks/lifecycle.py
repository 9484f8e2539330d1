"""How long the operator waits: `pangeohub --help`, `up --detach`, `down`, and each service's share.

Each round brings up a real platform on random loopback ports (the test harness), with one person's server
running when `down` is asked (the usual case), and reads the supervisor's own log for the per-service times
("<service> ready in Xs", "stopped <service> in Ys").

    sudo /opt/pangeohub/bin/python benchmarks/lifecycle.py [--rounds 5] [--json out.json]

Needs root (it creates Linux accounts, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402

from pangeohub.ops.loadtest_report import percentile  # noqa: E402

READY = re.compile(r"^\s+(\S+) ready in ([\d.]+)s")
STOPPED = re.compile(r"^\s+stopped (\S+) in ([\d.]+)s")


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def one_round(figures: dict[str, list[float]]) -> None:
    hub = Platform()
    try:
        figures["up --detach"].append(timed(hub.up))
        hub.started_user()
        figures["down (one server running)"].append(timed(lambda: hub.cli("down")))
        for line in hub.rt.paths.log("supervisor").read_text().splitlines():
            if match := READY.match(line):
                figures[f"  start {match[1]}"].append(float(match[2]))
            elif match := STOPPED.match(line):
                figures[f"  stop {match[1]}"].append(float(match[2]))
    finally:
        hub.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the platform creates Linux accounts", file=sys.stderr)
        return 2
    figures: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        figures["pangeohub --help"].append(
            timed(lambda: subprocess.run([sys.executable, "-m", "pangeohub", "--help"], capture_output=True)))
        one_round(figures)
    print(f"{args.rounds} rounds, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':34} {'p50 s':>7} {'p95 s':>7}")
    for name, values in figures.items():
        print(f"{name:34} {percentile(values, 50):7.2f} {percentile(values, 95):7.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
