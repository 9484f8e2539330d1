"""restic, the tool that stores backups: encrypted, deduplicated, incremental snapshots in a repository.

This module only runs it and turns its failures into one clear line each. The repository password is a secret
of the platform (``<state_dir>/secrets/backup_password``, 0600); a restore onto a fresh machine is given a copy
of it, since the state dir it lived in is what was lost.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pangeohub.errors import PangeoError

# Every snapshot is made under this host name, so that a backup taken on a rebuilt machine (another hostname)
# still finds the previous snapshot as its parent and reads only what changed.
HOST = "pangeohub"
TAG = "pangeohub"


def restic_bin() -> str:
    found = shutil.which("restic")
    if not found:
        raise PangeoError("restic, which stores pangeohub's backups, is not installed",
                          "run the installer again (sudo python3 install.py) or `apt-get install restic`")
    return found


@dataclass
class Snapshot:
    id: str
    short_id: str
    time: str
    paths: list[str]


@dataclass
class Repository:
    location: Path
    password_file: Path
    cache_dir: Path

    def _argv(self, *args: str) -> list[str]:
        return [restic_bin(), "--repo", str(self.location), "--password-file", str(self.password_file),
                "--cache-dir", str(self.cache_dir), *args]

    def _env(self) -> dict[str, str]:
        # restic reads RESTIC_* from the environment: an operator's own settings must not redirect ours.
        return {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")} | {"RESTIC_PROGRESS_FPS": "4"}

    def run(self, *args: str, what: str) -> str:
        proc = subprocess.run(self._argv(*args), capture_output=True, text=True, env=self._env())
        if proc.returncode:
            raise self.failure(proc.stderr, what)
        return proc.stdout

    def stream(self, *args: str, what: str, on_message: Callable[[dict], None]) -> dict:
        """Run a ``--json`` command, calling ``on_message`` with each status line; returns its summary."""
        proc = subprocess.Popen(self._argv(*args, "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self._env())
        summary: dict = {}
        for message in _json_lines(proc.stdout):
            if message.get("message_type") == "summary":
                summary = message
            on_message(message)
        stderr = proc.stderr.read()
        if proc.wait():
            raise self.failure(stderr, what)
        return summary

    def failure(self, stderr: str, what: str) -> PangeoError:
        fatal = [line.removeprefix("Fatal: ") for line in stderr.splitlines() if line.startswith("Fatal:")]
        reason = fatal[0] if fatal else (stderr.strip().splitlines() or ["restic failed"])[-1]
        if "wrong password" in reason:
            return PangeoError(f"{what}: the password in {self.password_file} does not open the backup repository "
                               f"{self.location}",
                               "give the password file that belongs to this repository with --password-file "
                               "(a copy of <state_dir>/secrets/backup_password from the machine that made it)")
        if "unable to open config file" in reason or "Is there a repository" in stderr:
            return PangeoError(f"{what}: {self.location} is not a pangeohub backup (no restic repository there)",
                               "give the directory `pangeohub backup --to` wrote to, e.g. --from /var/backups/pangeohub")
        return PangeoError(f"{what}: restic failed on {self.location}: {reason}",
                           f"check the repository with `restic --repo {self.location} check`; if it is damaged, "
                           "restore from another copy of it")

    # -- commands --------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.location / "config").is_file()

    def init(self) -> None:
        self.run("init", what="creating the backup repository")

    def snapshots(self) -> list[Snapshot]:
        raw = json.loads(self.run("snapshots", "--json", "--tag", TAG, what="listing backups") or "[]")
        return [Snapshot(id=s["id"], short_id=s["short_id"], time=s["time"], paths=s.get("paths", [])) for s in raw]

    def snapshot(self, wanted: str | None) -> Snapshot:
        """The snapshot whose id starts with ``wanted`` (the newest if None)."""
        found = self.snapshots()
        if not found:
            raise PangeoError(f"the backup repository {self.location} holds no snapshot yet",
                              "make one with `pangeohub backup`")
        if wanted is None:
            return max(found, key=lambda s: s.time)
        matches = [s for s in found if s.id.startswith(wanted.lower())]
        if len(matches) != 1:
            known = ", ".join(s.short_id for s in sorted(found, key=lambda s: s.time)[-5:])
            problem = "matches more than one" if matches else "is not a snapshot"
            raise PangeoError(f"--snapshot {wanted!r} {problem} in {self.location}",
                              f"choose one from `pangeohub backup list` (latest: {known})")
        return matches[0]

    def size(self, snapshot: Snapshot) -> int:
        raw = json.loads(self.run("stats", "--json", snapshot.id, what="measuring a backup"))
        return int(raw.get("total_size", 0))

    def forget(self, keep: int) -> None:
        self.run("forget", "--tag", TAG, "--keep-last", str(keep), "--prune", what="forgetting old backups")

    def restore(self, snapshot: Snapshot, target: Path, includes: list[str] | None = None) -> None:
        args = ["restore", snapshot.id, "--target", str(target)]
        for path in includes or []:
            args += ["--include", path]
        self.run(*args, what=f"restoring snapshot {snapshot.short_id}")


def _json_lines(stream) -> Iterator[dict]:
    for line in stream:
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue
