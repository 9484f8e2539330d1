"""Upgrading a running platform in place, and going back to the previous version when the upgrade fails.

The order is chosen so that everything that can refuse the new version does so while the old one still serves:

1. keep the current install for a rollback (``<prefix>.previous``: hard links, so it takes seconds and no space;
   pip and npm replace files rather than writing into them; ``node/`` is copied outright all the same);
2. install the new version into the prefix, as a fresh install would;
3. ask the new version whether it accepts the config (``pangeohub migrate --dry-run``), and which files a
   migration changes;
4. back up the running platform (``pangeohub backup``, to ``backup.destination`` or ``--backup-to``);
5. stop the platform's services, leaving people's servers running (``pangeohub.installer.running``);
6. copy the databases (SQLite's online backup) and the config file aside;
7. migrate (``pangeohub migrate``: config names, hub database, account store);
8. start the new version; it takes the running servers back;
9. check that every service is healthy.

A failure in 2-4 puts the previous install back; nothing else was touched and the platform never stopped. A
failure in 5-9 also stops what the new version started (leaving the servers), puts the databases and the config
file back, and starts the previous version again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from pangeohub.installer.running import stop_keeping_servers, supervisor_pid

KEEP_SNAPSHOTS = 3  # copies of the databases and config kept under <state_dir>/upgrade after upgrades


class UpgradeFailed(Exception):
    """An upgrade that stopped; the message says at which step, why, and in which state it left the platform."""


class Upgrade:
    def __init__(self, prefix: Path, config: str | None, log=print, backup: bool = True,
                 backup_to: str | None = None):
        self.prefix = prefix
        self.previous = prefix.with_name(prefix.name + ".previous")
        self.config = config
        self.log = log
        self.backup = backup
        self.backup_to = backup_to
        self.plan: dict = {}
        self.snapshot: Path | None = None

    # -- running the installed pangeohub ---------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        argv = [str(self.prefix / "bin" / "pangeohub")] + (["--config", self.config] if self.config else [])
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def checked(self, what: str, *args: str) -> str:
        proc = self.cli(*args)
        if proc.returncode:
            said = (proc.stderr.strip() or proc.stdout.strip()).removeprefix("error: ")
            raise UpgradeFailed(f"{what}: {said}")
        return proc.stdout

    def step(self, title: str, func):
        began = time.monotonic()
        self.log(f"==> {title} ...")
        outcome = func()
        self.log(f"    {outcome or 'done'} ({time.monotonic() - began:.1f}s)")
        return outcome

    # -- the upgrade -----------------------------------------------------------------------------------------
    def run(self, install) -> None:
        """``install()`` runs the installer's steps into the prefix (raising SystemExit on failure)."""
        try:
            self.step("keep the current install for a rollback", self.keep_install)
        except (OSError, subprocess.CalledProcessError) as exc:
            shutil.rmtree(self.previous, ignore_errors=True)
            raise UpgradeFailed(f"could not copy the current install to {self.previous} ({exc}); nothing was "
                                "changed (is the disk full?)") from None
        try:
            install()
            self.step("check that this version accepts the config", self.check_config)
            if self.backup:
                self.step("back up the running platform", self.take_backup)
            else:
                self.log("==> backup skipped (--no-backup)")
        except (Exception, SystemExit) as exc:  # the installer's steps end with SystemExit when they fail
            self.restore_install()
            raise UpgradeFailed(f"{_reason(exc)}\nNothing was changed: the previous install is back in place and "
                                "the platform kept running throughout.") from None
        run_dir = Path(self.plan["run_dir"])
        try:
            self.step("stop the platform's services (people's servers keep running)",
                      lambda: stop_keeping_servers(run_dir, log=self.log))
            self.step("copy the databases and the config file aside", self.save_state)
            self.step("migrate the config file and the databases", self.migrate)
            self.step("start the new version", self.start)
            self.step("check the platform's health", self.health)
        except Exception as exc:
            self.rollback(run_dir, exc)
        shutil.rmtree(self.previous, ignore_errors=True)

    def keep_install(self) -> str:
        shutil.rmtree(self.previous, ignore_errors=True)
        subprocess.run(["cp", "-al", str(self.prefix), str(self.previous)], check=True)
        node = self.previous / "node"
        if node.exists():  # npm may write into a file it replaces: a real copy, not a link to the same file
            shutil.rmtree(node)
            subprocess.run(["cp", "-a", str(self.prefix / "node"), str(node)], check=True)
        return f"{self.previous}"

    def restore_install(self) -> None:
        if not self.previous.exists():
            return
        failed = self.prefix.with_name(self.prefix.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        os.rename(self.prefix, failed)
        os.rename(self.previous, self.prefix)
        shutil.rmtree(failed, ignore_errors=True)
        self.log(f"    the previous install is back in {self.prefix}")

    def check_config(self) -> str:
        self.plan = json.loads(self.checked("this version refuses the config", "migrate", "--dry-run", "--json"))
        renames = self.plan["config_renames"]
        return f"accepted; {len(renames)} option(s) to rename" if renames else "accepted"

    def take_backup(self) -> str:
        where = ["--to", self.backup_to] if self.backup_to else []
        out = self.checked("the backup failed (another place: --backup-to DIR; none: --no-backup)", "backup", *where)
        return out.strip().splitlines()[-1] if out.strip() else "done"

    def save_state(self) -> str:
        root = Path(self.plan["state_dir"]) / "upgrade"
        root.mkdir(mode=0o700, exist_ok=True)
        self.snapshot = root / time.strftime("%Y%m%d-%H%M%S")
        self.snapshot.mkdir(mode=0o700)
        for name, path in self.plan["databases"].items():
            if Path(path).exists():
                _sqlite_copy(Path(path), self.snapshot / name)
        if self.plan["config_file"]:
            shutil.copy2(self.plan["config_file"], self.snapshot / "config.yaml")
        for old in sorted(p for p in root.iterdir() if p.is_dir())[:-KEEP_SNAPSHOTS]:
            shutil.rmtree(old, ignore_errors=True)
        return str(self.snapshot)

    def migrate(self) -> str:
        out = self.checked("the migration failed", "migrate")
        for line in out.splitlines():
            self.log(f"    {line}")
        return "done"

    def start(self) -> str:
        out = self.checked("the new version did not start", "up", "--detach", "--upgrade")
        return out.strip().splitlines()[-1]

    def health(self) -> str:
        proc = self.cli("status", "--json", timeout=120)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            raise UpgradeFailed(f"`pangeohub status` did not answer: {proc.stderr.strip()}") from None
        sick = [name for name, svc in report["services"].items() if not svc["healthy"]]
        if not report["healthy"]:
            raise UpgradeFailed(f"not healthy after the start: {', '.join(sick) or 'the supervisor'}")
        return f"every service healthy at {report['url']}"

    # -- going back --------------------------------------------------------------------------------------
    def rollback(self, run_dir: Path, exc: BaseException) -> None:
        self.log(f"==> the upgrade failed: {_reason(exc)}")
        self.log("==> rolling back to the previous version")
        if supervisor_pid(run_dir) is not None:  # the new version runs, unhealthy: stopped, servers kept
            stop_keeping_servers(run_dir, log=self.log)
        if self.snapshot is not None:
            for name, path in self.plan["databases"].items():
                if (self.snapshot / name).exists():
                    _sqlite_copy(self.snapshot / name, Path(path))
            if (self.snapshot / "config.yaml").exists():
                shutil.copy2(self.snapshot / "config.yaml", self.plan["config_file"])
            self.log(f"    databases and config file put back from {self.snapshot}")
        self.restore_install()
        proc = self.cli("up", "--detach")
        if proc.returncode:
            raise UpgradeFailed(
                f"{_reason(exc)}\nThe rollback restored the previous install, databases and config, but the "
                f"previous version did not start either: {proc.stderr.strip() or proc.stdout.strip()}\n"
                f"The copies are in {self.snapshot}, and the backup taken first has everything.") from None
        raise UpgradeFailed(f"{_reason(exc)}\nRolled back: the previous version runs again, with the databases "
                            "and config file as they were before the upgrade (people's servers kept running).")


def _sqlite_copy(source: Path, dest: Path) -> None:
    """A consistent copy of a SQLite database (its online backup API), written 0600 and then moved in place."""
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600))
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
    os.chmod(partial, source.stat().st_mode & 0o777)
    os.replace(partial, dest)
    for suffix in ("-wal", "-shm"):  # a journal of the database replaced would be replayed onto it
        dest.with_name(dest.name + suffix).unlink(missing_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return str(exc.code).removeprefix("error: ")
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"`{' '.join(map(str, exc.cmd))}` did not finish within {exc.timeout:.0f}s"
    return str(exc)
