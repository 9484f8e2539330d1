"""`pangeohub restore`: a snapshot back onto a fresh machine or state dir, or one person back alone.

A full restore runs with the platform down: it puts the state dir back (databases from their consistent copies),
makes every person's Linux account again (whatever uid this machine gives it), puts each home's files back owned
by that person, and the buckets' objects back through S3. ``--user`` restores one person's home and scratch
objects as they were in the snapshot, with the platform running or not, and touches nobody else's data.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from pangeohub.errors import PangeoError
from pangeohub.ops.backup import BackupLayout, databases, repository
from pangeohub.ops.restic import Repository, Snapshot
from pangeohub.ops.restore_parts import id_maps, object_store, put_home_back, put_shared_back, remap_ownership


def open_source(rt, source: Path | None, password_file: Path | None) -> Repository:
    location = Path(source or rt.config.backup.destination)
    if not location.is_dir():
        raise PangeoError(f"the backup source {location} does not exist",
                          "give the directory `pangeohub backup --to` wrote to with --from (is its disk mounted?)")
    if password_file is None:
        password_file = rt.paths.secret("backup_password")
        if not password_file.is_file():
            raise PangeoError(f"no backup password: {password_file} does not exist on this machine",
                              "give the copy of secrets/backup_password you kept with --password-file")
    return repository(rt, location, password_file)


def _manifest(tmp: Path, snapshot: Snapshot) -> tuple[dict, Path]:
    """The snapshot's manifest and the state dir it was taken from (restored under ``tmp``)."""
    for path in snapshot.paths:
        candidate = BackupLayout.under(tmp / path.lstrip("/")).manifest
        if candidate.is_file():
            return json.loads(candidate.read_text()), Path(path)
    raise PangeoError(f"snapshot {snapshot.short_id} is not a pangeohub backup (it has no manifest)",
                      "choose a snapshot from `pangeohub backup list`")


def _scratch_tmp(rt) -> Path:
    tmp = rt.paths.root.parent / f".{rt.paths.root.name}.restore-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700, parents=True)
    return tmp


