"""``pangeohub usage report``: hourly rows summed by person, group, profile or day (like Slurm's sreport).

Sums are taken over the period, by SQLite (store.aggregate); storage figures are levels, so a row gets the
latest measurement in the period (for a group: the sum of its members' latest). A person in two groups counts
in both group rows, as sreport counts an account's use under each parent.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from pangeohub.errors import PangeoError
from pangeohub.units import parse_duration
from pangeohub.usage.store import HOUR, LEVELS, UsageStore

BY = ("person", "group", "profile", "day")
COLUMNS = ("server_cpu_seconds", "server_memory_gb_hours", "dask_core_hours", "dask_memory_gb_hours",
           "dask_requested_core_hours", "home_bytes", "scratch_bytes", "scratch_objects", "logins",
           "server_starts", "server_hours")


def parse_when(value: str | None, option: str, default: float) -> float:
    """'30d' (that long ago), '2026-11-01' or an ISO time (UTC unless it says otherwise), or None."""
    if value is None:
        return default
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    try:
        return time.time() - parse_duration(text)
    except (ValueError, PangeoError):
        raise PangeoError(f"{option} {value!r} is neither a date nor a duration",
                          "give a date such as 2026-11-01 or a duration back from now such as 30d or 12h") from None


def aggregate(store: UsageStore, since: float, until: float, by: str, people: list[str] | None = None,
              groups: list[str] | None = None) -> list[dict]:
    out = []
    for total in store.aggregate(since, until, by, people, groups):
        out.append({
            by: total["grouping"],
            "people": total["people"],
            "server_cpu_seconds": round(total["server_cpu_seconds"], 3),
            "server_memory_gb_hours": round(total["server_memory_gb_hours"], 6),
            "dask_core_hours": round(total["dask_cpu_seconds"] / HOUR, 6),
            "dask_memory_gb_hours": round(total["dask_memory_gb_hours"], 6),
            "dask_requested_core_hours": round(total["dask_requested_core_hours"], 6),
            "dask_requested_memory_gb_hours": round(total["dask_requested_memory_gb_hours"], 6),
            **{c: int(total[c]) for c in LEVELS},
            "logins": int(total["logins"]),
            "server_starts": int(total["server_starts"]),
            "server_hours": round(total["server_seconds"] / HOUR, 4),
        })
    return out


def active_people(store: UsageStore, now: float) -> dict[str, int]:
    """People with a server running or any CPU used, over the last 24 h, 7 d and 30 d."""
    counts = {}
    for label, span in (("24h", 86400), ("7d", 7 * 86400), ("30d", 30 * 86400)):
        rows = store.aggregate(now - span, now + HOUR, "person")
        counts[label] = sum(1 for r in rows if r["server_seconds"] or r["server_cpu_seconds"] or r["dask_cpu_seconds"])
    return counts


def build(store: UsageStore, since: str | None, until: str | None, by: str,
          people: list[str] | None = None, groups: list[str] | None = None) -> tuple[list[dict], float, float]:
    """(rows, since, until) for the report; the current hour is included as far as it has been sampled."""
    if by not in BY:
        raise PangeoError(f"--by {by!r} is not a grouping", f"use one of: {', '.join(BY)}")
    now = time.time()
    end = parse_when(until, "--until", now + HOUR)
    start = parse_when(since, "--since", now - 30 * 86400)
    if start >= end:
        raise PangeoError(f"--since ({_iso(start)}) is not before --until ({_iso(end)})",
                          "give an earlier --since or a later --until")
    if people:
        unknown = sorted(set(people) - store.people())
        if unknown:
            raise PangeoError(f"no usage recorded for {', '.join(unknown)}",
                              "check the name (`pangeohub users list`); people appear once the sampler sees them")
    if groups:
        unknown = sorted(set(groups) - store.groups())
        if unknown:
            raise PangeoError(f"no usage recorded for group {', '.join(unknown)}",
                              "check the group's name (`pangeohub users groups`)")
    return aggregate(store, start, end, by, people, groups), start, end


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
