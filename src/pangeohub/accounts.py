"""Hub accounts: names, argon2 password hashes, admin flag, status and expiry, failed-login counts.

One small SQLite file (0600) shared by the CLI and the hub's authenticator. Passwords never leave this
module in clear; the hub only ever asks ``verify``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pangeohub.errors import PangeoError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    admin INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    created REAL NOT NULL,
    expires REAL,
    email TEXT,
    groups TEXT NOT NULL DEFAULT '[]',
    info TEXT NOT NULL DEFAULT '{}'
);
-- Failed logins per name and client address (pangeohub.auth.throttle decides what they lock).
CREATE TABLE IF NOT EXISTS login_failures (name TEXT NOT NULL, address TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_name ON login_failures (name, address, at);
-- Addresses a name has logged in from: they stay usable when the name is attacked from everywhere else.
CREATE TABLE IF NOT EXISTS login_addresses (name TEXT NOT NULL, address TEXT NOT NULL, at REAL NOT NULL,
                                            PRIMARY KEY (name, address));
DROP TABLE IF EXISTS failed_logins;  -- counted per name only, before addresses were counted
"""

# Cheap enough for a 60-person login burst on 2 cores, still far beyond online guessing. These are OWASP's
# minimum argon2id parameters; a verify costs ~40 ms of CPU here (2.5 s for 60 logins, in the hub's thread pool,
# which argon2 runs in without the GIL). Lowering them would buy little: spawns, not logins, dominate a burst.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the name is unknown, so that timing does not tell whether an account exists.
_DUMMY_HASH = _HASHER.hash("pangeohub-no-such-account")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@dataclass
class Account:
    name: str
    admin: bool = False
    status: str = "active"
    created: float = field(default_factory=time.time)
    expires: float | None = None
    email: str | None = None
    groups: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    def usable(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.status == "active" and (self.expires is None or self.expires > now)


class AccountStore:
    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        fresh = not self.path.exists()
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as conn:
            conn.row_factory = sqlite3.Row
            if fresh:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            yield conn

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, name: str) -> Account | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        return _account(row) if row else None

    def list(self) -> list[Account]:
        with self._db() as db:
            return [_account(r) for r in db.execute("SELECT * FROM accounts ORDER BY name")]

    def admins(self) -> list[str]:
        with self._db() as db:
            return [r["name"] for r in db.execute("SELECT name FROM accounts WHERE admin = 1")]

    # -- writing ---------------------------------------------------------------------------------------
    def add(self, account: Account, password: str | None) -> Account:
        pw_hash = _HASHER.hash(password) if password is not None else None
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO accounts (name, password_hash, admin, status, created, expires, email, groups,"
                    " info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (account.name, pw_hash, int(account.admin), account.status, account.created,
                     account.expires, account.email, json.dumps(account.groups), json.dumps(account.info)),
                )
            except sqlite3.IntegrityError:
                raise PangeoError(
                    f"user {account.name!r} already exists",
                    f"choose another name, or change it with `pangeohub users passwd {account.name}`",
                ) from None
        return account

    def set_password(self, name: str, password: str) -> None:
        self._update(name, password_hash=_HASHER.hash(password))

    def set_admin(self, name: str, admin: bool) -> None:
        self._update(name, admin=int(admin))

    def set_status(self, name: str, status: str) -> None:
        self._update(name, status=status)

    def set_expires(self, name: str, expires: float | None) -> None:
        self._update(name, expires=expires)

    def set_info(self, name: str, info: dict) -> None:
        self._update(name, info=json.dumps(info))

    def set_groups(self, name: str, groups: list[str]) -> None:
        self._update(name, groups=json.dumps(sorted(set(groups))))

    def _update(self, name: str, **values) -> None:
        assignments = ", ".join(f"{key} = ?" for key in values)
        with self._db() as db:
            cur = db.execute(f"UPDATE accounts SET {assignments} WHERE name = ?", (*values.values(), name))
        if cur.rowcount == 0:
            raise PangeoError(f"no user named {name!r}", "see `pangeohub users list`")

    def remove(self, name: str) -> bool:
        with self._db() as db:
            cur = db.execute("DELETE FROM accounts WHERE name = ?", (name,))
            db.execute("DELETE FROM login_failures WHERE name = ?", (name,))
            db.execute("DELETE FROM login_addresses WHERE name = ?", (name,))
        return cur.rowcount > 0

    # -- authentication --------------------------------------------------------------------------------
    def verify(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is right and the account may log in now; None otherwise."""
        with self._db() as db:
            row = db.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
        stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
            ok = row is not None and row["password_hash"] is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            return None
        account = _account(row)
        return account if account.usable() else None

    def record_failure(self, name: str, address: str, window: float) -> None:
        """Note a failed login of ``name`` from ``address``; failures older than ``window`` seconds are dropped."""
        now = time.time()
        with self._db() as db:
            db.execute("DELETE FROM login_failures WHERE at < ?", (now - window,))
            db.execute("INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)", (name, address, now))

    def login_record(self, name: str, address: str, window: float, known_for: float) -> LoginRecord:
        """What the throttle needs to judge a login of ``name`` from ``address`` now."""
        since = time.time() - window
        with self._db() as db:
            mine = [r[0] for r in db.execute(
                "SELECT at FROM login_failures WHERE name = ? AND address = ? AND at >= ?", (name, address, since))]
            total = db.execute("SELECT COUNT(*) FROM login_failures WHERE name = ? AND at >= ?",
                               (name, since)).fetchone()[0]
            known = db.execute("SELECT 1 FROM login_addresses WHERE name = ? AND address = ? AND at >= ?",
                               (name, address, time.time() - known_for)).fetchone() is not None
        return LoginRecord(failures_here=mine, failures_total=total, known_address=known)

    def record_success(self, name: str, address: str) -> None:
        """A login succeeded: this address's failures are forgiven and it becomes known-good for ``name``."""
        with self._db() as db:
            db.execute("DELETE FROM login_failures WHERE name = ? AND address = ?", (name, address))
            db.execute("INSERT OR REPLACE INTO login_addresses (name, address, at) VALUES (?, ?, ?)",
                       (name, address, time.time()))

    def failures(self, name: str, window: float) -> int:
        """Failed logins of ``name`` within ``window`` seconds, from every address."""
        with self._db() as db:
            return db.execute(
                "SELECT COUNT(*) FROM login_failures WHERE name = ? AND at >= ?", (name, time.time() - window)
            ).fetchone()[0]

    def clear_failures(self, name: str) -> None:
        """Lift every lockout of ``name`` (an admin's unlock)."""
        with self._db() as db:
            db.execute("DELETE FROM login_failures WHERE name = ?", (name,))


@dataclass
class LoginRecord:
    failures_here: list[float]  # times of recent failed logins of this name from this address
    failures_total: int  # recent failed logins of this name from every address
    known_address: bool  # this name logged in successfully from this address recently


def _account(row: sqlite3.Row) -> Account:
    return Account(
        name=row["name"], admin=bool(row["admin"]), status=row["status"], created=row["created"],
        expires=row["expires"], email=row["email"], groups=json.loads(row["groups"]), info=json.loads(row["info"]),
    )


# Lowercase letters and digits without look-alikes (0/o, 1/l/i), in dash-separated groups: easy to read
# off a card and type, ~62 bits for the default four groups of four.
_READABLE = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password(groups: int = 4, size: int = 4) -> str:
    import secrets

    return "-".join("".join(secrets.choice(_READABLE) for _ in range(size)) for _ in range(groups))
