"""Root's file work inside paths people control: their homes, the shared folders, their scratch folders.

Below the targets, beside ``secrets`` (root's own private files): every target that makes homes on a filesystem
of this platform's (local, and Slurm with platform accounts), the shared folders and the quickstart use it.

Every operation root performs below such a path goes through this module, and each is done one of two ways:

- through file descriptors that never follow a link: the home is opened with ``O_NOFOLLOW | O_DIRECTORY``
  and checked to be the person's; everything below it is reached with ``dir_fd=`` calls (``openat``,
  ``mkdirat``, ``symlinkat``, ``fchownat(AT_SYMLINK_NOFOLLOW)``), ownership and modes are set with
  ``fchown``/``fchmod`` on what was opened, and new files are made with ``O_EXCL``. A name the person swaps for
  a link between two steps is then refused, never followed (OpenSSH, systemd's ``chase()``, coreutils' ``rm``);
- or in a child process that has become the person (groups, gid, uid) before it touches anything: copying a
  whole tree back (restore) cannot be done safely by descriptors alone, and as the person a planted link can
  only lead where the person could write anyway.

Nothing here ``chown``s, ``chmod``s, copies into or makes a directory under a home by name as root.
"""

from __future__ import annotations

import os
import pickle
import pwd
import shutil
import stat
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator

from pangeohub.errors import PangeoError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextmanager
def opened_home(account: pwd.struct_passwd) -> Iterator[int]:
    """The person's home as a descriptor: refused unless it is a real directory owned by them (or by root, for a
    home being made), so that no later step can be pointed elsewhere through it."""
    try:
        fd = os.open(account.pw_dir, DIR_FLAGS)
    except OSError as exc:
        raise PangeoError(f"cannot open the home of {account.pw_name} ({account.pw_dir}): {exc.strerror}",
                          "check that it is a directory and not a link") from None
    try:
        owner = os.fstat(fd).st_uid
        if owner not in (account.pw_uid, 0):
            raise PangeoError(f"the home of {account.pw_name} ({account.pw_dir}) belongs to uid {owner}",
                              "give it back to its person (or remove it) before they start again")
        yield fd
    finally:
        os.close(fd)


def make_home_private(account: pwd.struct_passwd) -> None:
    """The home belongs to its person, mode 0700 (set on the opened directory, never by name)."""
    with opened_home(account) as home:
        os.fchown(home, account.pw_uid, account.pw_gid)
        os.fchmod(home, 0o700)


def private_dir(account: pwd.struct_passwd, *parts: str) -> str | None:
    """``<home>/<parts...>`` as a directory of the person, mode 0700, made where missing.

    Each part is opened without following links; one that is a link, or not the person's directory, stops the
    walk and nothing is made or changed (None is returned: the person pointed it elsewhere themselves, and
    whatever runs as them may use it as they wish). Returns the path on success."""
    with opened_home(account) as home:
        fd = os.dup(home)
        try:
            for part in parts:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                    made = True
                except FileExistsError:
                    made = False
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError:
                    return None  # a link, a file: the person's choice, left alone
                os.close(fd)
                fd = child
                info = os.fstat(fd)
                if made and info.st_uid == 0:
                    os.fchown(fd, account.pw_uid, account.pw_gid)
                elif info.st_uid != account.pw_uid:
                    return None  # somebody else's directory: never adopt it
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
    return os.path.join(account.pw_dir, *parts)


def link_in_home(account: pwd.struct_passwd, name: str, target: str) -> bool:
    """A symlink ``<home>/<name> -> target`` owned by the person, unless something is already at that name
    (their file wins). Returns whether the link is there (made now or before)."""
    with opened_home(account) as home:
        try:
            if os.readlink(name, dir_fd=home) == target:
                return True
        except OSError:
            pass
        try:
            os.symlink(target, name, dir_fd=home)
        except FileExistsError:
            return False
        os.chown(name, account.pw_uid, account.pw_gid, dir_fd=home, follow_symlinks=False)
        return True


