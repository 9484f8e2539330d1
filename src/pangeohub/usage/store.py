"""The usage database: one row per person per hour, and the counters' last readings.

Counters (CPU seconds of a cgroup) only grow; the sampler stores each reading and adds the difference to the
current hour, in the same transaction, so a sampler that is killed and restarted neither loses nor repeats an
increment. Figures that are levels, not counters (memory in use, bytes stored), are integrated per sample
over the sample interval only: while nothing samples (the platform is down) nothing is added, and the time is
recorded as a gap instead.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pangeohub.errors import PangeoError

HOUR = 3600

# Columns summed over hours (and people) in a report.
SUMMED = ("server_cpu_seconds", "server_memory_gb_hours", "dask_cpu_seconds", "dask_memory_gb_hours",
          "dask_requested_core_hours", "dask_requested_memory_gb_hours", "logins", "server_starts",
          "server_seconds", "samples")
# Levels: the last measurement of the hour (a report takes the latest in its period).
LEVELS = ("home_bytes", "scratch_bytes", "scratch_objects")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS hourly (
    hour INTEGER NOT NULL,          -- start of the hour, seconds since the epoch (UTC)
    person TEXT NOT NULL,
    {", ".join(f"{c} REAL NOT NULL DEFAULT 0" for c in SUMMED)},
    {", ".join(f"{c} INTEGER" for c in LEVELS)},
    profile TEXT,                   -- the profile of the person's server when last sampled in the hour
    groups TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (hour, person)
);
CREATE INDEX IF NOT EXISTS hourly_person ON hourly (person, hour);
-- The last reading of each monotonic counter, so that only its increase is ever added.
CREATE TABLE IF NOT EXISTS counters (person TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
                                     PRIMARY KEY (person, name));
-- Periods with no sample at all (the platform or the sampler was down): shown, never filled in.
CREATE TABLE IF NOT EXISTS gaps (start REAL NOT NULL, stop REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class PersonSample:
    """What one sample found for one person. Counters are absolute readings; levels are as measured now."""

    person: str
    counters: dict[str, float] = field(default_factory=dict)  # name -> reading; see COUNTER_COLUMNS
    memory_bytes: float = 0.0        # server (everything in the person's cgroup that is not Dask)
    dask_memory_bytes: float = 0.0
    dask_requested_cores: float = 0.0
    dask_requested_memory_bytes: float = 0.0
    server_running: bool = False
    server_started_at: float | None = None  # when the running server started (a new value is a new start)
    last_login: float | None = None          # the latest login seen (a later value is a new login)
    profile: str | None = None
    groups: list[str] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)  # home_bytes, scratch_bytes, scratch_objects


# Which hourly column each counter's increase is added to.
COUNTER_COLUMNS = {"server_cpu": "server_cpu_seconds", "dask_cpu": "dask_cpu_seconds"}


def hour_of(at: float) -> int:
    return int(at // HOUR * HOUR)


class UsageStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _db(self, write: bool = True):
        if not write and not self.path.exists():
            raise PangeoError(f"no usage has been recorded yet: {self.path} does not exist",
                              "start the platform (`pangeohub up`) with usage.enabled true; it samples every minute")
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.row_factory = sqlite3.Row
                if write:
                    db.executescript(SCHEMA)
                with db:
                    yield db
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise PangeoError(
                f"the usage database {self.path} cannot be read: {exc}",
                f"restore it from a backup (`pangeohub restore`), or move it aside (mv {self.path} "
                f"{self.path}.broken) to start a new record; the rest of the platform is not affected",
            ) from exc

    def record(self, samples: list[PersonSample], at: float, interval: float) -> None:
        """Add one sample of everybody, taken at ``at``, ``interval`` seconds after the previous one should
        have been. Levels count for ``interval`` seconds; counters for whatever they grew by."""
        hour = hour_of(at)
        with self._db() as db:
            last = db.execute("SELECT value FROM meta WHERE key = 'last_sample'").fetchone()
            if last is not None and at - float(last[0]) > 2.5 * interval:
                db.execute("INSERT INTO gaps (start, stop) VALUES (?, ?)", (float(last[0]), at))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_sample', ?)", (str(at),))
            for sample in samples:
                self._record_one(db, sample, hour, interval)

    def _record_one(self, db, s: PersonSample, hour: int, interval: float) -> None:
        add = {c: 0.0 for c in SUMMED}
        for name, reading in s.counters.items():
            row = db.execute("SELECT value FROM counters WHERE person = ? AND name = ?", (s.person, name)).fetchone()
            previous = row[0] if row else None
            # A reading below the last one: the cgroup was made anew (the person was released and came back):
            # everything it holds is new use.
            increase = reading if previous is None or reading < previous else reading - previous
            if previous is None:
                increase = 0.0  # the first reading ever: what came before it was not measured by us
            db.execute("INSERT OR REPLACE INTO counters (person, name, value) VALUES (?, ?, ?)",
                       (s.person, name, reading))
            add[COUNTER_COLUMNS[name]] += increase
        gb_hours = interval / HOUR / 1e9
        add["server_memory_gb_hours"] = s.memory_bytes * gb_hours
        add["dask_memory_gb_hours"] = s.dask_memory_bytes * gb_hours
        add["dask_requested_core_hours"] = s.dask_requested_cores * interval / HOUR
        add["dask_requested_memory_gb_hours"] = s.dask_requested_memory_bytes * gb_hours
        add["server_seconds"] = interval if s.server_running else 0.0
        add["server_starts"] = self._newer(db, s.person, "server_started_at", s.server_started_at)
        add["logins"] = self._newer(db, s.person, "last_login", s.last_login)
        add["samples"] = 1
        db.execute("INSERT OR IGNORE INTO hourly (hour, person) VALUES (?, ?)", (hour, s.person))
        sets = ", ".join(f"{c} = {c} + ?" for c in SUMMED)
        levels = {k: v for k, v in s.levels.items() if k in LEVELS}
        extra = "".join(f", {k} = ?" for k in levels)
        db.execute(f"UPDATE hourly SET {sets}{extra}, groups = ?, profile = COALESCE(?, profile) "
                   "WHERE hour = ? AND person = ?",
                   [add[c] for c in SUMMED] + list(levels.values())
                   + [json.dumps(sorted(s.groups)), s.profile, hour, s.person])

    @staticmethod
    def _newer(db, person: str, name: str, value: float | None) -> int:
        """1 when ``value`` (a time) is later than the one last stored under ``name``; it is stored."""
        if value is None:
            return 0
        row = db.execute("SELECT value FROM counters WHERE person = ? AND name = ?", (person, name)).fetchone()
        if row is not None and value <= row[0]:
            return 0
        db.execute("INSERT OR REPLACE INTO counters (person, name, value) VALUES (?, ?, ?)", (person, name, value))
        return 1

    def rows(self, since: float, until: float, people: list[str] | None = None) -> list[dict]:
        """Hourly rows whose hour starts in [hour_of(since), until)."""
        query = "SELECT * FROM hourly WHERE hour >= ? AND hour < ?"
        args: list = [hour_of(since), until]
        if people:
            query += f" AND person IN ({', '.join('?' * len(people))})"
            args += people
        with self._db(write=False) as db:
            out = [dict(row) for row in db.execute(query + " ORDER BY hour, person", args)]
        for row in out:
            row["groups"] = json.loads(row["groups"] or "[]")
        return out

    def aggregate(self, since: float, until: float, by: str, people: list[str] | None = None,
                  groups: list[str] | None = None) -> list[dict]:
        """Sums of the hourly rows in [hour_of(since), until) per key (person, group, profile or day), with
        ``people`` (distinct persons) and each level as the sum of every person's latest measurement under the
        key. Done in SQL: 90 days of 100 people are 216,000 rows."""
        key = {"person": "h.person", "profile": "COALESCE(h.profile, '(no server)')",
               "day": "strftime('%Y-%m-%d', h.hour, 'unixepoch')", "group": "COALESCE(g.value, '(no group)')"}[by]
        source = "hourly h" + (" LEFT JOIN json_each(h.groups) g" if by == "group" else "")
        where = "h.hour >= ? AND h.hour < ?"
        args: list = [hour_of(since), until]
        if people:
            where += f" AND h.person IN ({', '.join('?' * len(people))})"
            args += people
        if groups:
            where += (" AND EXISTS (SELECT 1 FROM json_each(h.groups) m WHERE m.value IN "
                      f"({', '.join('?' * len(groups))}))")
            args += groups
        sums = ", ".join(f"SUM(h.{c}) AS {c}" for c in SUMMED)
        with self._db(write=False) as db:
            # "grouping", not "key": json_each has a column of that name, which GROUP BY would take instead.
            out = {row["grouping"]: dict(row) for row in db.execute(
                f"SELECT {key} AS grouping, COUNT(DISTINCT h.person) AS people, {sums} FROM {source} "
                f"WHERE {where} GROUP BY grouping ORDER BY grouping", args)}
            for level in LEVELS:
                for k, total in db.execute(
                        f"SELECT grouping, SUM(v) FROM (SELECT {key} AS grouping, h.{level} AS v, ROW_NUMBER() OVER "
                        f"(PARTITION BY {key}, h.person ORDER BY h.hour DESC) AS n FROM {source} "
                        f"WHERE {where} AND h.{level} IS NOT NULL) WHERE n = 1 GROUP BY grouping", args):
                    out[k][level] = total
        for row in out.values():
            for level in LEVELS:
                row.setdefault(level, 0)
        return list(out.values())

    def groups(self) -> set[str]:
        with self._db(write=False) as db:
            return {r[0] for r in db.execute("SELECT DISTINCT g.value FROM hourly h, json_each(h.groups) g")}

    def gaps(self, since: float, until: float) -> list[tuple[float, float]]:
        with self._db(write=False) as db:
            return [(r[0], r[1]) for r in db.execute(
                "SELECT start, stop FROM gaps WHERE stop > ? AND start < ? ORDER BY start", (since, until))]

    def last_sample(self) -> float | None:
        """When the sampler last recorded a round (None before the first)."""
        with self._db(write=False) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'last_sample'").fetchone()
        return float(row[0]) if row else None

    def describe_compute(self, text: str) -> None:
        """Say where the compute figures come from (the sampler, as it starts), for the report to show."""
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('compute_source', ?)", (text,))

    def compute_source(self) -> str | None:
        with self._db(write=False) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'compute_source'").fetchone()
            return row[0] if row else None

    def people(self) -> set[str]:
        with self._db(write=False) as db:
            return {r[0] for r in db.execute("SELECT DISTINCT person FROM hourly")}
