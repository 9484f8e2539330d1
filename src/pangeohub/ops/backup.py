"""`pangeohub backup`: a consistent snapshot of a running platform, with no downtime.

What goes in, and how:
- the hub database, the account store and the gateway database: copied with SQLite's online backup API into a
  staging directory (a plain file copy of a live database can be torn mid-transaction);
- the object store's buckets: mirrored through S3 with the admin credentials (see ``backup_objects``);
- the rest of the state dir (secrets, catalog, scratch credentials, shared folders, certificates) and the
  config file, as files;
- every person's home: the files, read at the mounted home, not the loop image under it (an image copied while
  mounted is not a consistent filesystem, and it would be stored whole, not deduplicated by file);
- a manifest naming each person's account, uid and home, so that a restore can give files back to the right
  person on a machine where uids differ.
restic stores all of it as one encrypted, deduplicated snapshot.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pangeohub.errors import PangeoError
from pangeohub.names import is_ours
from pangeohub.ops.restic import HOST, TAG, Repository
from pangeohub.secrets import ensure_secret

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class BackupLayout:
    """Files of the backup machinery under ``<state_dir>/backup`` (0700, root only)."""

    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> "BackupLayout":
        return cls(state_dir / "backup")

    @property
    def stage(self) -> Path:
        """What is made for each backup and stored in it: database copies, the object mirror, the manifest."""
        return self.root / "stage"

    @property
    def databases(self) -> Path:
        return self.stage / "db"

    @property
    def objects(self) -> Path:
        return self.stage / "objects"

    @property
    def manifest(self) -> Path:
        return self.stage / "manifest.json"

    @property
    def cache(self) -> Path:
        """restic's local cache of the repository's index: rebuilt from the repository when lost."""
        return self.root / "cache"


def databases(rt) -> dict[str, Path]:
    """The platform's SQLite databases, by the name their copy has in the backup."""
    return {"jupyterhub.sqlite": rt.paths.hub / "jupyterhub.sqlite", "accounts.sqlite": rt.paths.accounts_db,
            "gateway.sqlite": rt.paths.gateway_db, "usage.sqlite": rt.paths.usage_db,
            "budgets.sqlite": rt.paths.budgets_db}


def repository(rt, location: Path | None, password_file: Path | None = None) -> Repository:
    layout = BackupLayout.under(rt.paths.root)
    layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if password_file is None:
        password_file = rt.paths.secret("backup_password")
        rt.paths.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        ensure_secret(password_file)
    elif not password_file.is_file():
        raise PangeoError(f"--password-file {password_file} does not exist",
                          "give the copy of secrets/backup_password you kept apart from the machine")
    return Repository(location=Path(location or rt.config.backup.destination), password_file=password_file,
                      cache_dir=layout.cache)


def _check_owner(dest: Path, info: os.stat_result) -> None:
    """Backups hold everybody's files and the platform's secrets: a directory somebody else owns or may write
    in could be swapped or read under root's feet."""
    if info.st_uid != 0:
        raise PangeoError(f"the backup destination {dest} belongs to uid {info.st_uid}, not root",
                          f"give it to root (chown root {dest}) or choose a directory of root's")
    if info.st_mode & 0o022:
        raise PangeoError(f"the backup destination {dest} may be written by others (mode {info.st_mode & 0o777:o})",
                          f"chmod go-w {dest} (0700 is best: a backup holds every person's files)")


def ensure_destination(repo: Repository) -> None:
    """A restic repository at the destination: made on first use, in a directory only root can read."""
    dest = repo.location
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PangeoError(f"the backup destination {dest} is not a writable directory ({exc.strerror})",
                          "give a directory (not a link) root can write with --to (or backup.destination), e.g. "
                          "a mounted backup disk") from None
    try:
        _check_owner(dest, os.fstat(fd))
        # The probe is made and removed inside the opened directory: a name swapped for a link meanwhile is
        # never followed (O_EXCL | O_NOFOLLOW).
        name = f".pangeohub-write-test-{os.getpid()}"
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd))
        os.unlink(name, dir_fd=fd)
    except OSError as exc:
        raise PangeoError(f"the backup destination {dest} is not a writable directory ({exc.strerror})",
                          "give a directory root can write with --to (or backup.destination), e.g. a mounted "
                          "backup disk") from None
    finally:
        os.close(fd)
    if repo.exists():
        return
    if any(dest.iterdir()):
        raise PangeoError(f"the backup destination {dest} holds other files and no pangeohub backup",
                          "give an empty directory or one `pangeohub backup` wrote to")
    repo.init()


def people(rt) -> dict[str, dict]:
    """{hub name: account, uid, gid, home} for every Linux account this platform made."""
    prefix = rt.config.users.system_prefix
    found = {}
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix) and is_ours(entry) and entry.pw_uid != 0:
            words = entry.pw_gecos.split(",")[0].split()
            hub_name = words[1] if len(words) > 1 else entry.pw_name.removeprefix(prefix)
            found[hub_name] = {"account": entry.pw_name, "uid": entry.pw_uid, "gid": entry.pw_gid,
                               "home": entry.pw_dir}
    return found


