"""Workshop accounts: many password accounts at once, a sheet of cards to hand out, and ending them.

Passwords are generated readable (no look-alike characters), stored only as argon2 hashes; the clear
passwords exist once, in the CSV and HTML sheet written 0600 for the organiser to print.
"""

from __future__ import annotations

import csv
import html
import io
import re
import time
from datetime import datetime
from pathlib import Path

from pangeohub.accounts import Account, AccountStore, generate_password
from pangeohub.errors import PangeoError
from pangeohub.names import check_username
from pangeohub.secrets import write_private
from pangeohub.units import parse_duration

MAX_COUNT = 1000


def parse_expiry(value: str, now: float | None = None, option: str = "--expires") -> float:
    """'2026-12-01', '2026-12-01T18:00' (local time) or a duration from now ('8h', '3d'); never in the past,
    which would make accounts that are over before anyone uses them."""
    now = time.time() if now is None else now
    try:
        when = datetime.fromisoformat(value).timestamp()
    except ValueError:
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError, KeyError):
            seconds = -1
        if seconds <= 0:
            raise PangeoError(
                f"{option} {value!r} is neither a date nor a duration",
                "give a date like 2026-12-01 or 2026-12-01T18:00, or a duration from now like 8h or 3d",
            ) from None
        when = now + seconds
    if when <= now:
        raise PangeoError(f"{option} {value!r} is in the past", "give a later date, or a duration from now like 3d")
    return when


def next_names(store: AccountStore, prefix: str, count: int, system_prefix: str) -> list[str]:
    if not 1 <= count <= MAX_COUNT:
        raise PangeoError(f"--count {count} is out of range: 1 to {MAX_COUNT}", "generate in several batches")
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    taken = [int(m.group(1)) for a in store.list() if (m := pattern.match(a.name))]
    start = max(taken, default=0) + 1
    width = max(2, len(str(start + count - 1)))
    names = [f"{prefix}{n:0{width}d}" for n in range(start, start + count)]
    for name in (names[0], names[-1]):
        check_username(name, system_prefix)  # a bad --prefix fails before any account is made
    return names


def generate(store: AccountStore, names: list[str], expires: float | None, groups: list[str]) -> list[dict]:
    rows = []
    for name in names:
        password = generate_password()
        store.add(Account(name=name, expires=expires, groups=list(groups), info={"workshop": True}), password)
        rows.append({"username": name, "password": password})
    return rows


def write_sheets(out_dir: Path, rows: list[dict], hub_url: str, expires: float | None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(expires)) if expires else ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["username", "password", "hub_url", "expires"])
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "hub_url": hub_url, "expires": until})
    csv_path = out_dir / f"accounts-{stamp}.csv"
    html_path = out_dir / f"accounts-{stamp}.html"
    write_private(csv_path, buf.getvalue())
    write_private(html_path, _sheet(rows, hub_url, until))
    return csv_path, html_path


def _sheet(rows: list[dict], hub_url: str, until: str) -> str:
    e = html.escape
    cards = "\n".join(
        f'<div class="card"><div class="url">{e(hub_url)}</div>'
        f'<div><span>username</span> <b class="username">{e(r["username"])}</b></div>'
        f'<div><span>password</span> <b class="password">{e(r["password"])}</b></div>'
        + (f'<div class="until">valid until {e(until)}</div>' if until else "") + "</div>"
        for r in rows
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Workshop accounts</title>
<style>
body {{ font-family: sans-serif; margin: 1cm; }}
.card {{ display: inline-block; width: 8.5cm; margin: 0.2cm; padding: 0.4cm; border: 1px dashed #888;
        break-inside: avoid; font-size: 11pt; }}
.card b {{ font-family: monospace; font-size: 13pt; }}
.card span {{ display: inline-block; width: 2.2cm; color: #555; }}
.url {{ font-weight: bold; margin-bottom: 0.2cm; word-break: break-all; }}
.until {{ color: #555; font-size: 9pt; margin-top: 0.2cm; }}
</style></head><body>
{cards}
</body></html>
"""


def select(store: AccountStore, prefix: str | None, names: list[str]) -> list[Account]:
    accounts = store.list()
    chosen = [a for a in accounts if (prefix and a.name.startswith(prefix)) or a.name in names]
    missing = set(names) - {a.name for a in accounts}
    if missing:
        raise PangeoError(f"no user named {sorted(missing)[0]!r}", "see `pangeohub users list`")
    return chosen


def end(store: AccountStore, accounts: list[Account], now: float | None = None) -> list[str]:
    """Set the expiry of ``accounts`` to now (those already expired keep their date)."""
    now = time.time() if now is None else now
    ended = []
    for account in accounts:
        if account.expires is None or account.expires > now:
            store.set_expires(account.name, now)
        ended.append(account.name)
    return ended


def extend(store: AccountStore, accounts: list[Account], until: float | None) -> list[str]:
    """Give ``accounts`` a new end (None: no end), expired ones included: they can log in again."""
    for account in accounts:
        store.set_expires(account.name, until)
    return [a.name for a in accounts]


def expired(store: AccountStore, now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    return [a.name for a in store.list() if a.expires is not None and a.expires <= now]


ENDED_KEY = "ended_at"  # in an account's info: when everything of it was last ended (pangeohub.auth.ending)


def not_yet_ended(store: AccountStore, now: float | None = None) -> list[str]:
    """Expired accounts whose sessions, tokens and processes have not been ended since they expired."""
    now = time.time() if now is None else now
    return [a.name for a in store.list()
            if a.expires is not None and a.expires <= now and a.info.get(ENDED_KEY, 0) < a.expires]


def mark_ended(store: AccountStore, name: str, now: float | None = None) -> None:
    account = store.get(name)
    if account is not None:
        store.set_info(name, {**account.info, ENDED_KEY: time.time() if now is None else now})
