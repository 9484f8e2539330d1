"""Budgets set with ``pangeohub users budget``: SQLite in the state dir, beside the usage record, in backups.

An override replaces whatever the config gives the same person or group (``budgets.people``,
``budgets.default``, ``budgets.groups``); clearing it brings the config's budget back.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

from pangeohub.config.budgets import Budget
from pangeohub.errors import PangeoError

SCHEMA = """
CREATE TABLE IF NOT EXISTS overrides (
    kind TEXT NOT NULL CHECK (kind IN ('person', 'group')),
    name TEXT NOT NULL,
    unit TEXT NOT NULL CHECK (unit IN ('core_hours', 'money')),
    amount REAL NOT NULL CHECK (amount >= 0),
    set_at REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
"""


class OverrideStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _db(self):
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.executescript(SCHEMA)
                with db:
                    yield db
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise PangeoError(f"the budgets database {self.path} cannot be read: {exc}",
                              "restore it from a backup (`pangeohub restore`), or move it aside to drop every "
                              "budget set with `pangeohub users budget`") from exc

    def set(self, kind: str, name: str, budget: Budget) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO overrides (kind, name, unit, amount, set_at) VALUES (?, ?, ?, ?, ?)",
                       (kind, name, budget.unit, budget.amount, time.time()))
        self.path.chmod(0o600)

    def clear(self, kind: str, name: str) -> bool:
        """Drop the override; False when there was none."""
        if not self.path.exists():
            return False
        with self._db() as db:
            return db.execute("DELETE FROM overrides WHERE kind = ? AND name = ?", (kind, name)).rowcount > 0

    def all(self) -> dict[tuple[str, str], Budget]:
        """Every override, by (kind, name); empty before the first one is set."""
        if not self.path.exists():
            return {}
        with self._db() as db:
            rows = db.execute("SELECT kind, name, unit, amount FROM overrides").fetchall()
        return {(kind, name): Budget(**{unit: amount}) for kind, name, unit, amount in rows}