def create_file(account: pwd.struct_passwd, name: str, data: bytes, mode: int = 0o644) -> bool:
    """A new file ``<home>/<name>`` of the person holding ``data``; nothing is done if the name is taken (by a
    file, a directory or a link: ``O_EXCL | O_NOFOLLOW`` never opens what is there). Returns whether it wrote."""
    with opened_home(account) as home:
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=home)
        except FileExistsError:
            return False
        try:
            os.fchown(fd, account.pw_uid, account.pw_gid)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return True


def run_as(account: pwd.struct_passwd, func: Callable, *args):
    """Run ``func(*args)`` in a child that has become the person (their groups, gid, uid, umask 077) and return
    its result; an exception in the child is raised here as a PangeoError with its message. Descriptors root
    opened before the call are the child's too (reached there as ``/proc/self/fd/N``): that is how it gets
    at a root-only directory without being given a path to it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_end)
            os.setgroups(os.getgrouplist(account.pw_name, account.pw_gid))
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            os.umask(0o077)
            outcome = ("ok", func(*args))
        except BaseException as exc:  # noqa: BLE001 (everything goes back to the parent)
            outcome = ("error", f"{exc}" or type(exc).__name__, traceback.format_exc(limit=3))
            code = 1
        try:
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe)
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        outcome = pickle.loads(data)
    except Exception:  # noqa: BLE001 (the child died before it could answer)
        raise PangeoError(f"a file operation as {account.pw_name} ended without an answer") from None
    if outcome[0] == "error":
        raise PangeoError(f"as {account.pw_name}: {outcome[1]}")
    return outcome[1]


def replace_home_content(account: pwd.struct_passwd, source: str) -> int:
    """Make the home hold exactly the tree at ``source`` (a restored copy in a root-only staging directory):
    what is in the home goes, the copy's content comes in. Both are done as the person, so a link they plant
    (even while this runs) can only lead where they could write anyway; the person's quota applies. The
    staging directory is handed to the child as an open descriptor, so the person never gets a path to it.
    Returns how many entries were copied. Their processes must be ended first (nothing may write meanwhile)."""
    src = os.open(source, DIR_FLAGS)
    try:
        with opened_home(account) as home:
            os.fchown(home, account.pw_uid, account.pw_gid)
            os.fchmod(home, 0o700)
            return run_as(account, _replace_tree, src, home)
    finally:
        os.close(src)


def move_covered_home(account: pwd.struct_passwd, covered: int) -> int:
    """Move what is in ``covered`` (the home directory opened before the person's filesystem was mounted over
    it, so still the directory underneath) into the home as it is now mounted, as the person: names already in
    the mounted home are kept (no overwrite), and the covered directory is left empty. Returns how many entries
    moved. No mount of the image anywhere else is needed, so none can leak into a mount namespace another
    process creates meanwhile (a staging mount in /tmp did, under a burst of new people: its removal then
    failed with EBUSY and the spawn with it)."""
    with opened_home(account) as home:
        if os.fstat(home).st_uid != account.pw_uid:
            raise PangeoError(f"the mounted home of {account.pw_name} is not theirs: nothing was moved")
        return run_as(account, _move_tree, covered, home)


def _empty(dir_fd: int) -> None:
    for entry in os.scandir(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.name, dir_fd=dir_fd)
        else:
            os.unlink(entry.name, dir_fd=dir_fd)


def _copy_entries(src_fd: int, dst_fd: int, overwrite: bool) -> int:
    # As the person. /proc/self/fd/N reaches the opened directories without a path through root's directories.
    count = 0
    for entry in os.scandir(f"/proc/self/fd/{src_fd}"):
        target = f"/proc/self/fd/{dst_fd}/{entry.name}"
        if not overwrite and os.path.lexists(target):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, target, symlinks=True)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry.path), entry.name, dir_fd=dst_fd)
        elif stat.S_ISREG(entry.stat(follow_symlinks=False).st_mode):
            shutil.copy2(entry.path, target, follow_symlinks=False)
        else:
            continue  # sockets, fifos, devices: nothing a home needs
        count += 1
    return count


def _replace_tree(src_fd: int, home_fd: int) -> int:
    _empty(home_fd)
    return _copy_entries(src_fd, home_fd, overwrite=True)


def _move_tree(home_fd: int, dst_fd: int) -> int:
    count = _copy_entries(home_fd, dst_fd, overwrite=False)
    _empty(home_fd)
    return count