def restore_all(rt, repo: Repository, snapshot_id: str | None, step: Callable[[str], None]) -> dict:
    from pangeohub.services import supervisor

    if supervisor.supervisor_pid(rt) is not None:
        raise PangeoError("the platform is running; a full restore replaces all of its state",
                          "stop it first with `pangeohub down` (or restore one person with --user NAME)")
    taken = [p for p in (rt.paths.accounts_db, *databases(rt).values()) if p.exists()]
    if taken:
        raise PangeoError(f"{rt.paths.root} already holds a platform ({taken[0].name})",
                          "restore onto a fresh state dir: move this one aside first (or use --user NAME)")
    snapshot = repo.snapshot(snapshot_id)
    tmp = _scratch_tmp(rt)
    try:
        step(f"reading snapshot {snapshot.short_id} from {repo.location}")
        repo.restore(snapshot, tmp)
        manifest, old_state = _manifest(tmp, snapshot)
        trees = {label: tmp / path.lstrip("/") for label, path in manifest["trees"].items()}

        people = manifest["people"]
        step(f"making {len(people)} accounts")
        from pangeohub.targets.sysusers import ensure_account

        for name in sorted(people):
            ensure_account(name, rt.config.users)
        # Owners are changed in the restored copy, before anything joins files already here: a file this machine
        # made (a home's skeleton) may carry a number that was someone else's uid in the backup.
        uids, gids = id_maps(people, rt.config.users)
        remap_ownership(tmp, uids, gids)

        step("putting the state dir back")
        state = rt.paths.root
        state.mkdir(parents=True, exist_ok=True)
        for child in trees["state"].iterdir():
            target = state / child.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
            shutil.move(str(child), str(target))
        stage = BackupLayout.under(state)
        for name, live in databases(rt).items():
            copy = stage.databases / name
            if copy.exists():
                live.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                for suffix in ("-wal", "-shm"):  # a write-ahead log left here would be replayed onto the copy
                    live.with_name(live.name + suffix).unlink(missing_ok=True)
                shutil.copy2(copy, live)
                live.chmod(0o600)
        _forget_servers(databases(rt)["jupyterhub.sqlite"])
        rt.paths.ensure()
        _shared_trees(rt, trees, step)

        step("putting the homes back")
        for name in sorted(people):
            put_home_back(rt, name, trees.get(f"home:{name}", tmp / "-"))

        objects = 0
        if rt.config.storage.mode == "embedded" and stage.objects.is_dir():
            step("putting the buckets' objects back")
            from pangeohub.ops.backup_objects import upload_tree

            with object_store(rt) as client:
                for bucket in sorted(p for p in stage.objects.iterdir() if p.is_dir()):
                    objects += upload_tree(client, bucket, bucket.name)
        return {"snapshot": snapshot.short_id, "time": snapshot.time, "people": len(people), "objects": objects,
                "old_state": str(old_state)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _forget_servers(hub_db: Path) -> None:
    """The servers that ran when the backup was made do not run here: the hub must not take a process that happens
    to have an old server's pid on this machine for that server. Every server starts stopped after a restore."""
    import sqlite3
    from contextlib import closing

    if not hub_db.exists():
        return
    with closing(sqlite3.connect(hub_db)) as db:
        try:
            db.execute("UPDATE spawners SET server_id = NULL, state = '{}', started = NULL")
            db.execute("DELETE FROM servers")
            db.commit()
        except sqlite3.OperationalError:  # a database of a JupyterHub without these tables: nothing ran
            pass


def _shared_trees(rt, trees: dict[str, Path], step: Callable[[str], None]) -> None:
    """Shared folders kept outside the state dir go back where this machine's config puts them."""
    from pangeohub.resources.shared import data_dir, scratch_dir

    for label, target in (("shared-data", data_dir(rt.config)), ("shared-scratch", scratch_dir(rt.config))):
        if label in trees:
            aside = put_shared_back(trees[label], target)
            if aside is not None:
                step(f"kept what was in {target} as {aside}")


def restore_user(rt, repo: Repository, snapshot_id: str | None, name: str, step: Callable[[str], None]) -> dict:
    snapshot = repo.snapshot(snapshot_id)
    tmp = _scratch_tmp(rt)
    try:
        step(f"reading {name}'s files from snapshot {snapshot.short_id}")
        repo.restore(snapshot, tmp, [str(BackupLayout.under(Path(p)).manifest) for p in snapshot.paths])
        manifest, old_state = _manifest(tmp, snapshot)
        people = manifest["people"]
        if name not in people:
            known = ", ".join(sorted(people)[:8]) + (" ..." if len(people) > 8 else "")
            raise PangeoError(f"--user {name!r}: nobody of that name is in snapshot {snapshot.short_id}",
                              f"give one of: {known or '(nobody)'}")
        bucket = manifest.get("scratch_bucket", rt.config.storage.scratch.bucket)
        old_home = people[name]["home"]
        old_objects = BackupLayout.under(old_state).objects / bucket / name
        repo.restore(snapshot, tmp, [old_home, str(old_objects)])

        from pangeohub.services import supervisor

        if supervisor.supervisor_pid(rt) is not None:
            step(f"stopping {name}'s server, so that nothing writes the old files back")
            from pangeohub.hubapi import HubAPI

            HubAPI(rt).stop_server(name)
        step(f"putting {name}'s home back")
        rt.target.ready_home(name)  # the account exists before the copy's owners are matched to it
        uids, gids = id_maps(people, rt.config.users)
        remap_ownership(tmp, uids, gids)  # in the restored copy only (see restore_all)
        put_home_back(rt, name, tmp / old_home.lstrip("/"))

        objects = 0
        if rt.config.storage.mode == "embedded" and manifest.get("scratch_included", True):
            step(f"putting {name}'s scratch objects back")
            from pangeohub.ops.backup_objects import clear_prefix, upload_tree

            with object_store(rt) as client:
                clear_prefix(client, bucket, f"{name}/")
                objects = upload_tree(client, tmp / str(old_objects.parent).lstrip("/"), bucket, name)
        return {"snapshot": snapshot.short_id, "time": snapshot.time, "user": name, "objects": objects}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