def copy_database(source: Path, target: Path) -> bool:
    """A consistent copy of a live SQLite database (online backup API: readers and writers go on)."""
    if not source.exists():
        return False
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src, \
            closing(sqlite3.connect(tmp)) as dst:
        src.backup(dst, pages=256)  # in steps, so that writers are never held up for the whole copy
    tmp.chmod(0o600)
    os.replace(tmp, target)
    return True


def mount_homes(rt, everyone: dict[str, dict]) -> None:
    """Homes whose image exists but is not mounted (their person has not started a server since `up`) are
    mounted where the platform mounts them, so that their files are read, not an empty directory."""
    from pangeohub.targets.local.homes import ensure_home, image_path

    if not rt.config.homes.quota:
        return
    for person in everyone.values():
        if image_path(rt.config, person["account"]).exists():
            ensure_home(rt.config, pwd.getpwnam(person["account"]))


def trees(rt, everyone: dict[str, dict]) -> dict[str, str]:
    """{label: path} of every directory in the snapshot; a restore puts each label back at its new place."""
    from pangeohub.resources.shared import data_dir, scratch_dir

    state = rt.paths.root
    found = {"state": str(state)}
    for label, path in (("shared-data", data_dir(rt.config)), ("shared-scratch", scratch_dir(rt.config))):
        if state not in path.parents and path.exists():
            found[label] = str(path)
    for name, person in sorted(everyone.items()):
        if Path(person["home"]).is_dir():
            found[f"home:{name}"] = person["home"]
    return found


def excludes(rt) -> list[str]:
    """Parts of the state dir that are not stored as files: live databases (their copies are), the object store's
    volumes (its objects are), home images (their files are), what is rebuilt on start, and Prometheus's series
    (written all the time, and what they hold comes from usage.sqlite, which is in the backup)."""
    from pangeohub.storage.weed import StoreLayout
    from pangeohub.targets.local.homes import images_dir

    root = rt.paths.root
    layout = BackupLayout.under(root)
    found = [str(rt.paths.run), str(StoreLayout.under(root).root), str(images_dir(rt.config)), str(layout.cache),
             str(rt.paths.prometheus / "data")]
    for live in databases(rt).values():
        found += [str(live), f"{live}-wal", f"{live}-shm", f"{live}-journal"]
    return found


def run_backup(rt, location: Path | None, progress: Callable[[str, float, float], None]) -> dict:
    """Make one snapshot; ``progress(phase, done, total)`` is called as it goes. Returns a summary."""
    from pangeohub.ops.backup_objects import mirror_buckets, store_error
    from pangeohub.storage.admin import admin_client, store_running

    started = time.monotonic()
    repo = repository(rt, location)
    ensure_destination(repo)
    layout = BackupLayout.under(rt.paths.root)
    layout.stage.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One backup at a time (a scheduled one and an operator's share the staging directory): the later waits.
    with open(layout.root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _backup_locked(rt, repo, layout, progress, started)


def _backup_locked(rt, repo: Repository, layout: BackupLayout, progress, started: float) -> dict:
    from pangeohub.ops.backup_objects import mirror_buckets, store_error
    from pangeohub.storage.admin import admin_client, store_running


    progress("databases", 0, 0)
    copied = [name for name, live in databases(rt).items() if copy_database(live, layout.databases / name)]
    size = sum((layout.databases / name).stat().st_size for name in copied)
    progress("databases", size, size)

    objects = {"objects": 0, "bytes": 0}
    if rt.config.storage.mode == "embedded":
        if not store_running(rt):
            raise PangeoError("the object store is not running, so its buckets cannot be read for the backup",
                              "start the platform (`pangeohub up`) and back up while it runs")
        skip = set() if rt.config.backup.scratch else {rt.config.storage.scratch.bucket}
        try:
            done = [0]

            def tick(nbytes: int) -> None:
                done[0] += nbytes
                progress("objects", done[0], 0)

            objects = mirror_buckets(admin_client(rt), layout.objects, skip, tick)
        except PangeoError:
            raise
        except Exception as exc:
            raise store_error(exc, "backing up the buckets") from None

    everyone = people(rt)
    mount_homes(rt, everyone)
    where = trees(rt, everyone)
    if rt.config_file and rt.config_file.is_file():
        shutil.copy2(rt.config_file, layout.stage / "config.yaml")
    manifest = {
        "version": MANIFEST_VERSION, "created": time.time(), "trees": where, "people": everyone,
        "databases": copied, "config_file": str(rt.config_file) if rt.config_file else None,
        "scratch_bucket": rt.config.storage.scratch.bucket, "scratch_included": rt.config.backup.scratch,
    }
    layout.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    layout.manifest.chmod(0o600)

    args = ["backup", "--host", HOST, "--tag", TAG]
    for pattern in excludes(rt):
        args += ["--exclude", pattern]

    def on_message(message: dict) -> None:
        if message.get("message_type") == "status":
            progress("files", float(message.get("bytes_done", 0)), float(message.get("total_bytes", 0)))

    summary = repo.stream(*args, *where.values(), what="backing up", on_message=on_message)
    return {"snapshot": summary.get("snapshot_id", "?"), "people": len(everyone), "objects": objects["objects"],
            "bytes": summary.get("total_bytes_processed", 0), "added": summary.get("data_added", 0),
            "seconds": time.monotonic() - started, "repository": str(repo.location)}
