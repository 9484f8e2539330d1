"""What an interrupted run left behind, found and released when the platform starts.

A ``pangeohub check`` or ``loadtest`` that is killed never removes its temporary people; a removal that is
interrupted half way (a killed command, a killed supervisor) can leave a home image mounted, an image file or
a Jupyter runtime dir whose account is gone. Linux hands a removed account's uid to the next account it
makes, so such a leftover would give the next new person someone else's files and a second quota.

Only what the platform itself made is considered: removals it began (``pangeohub.release`` marks each until it
is complete) and temporary accounts (marked so in the account store by check and loadtest) whose process is
gone, both finished through ``release_account``; mounts of images of its own images dir, and runtime dirs
named ``<prefix>*`` in its state dir, whose account is gone. Whether an account exists is read from
``/etc/passwd`` itself, where ``useradd`` put it, never through the name service: a directory (LDAP) that does
not answer must not make anybody look removed. If that file cannot be read, nothing is released.

``pangeohub up`` runs ``clean`` before any service starts and records what it released in
``run/cleaned.json``, which ``pangeohub status`` shows.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from pangeohub.targets.base import Leftover

PASSWD = Path("/etc/passwd")


def local_accounts(passwd: Path | None = None) -> set[str] | None:
    """Names of the accounts in ``passwd``; None when it cannot be read (then nobody may look removed)."""
    try:
        lines = (passwd or PASSWD).read_text().splitlines()
    except OSError:
        return None
    names = {line.split(":", 1)[0] for line in lines if line and not line.startswith("#") and ":" in line}
    return names or None


def temporary_owner(pid: int | None = None) -> dict:
    """What check and loadtest store with their temporary accounts: which process will remove them."""
    import psutil

    proc = psutil.Process(pid or os.getpid())
    return {"pid": proc.pid, "pid_started": proc.create_time()}


def _owner_alive(info: dict) -> bool:
    import psutil

    try:
        proc = psutil.Process(int(info["pid"]))
        return abs(proc.create_time() - float(info["pid_started"])) < 0.01
    except (KeyError, TypeError, ValueError, psutil.Error):
        return False


def find(rt) -> list[Leftover]:
    from pangeohub.accounts import AccountStore

    config = rt.config
    prefix = config.users.system_prefix
    accounts = local_accounts()
    if accounts is None:
        return []
    found: list[Leftover] = []
    from pangeohub.release import read_marker, releasing_marker

    markers = releasing_marker(config, prefix + "x").parent
    unfinished = set()
    if markers.is_dir():
        for marker in sorted(markers.glob(f"{prefix}*")):
            name, keep_home = read_marker(marker) or (marker.name[len(prefix):], True)  # unreadable: keep
            unfinished.add(marker.name)
            found.append(Leftover("unfinished removal", name, keep_home=keep_home))
    if rt.paths.accounts_db.exists():
        for account in AccountStore(rt.paths.accounts_db).list():
            if (account.info.get("temporary") and not _owner_alive(account.info)
                    and prefix + account.name not in unfinished):
                found.append(Leftover("temporary account", account.name))
    # Their image, mount and runtime dir go with the unfinished removal; what else the target finds is its own.
    found += rt.target.leftovers(rt, accounts, unfinished)
    return found


def clean(rt, log=print) -> dict:
    """Release every leftover; write and return the report ``pangeohub status`` shows."""
    from pangeohub.release import release_account

    released, problems, hub_users = [], [], []
    for item in find(rt):
        if item.kind in ("temporary account", "unfinished removal"):
            # Everything of theirs, through the same function as `users remove`; the hub is not running yet,
            # so their hub user is removed once it is (services.hub).
            result = release_account(rt, item.name, keep_home=item.keep_home)
            problems += result.problems
            hub_users.append(item.name)
        else:
            rt.target.release_leftover(rt, item)
        released.append(asdict(item))
        log(f"  released {item.describe()}")
    report = {"at": time.time(), "released": released, "problems": problems, "hub_users": hub_users}
    from pangeohub.secrets import write_private

    write_private(report_file(rt), json.dumps(report, indent=2) + "\n", mode=0o644)
    return report


def report_file(rt) -> Path:
    return rt.paths.run / "cleaned.json"


def last_report(rt) -> dict | None:
    try:
        return json.loads(report_file(rt).read_text())
    except (OSError, ValueError):
        return None


def forget_hub_users(rt) -> list[str]:
    """The hub users of the temporary accounts released at this start, handed out once (services.hub)."""
    report = last_report(rt)
    if not report or not report.get("hub_users"):
        return []
    names, report["hub_users"] = report["hub_users"], []
    from pangeohub.secrets import write_private

    write_private(report_file(rt), json.dumps(report, indent=2) + "\n", mode=0o644)
    return names
