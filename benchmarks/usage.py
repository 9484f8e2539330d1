#!/usr/bin/env python3
"""What accounting costs: the sampler's CPU per round with many people, and the report's time over a long record.

    sudo /opt/pangeohub/bin/python benchmarks/usage.py [--people 100] [--days 90] [--rounds 5]

Sampler: makes ``--people`` real cgroups (v1 memory/cpu/pids, as the limits make them), each holding one
sleeping process, and times ``--rounds`` rounds of what the sampler does per person (read the cgroup, sort the
processes into the accounting groups, read the counters) plus the database write. Storage sizes (home, scratch)
are measured every ``usage.storage_interval`` and are not in this figure.
Report: fills a database with ``--days`` days of hourly rows for ``--people`` people and times the report by
person and by day, in-process and through the CLI.
Scrape: on the same database, times building the metrics endpoint's own part (``pangeohub_*``: every person's
totals over the whole record: the service's first scrape, then the usual ones) and the admin page.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pangeohub.config.resources import LimitsSection
from pangeohub.targets.local import cgroups
from pangeohub.targets.local.cgroup_base import enter_user_cgroup
from pangeohub.usage.cpuacct import CpuAccounting
from pangeohub.usage.report import build
from pangeohub.usage.store import HOUR, LEVELS, SUMMED, PersonSample, UsageStore, hour_of


def sampler_cost(people: int, rounds: int, workdir: Path) -> dict:
    limits = LimitsSection(cgroup_name="pangeohub-bench-usage")
    backend = cgroups.backend_for(limits)
    accounting = CpuAccounting(backend, workdir / "clusters")
    names = [f"bench{i:03d}" for i in range(people)]
    procs = []
    try:
        for name in names:
            group = backend.prepare(name, 1.0, 256 << 20, 64)
            procs.append(subprocess.Popen(["sleep", "600"], preexec_fn=lambda g=group: enter_user_cgroup(g)))
        store = UsageStore(workdir / "usage.sqlite")
        times = []
        for _ in range(rounds):
            cpu, wall = time.process_time(), time.perf_counter()
            samples = []
            for name in names:
                measured = accounting.sample(name)
                samples.append(PersonSample(person=name, counters={"server_cpu": measured["server_cpu"],
                                                                   "dask_cpu": measured["dask_cpu"]},
                                            memory_bytes=measured["memory"], server_running=True))
            store.record(samples, time.time(), 60)
            times.append((time.process_time() - cpu, time.perf_counter() - wall))
        steady = times[1:] or times  # the first round also makes the accounting groups
        return {"people": people, "first_round_cpu_s": round(times[0][0], 3),
                "round_cpu_s": round(sum(t[0] for t in steady) / len(steady), 3),
                "round_wall_s": round(sum(t[1] for t in steady) / len(steady), 3),
                "cpu_percent_of_one_core_at_1_per_minute": round(100 * sum(t[0] for t in steady) / len(steady) / 60, 3)}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for name in names:
            backend.remove(name)
        accounting.prune()  # after the limits' cgroups are gone: it removes the accounting groups of the gone
        backend.remove_parent()
        if accounting.base is not None:
            try:
                accounting.base.rmdir()
            except OSError:
                pass


def report_cost(people: int, days: int, workdir: Path) -> dict:
    path = workdir / "state" / "usage.sqlite"
    path.parent.mkdir()
    store = UsageStore(path)
    store.record([], time.time(), 60)  # the schema
    import sqlite3

    first = hour_of(time.time()) - days * 24 * HOUR
    columns = ["hour", "person", *SUMMED, *LEVELS, "profile", "groups"]
    rows = ((first + h * HOUR, f"p{p:03d}", *([1.0] * len(SUMMED)), *([1000] * len(LEVELS)), "small",
             json.dumps([f"g{p % 5}"])) for h in range(days * 24 + 1) for p in range(people))
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO hourly ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    out = {"people": people, "days": days, "rows": people * (days * 24 + 1),
           "db_mb": round(path.stat().st_size / 1e6, 1)}
    for by in ("person", "day", "group"):
        start, cpu = time.perf_counter(), time.process_time()
        build(store, f"{days}d", None, by)
        # CPU time too: on a shared machine the wall time says more about the neighbours than about the report.
        out[f"report_by_{by}_s"] = round(time.perf_counter() - start, 3)
        out[f"report_by_{by}_cpu_s"] = round(time.process_time() - cpu, 3)
    config = workdir / "config.yaml"
    config.write_text(f"state_dir: {workdir / 'state'}\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pangeohub", "--config", str(config), "usage", "report", "--since",
                    f"{days}d", "--format", "json"], check=True, capture_output=True)
    out["cli_report_s"] = round(time.perf_counter() - start, 3)
    out.update(scrape_cost(workdir / "state"))
    return out


def scrape_cost(state: Path, repeat: int = 5) -> dict:
    """What one Prometheus scrape of our metrics and one view of the admin page cost on this record."""
    from pangeohub.config.model import Config
    from pangeohub.usage.metrics import platform_metrics
    from pangeohub.usage.page import render_page

    config = Config.model_validate({"state_dir": str(state), "costs": {"prices": {"core_hour": 0.05}}})
    out = {}
    for name, work in (("scrape", lambda: platform_metrics(config)), ("page", lambda: render_page(config))):
        # The first scrape of the service's life sums the finished hours once (metrics.Totals); later ones
        # add the last two hours to that.
        times = []
        for _ in range(repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            result = work()
            times.append((time.process_time() - cpu, time.perf_counter() - wall))
        steady = times[1:]
        out[f"{name}_first_cpu_s"] = round(times[0][0], 3)
        out[f"{name}_cpu_s"] = round(sum(t[0] for t in steady) / len(steady), 3)
        out[f"{name}_s"] = round(sum(t[1] for t in steady) / len(steady), 3)
        out[f"{name}_kb"] = round(len(result[0] if name == "scrape" else result[1]) / 1000, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--report-only", action="store_true", help="Skip the sampler (no cgroups, no root).")
    args = parser.parse_args()
    print(json.dumps({"load_average": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count()}))
    if not args.report_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps({"sampler": sampler_cost(args.people, args.rounds, Path(tmp))}))
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps({"report": report_cost(args.people, args.days, Path(tmp))}))


if __name__ == "__main__":
    main()
