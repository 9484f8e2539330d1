"""Pieces of a restore: ownership by name, homes, and the object store started on its own."""

from __future__ import annotations

import os
import pwd
import shutil
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


def put_home_back(rt, hub_name: str, source: Path) -> pwd.struct_passwd:
    """Make ``hub_name``'s home hold exactly the restored tree at ``source`` (in the root-only restore dir).

    Every process of the person is ended first, so that nothing of theirs writes meanwhile; the home is then
    emptied and filled as the person (``pangeohub.privileged``): a link they planted, even one a
    process of theirs planted while this ran, leads nowhere they could not write themselves."""
    from pangeohub import privileged
    from pangeohub.targets.sysusers import end_processes

    entry = rt.target.ready_home(hub_name)
    end_processes(entry.pw_uid, entry.pw_name)
    if not source.is_dir():  # nothing of theirs in the snapshot: an empty home
        source = source.parent / f".empty-{hub_name}"
        source.mkdir(mode=0o700, exist_ok=True)
    try:
        privileged.replace_home_content(entry, str(source))
    except PangeoError as exc:
        raise PangeoError(f"could not put {hub_name}'s restored files into {entry.pw_dir}: {exc.what}",
                          "make room there (or raise homes.quota) and run the restore again") from None
    return entry


def put_shared_back(source: Path, target: Path) -> Path | None:
    """A shared folder from the restored tree, swapped in whole: people write in shared folders, so root never
    copies into one that exists. What was there is moved aside (returned) and the restored copy takes its place
    by rename (or, across filesystems, is copied into a new directory nobody else can have touched yet)."""
    aside = None
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # made empty by this restore's own state dir setup: nothing to keep
    elif target.exists() or target.is_symlink():
        aside = target.with_name(f"{target.name}.before-restore-{int(time.time())}")
        os.rename(target, aside)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
    except OSError:
        shutil.copytree(source, target, symlinks=True)
    return aside


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
