"""Dask clusters running now, from the gateway's own records (read-only), with what each has cost so far.

dask-gateway-server exposes no metrics of its own (0.x has no /metrics or /api/v1 metrics endpoint), so the
metrics endpoint and the admin page read its database, as the sampler does for requested sizes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from pangeohub.usage.store import HOUR

ACTIVE = (1, 2, 3)  # dask-gateway JobStatus CREATED, SUBMITTED, RUNNING: resources are held


def running_clusters(gateway_db: Path, now: float | None = None) -> list[dict]:
    """One dict per active cluster: name, person, started (epoch s), workers, cores, memory_bytes held now."""
    if not Path(gateway_db).exists():
        return []
    now = time.time() if now is None else now
    out = []
    with closing(sqlite3.connect(f"file:{gateway_db}?mode=ro", uri=True, timeout=10)) as db:
        rows = db.execute("SELECT id, name, username, config, start_time FROM clusters WHERE status IN (1, 2, 3) "
                          "ORDER BY start_time").fetchall()
        for cluster_id, name, person, config_text, start_ms in rows:
            config = json.loads(config_text or "{}")
            workers = db.execute("SELECT COUNT(*) FROM workers WHERE cluster_id = ? AND status IN (1, 2, 3)",
                                 (cluster_id,)).fetchone()[0]
            out.append({
                "name": name, "person": person,
                "started": start_ms / 1000 if start_ms else now,  # the gateway keeps milliseconds
                "workers": workers,
                "cores": config.get("scheduler_cores", 1) + workers * config.get("worker_cores", 1),
                "memory_bytes": config.get("scheduler_memory", 0) + workers * config.get("worker_memory", 0),
            })
    return out


def cost_so_far(cluster: dict, costs, now: float | None = None) -> float:
    """What the cluster has cost at its current size since it started (the gateway keeps no size history;
    the hourly record has the measured figures per person)."""
    now = time.time() if now is None else now
    hours = max(now - cluster["started"], 0) / HOUR
    prices = costs.prices
    return round(hours * (cluster["cores"] * prices.core_hour + cluster["memory_bytes"] / 1e9 * prices.memory_gb_hour), 4)
