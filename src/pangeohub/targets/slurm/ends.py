"""Why a person's last server job ended, when Slurm (not the person or the hub) ended it.

A job Slurm ends (its time limit, a node failure, preemption, an admin's ``scancel``) leaves the person with a
stopped server and no word why. The hub writes one small record per person when it finds such an end;
``pangeohub users list`` and ``status`` show it to admins, and the next spawn's progress shows it to the person
(seen only when that spawn is slow enough to show a progress page: JupyterHub answers a fast one directly).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pangeohub.secrets import write_private


def ends_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "run" / "slurm-ends"


def record_end(state_dir: Path, hub_user: str, job_id: str, state: str, reason: str) -> dict:
    entry = {"job_id": job_id, "state": state, "reason": reason, "at": time.time()}
    path = ends_dir(state_dir) / f"{hub_user}.json"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, json.dumps(entry) + "\n")
    return entry


def last_end(state_dir: Path, hub_user: str) -> dict | None:
    try:
        return json.loads((ends_dir(state_dir) / f"{hub_user}.json").read_text())
    except (OSError, ValueError):
        return None


def describe(entry: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry["at"]))
    reason = f" ({entry['reason']})" if entry.get("reason") and entry["reason"] != "None" else ""
    return f"Slurm ended job {entry['job_id']} at {when}: {entry['state']}{reason}"


def mark_shown(state_dir: Path, hub_user: str, entry: dict) -> None:
    """The person has seen it on their spawn page: it stays for admins, but is not shown to them again."""
    write_private(ends_dir(state_dir) / f"{hub_user}.json", json.dumps({**entry, "shown": True}) + "\n")
