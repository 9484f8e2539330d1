"""Pieces of a restore: ownership by name, homes, and the object store started on its own."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pangeohub.errors import PangeoError


def id_maps(people: dict[str, dict], users) -> tuple[dict[int, int], dict[int, int]]:
    """Old uid -> new uid and old gid -> new gid, matched by person: uids are whatever this machine gave out."""
    from pangeohub.names import system_name

    uids, gids = {}, {}
    for name, person in people.items():
        try:
            entry = pwd.getpwnam(system_name(name, users.system_prefix))
        except KeyError:
            continue
        uids[person["uid"]] = entry.pw_uid
        gids[person["gid"]] = entry.pw_gid
    return uids, gids


def remap_ownership(root: Path, uids: dict[int, int], gids: dict[int, int]) -> None:
    """Give every file under ``root`` owned by a person's old uid/gid to that person's account here.

    restic restores numeric ids; on a machine where accounts were made in another order, those numbers name
    other people. Files owned by anyone else (root) keep their owner. Links are changed, not followed."""
    def fix(path: str) -> None:
        st = os.lstat(path)
        uid, gid = uids.get(st.st_uid, st.st_uid), gids.get(st.st_gid, st.st_gid)
        if (uid, gid) != (st.st_uid, st.st_gid):
            os.lchown(path, uid, gid)

    if not root.exists():
        return
    fix(str(root))
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            fix(os.path.join(folder, name))


def copy_tree(source: Path, target: Path) -> None:
    """Copy a restored tree's content into ``target`` keeping modes, times, links and (numeric) owners."""
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    proc = subprocess.run(["cp", "-a", f"{source}/.", str(target)], capture_output=True, text=True)
    if proc.returncode:
        raise PangeoError(f"could not put the restored files into {target}: {proc.stderr.strip()}",
                          "make room there (or raise homes.quota) and run the restore again")


def empty_dir(path: Path) -> None:
    import shutil

    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def ready_home(rt, hub_name: str) -> pwd.struct_passwd:
    """``hub_name``'s Linux account and home as a spawn makes them (its quota image mounted, if quotas are on)."""
    from pangeohub.targets.local.homes import ensure_home
    from pangeohub.targets.sysusers import ensure_account

    entry = ensure_account(hub_name, rt.config.users)
    ensure_home(rt.config, entry)
    return entry


@contextmanager
def object_store(rt) -> Iterator[object]:
    """An admin S3 client: of the running store, or of the store started alone for as long as it is needed
    (a restore runs with the platform down, and objects go back in through S3 like everything else)."""
    from pangeohub.services.objectstore import ObjectStoreService
    from pangeohub.storage.admin import admin_client, store_running

    if store_running(rt):
        yield admin_client(rt)
        return
    svc = ObjectStoreService(rt)
    rt.paths.ensure()
    svc.prepare()
    with open(rt.paths.log(svc.name), "ab") as log:
        proc = subprocess.Popen(svc.command(), env=svc.env(), cwd=svc.cwd(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + svc.start_timeout
        while not svc.probe():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PangeoError("the object store did not start for the restore of the buckets",
                                  f"see {rt.paths.log(svc.name)}")
            time.sleep(0.3)
        yield admin_client(rt)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(svc.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
