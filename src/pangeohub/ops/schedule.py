"""Scheduled backups: a background job of the supervisor (``pangeohub backup schedule``).

The next backup is due ``backup.schedule`` after the newest snapshot in the repository, so a platform that was
down at the due time backs up soon after it comes back, and restarting it does not add a backup.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable

from pangeohub.errors import PangeoError

RETRY = 600.0  # after a failed backup (destination unmounted...), try again this much later


def _last(repo) -> float:
    if not repo.exists():
        return 0.0
    snapshots = repo.snapshots()
    if not snapshots:
        return 0.0
    newest = max(s.time for s in snapshots)
    return datetime.fromisoformat(newest[:26].rstrip("Z") + "+00:00").timestamp()


def run_schedule(rt, backup: Callable[[], dict], repository: Callable[[], object], echo=print,
                 sleep=time.sleep) -> None:
    every = rt.config.backup.schedule
    try:
        due = _last(repository()) + every
    except PangeoError as exc:
        echo(f"backup schedule: {exc}")
        due = 0.0
    while True:
        wait = due - time.time()
        if wait > 0:
            sleep(min(wait, 60.0))
            continue
        try:
            summary = backup()
            echo(f"scheduled backup: snapshot {summary['snapshot']} in {summary['seconds']:.1f}s")
            repository().forget(rt.config.backup.keep)
            due = time.time() + every
        except PangeoError as exc:
            echo(f"scheduled backup failed: {exc}")
            due = time.time() + min(every, RETRY)
