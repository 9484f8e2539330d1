"""What use costs (``costs:`` prices applied to report rows) and what a planned event will need
(``pangeohub cost estimate``).

The estimate is built from the figures docs/capacity.md gives from the benchmarks: the platform's fixed
processes, ~0.1 GiB per person for their server and kernel, and 4-8 interactively working people per core;
plus what the chosen profile lets each person hold and the Dask workers they start. Instance prices come from
a dated table in the package (data/cloud_prices.json), never from the network.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.usage.store import HOUR

MONTH_HOURS = 730.0  # 365 * 24 / 12: how cloud providers turn hourly prices into monthly ones
GIB = 1 << 30
# docs/capacity.md: hub ~165 MiB, proxy ~55 MiB, fork server ~150 MiB RSS, object store kept near 200 MB.
FIXED_MEMORY = (165 + 55 + 150 + 200) * (1 << 20)
PLATFORM_PER_PERSON = int(0.1 * GIB)  # a server and one kernel, before their work
PEOPLE_PER_CORE = 6  # interactive teaching: 4-8 active people per core
PRICE_TABLE = Path(__file__).resolve().parent.parent / "data" / "cloud_prices.json"


def core_hours(row: dict) -> float:
    return row["server_cpu_seconds"] / HOUR + row["dask_core_hours"]


def apply_costs(rows: list[dict], costs, period_seconds: float, total_core_hours: float | None = None) -> list[dict]:
    """Add ``cost`` (in ``costs.currency``) to each row. Storage is priced per month of the period; a fixed
    machine cost is shared out by each row's share of the core-hours used (of ``total_core_hours`` when the
    rows are not everybody's, e.g. groups, whose members may overlap)."""
    prices = costs.prices
    months = period_seconds / HOUR / MONTH_HOURS
    if total_core_hours is None:
        total_core_hours = sum(core_hours(r) for r in rows)
    for row in rows:
        cost = (core_hours(row) * prices.core_hour
                + (row["server_memory_gb_hours"] + row["dask_memory_gb_hours"]) * prices.memory_gb_hour
                + row.get("home_bytes", 0) / 1e9 * prices.home_gb_month * months
                + row.get("scratch_bytes", 0) / 1e9 * prices.object_gb_month * months)
        if costs.machine_monthly and total_core_hours > 0:
            cost += costs.machine_monthly * months * core_hours(row) / total_core_hours
        row["cost"] = round(cost, 4)
        row["currency"] = costs.currency
    return rows


def price_table() -> dict:
    return json.loads(PRICE_TABLE.read_text())


def estimate(config, people: int, hours: float, profile_name: str, cluster_workers: int = 0) -> dict:
    """Cores and memory a plan needs, how many of this machine and of each listed instance type hold it, and
    what the instances cost for its duration."""
    if people < 1:
        raise PangeoError(f"--people {people} is not a number of people", "give at least 1, e.g. --people 60")
    if hours <= 0:
        raise PangeoError(f"--hours {hours:g} is not a duration", "give the event's length in hours, e.g. --hours 3")
    if cluster_workers < 0:
        raise PangeoError(f"--cluster-workers {cluster_workers} is negative", "give 0 or more workers per person")
    profiles = {p.name: p for p in config.profiles}
    if profile_name not in profiles:
        raise PangeoError(f"no profile {profile_name!r}", f"use one of the config's profiles: {', '.join(profiles)}")
    profile = profiles[profile_name]
    options = config.gateway.options
    worker_cores, worker_memory = options.worker_cores.default, options.worker_memory.default
    dask_people_cores = 0.0
    dask_memory = 0
    if cluster_workers:
        dask_people_cores = people * (config.gateway.scheduler_cores + cluster_workers * worker_cores)
        dask_memory = people * (config.gateway.scheduler_memory + cluster_workers * worker_memory)
    cores = math.ceil(people / PEOPLE_PER_CORE + dask_people_cores)
    memory = FIXED_MEMORY + people * (PLATFORM_PER_PERSON + profile.memory) + dask_memory
    here_cores = os.cpu_count() or 1
    here_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    table = price_table()
    plan = {
        "people": people, "hours": hours, "profile": profile_name, "cluster_workers": cluster_workers,
        "cores_needed": cores, "memory_needed_gib": round(memory / GIB, 1),
        "assumptions": {
            "people_per_core": PEOPLE_PER_CORE,
            "memory_per_person_gib": round((PLATFORM_PER_PERSON + profile.memory) / GIB, 2),
            "dask_worker": {"cores": worker_cores, "memory_gib": round(worker_memory / GIB, 2)},
            "fixed_platform_memory_gib": round(FIXED_MEMORY / GIB, 2),
        },
        "this_machine": {"cpus": here_cores, "memory_gib": round(here_memory / GIB, 1),
                         "machines": _machines(cores, memory, here_cores, here_memory)},
        "prices_as_of": table["as_of"], "prices_currency": table["currency"], "sources": table["sources"],
        "instances": [],
    }
    if config.costs.machine_monthly:
        n = plan["this_machine"]["machines"]
        plan["this_machine"]["cost"] = round(n * config.costs.machine_monthly / MONTH_HOURS * hours, 2)
        plan["this_machine"]["currency"] = config.costs.currency
    for item in table["instances"]:
        n = _machines(cores, memory, item["cpus"], item["memory_gib"] * GIB)
        plan["instances"].append({**item, "machines": n, "cost": round(n * item["hourly"] * hours, 2)})
    plan["instances"].sort(key=lambda i: (i["cost"], i["name"]))
    return plan


def _machines(cores: float, memory: float, machine_cores: float, machine_memory: float) -> int:
    # The platform's fixed memory is on the first machine only, but counting it on each keeps the figure safe.
    return max(1, math.ceil(cores / machine_cores), math.ceil(memory / machine_memory))
