"""Shared folders linked into every home, and the quickstart file copied into new homes.

- data (``shared/`` in each home): owned by root and the admin group, setgid; everybody else may only read.
- scratch (``scratch/`` in each home): everybody writes; the sticky bit lets only a file's owner delete or
  rename it.
Accounts are made with umask 077, which would leave files in shared folders readable by nobody else: a
default ACL on both folders overrides the umask there (new files readable by all, writable by their owner
and, in data, by the admin group).
"""

from __future__ import annotations

import grp
import os
import pwd
import struct
import subprocess
from pathlib import Path

from pangeohub.errors import PangeoError

# POSIX ACL xattr layout (linux/posix_acl_xattr.h): a version header, then (tag, perm, id) entries in tag order.
_ACL_VERSION = 2
_USER_OBJ, _GROUP_OBJ, _OTHER = 0x01, 0x04, 0x20
_UNDEFINED_ID = 0xFFFFFFFF


def data_dir(config) -> Path:
    return config.shared.data_dir or config.state_dir / "shared" / "data"


def scratch_dir(config) -> Path:
    return config.shared.scratch_dir or config.state_dir / "shared" / "scratch"


def admin_group(config) -> str:
    return config.shared.admin_group or f"{config.users.system_prefix}admins"


def _default_acl(user: int, group: int, other: int) -> bytes:
    entries = [(_USER_OBJ, user), (_GROUP_OBJ, group), (_OTHER, other)]
    return struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", t, p, _UNDEFINED_ID) for t, p in entries)


def ensure_admin_group(config) -> grp.struct_group:
    name = admin_group(config)
    try:
        return grp.getgrnam(name)
    except KeyError:
        proc = subprocess.run(["groupadd", "--system", name], capture_output=True, text=True)
        if proc.returncode not in (0, 9):  # 9: made meanwhile
            raise PangeoError(f"could not create Linux group {name!r}: {proc.stderr.strip()}",
                              "set shared.admin_group to an existing group") from None
        return grp.getgrnam(name)


def ensure_shared_dirs(config) -> None:
    """Create both folders with their modes and default ACLs (idempotent)."""
    group = ensure_admin_group(config)
    data, scratch = data_dir(config), scratch_dir(config)
    for path in (data, scratch):
        path.mkdir(parents=True, exist_ok=True)
        # Every parent must be traversable by users, or the links in their homes lead nowhere. We do not open
        # up an operator's directories ourselves: say which one and let them decide.
        for parent in path.parents:
            if not os.stat(parent).st_mode & 0o001:
                raise PangeoError(
                    f"users cannot reach the shared folder {path}: {parent} is not searchable by others",
                    f"chmod o+x {parent}, or point shared.data_dir / shared.scratch_dir elsewhere",
                )
    os.chown(data, 0, group.gr_gid)
    data.chmod(0o2775)
    scratch.chmod(0o1777)
    try:
        os.setxattr(data, "system.posix_acl_default", _default_acl(7, 7, 5))
        os.setxattr(scratch, "system.posix_acl_default", _default_acl(7, 5, 5))
    except OSError:
        pass  # a filesystem without ACLs: folders work, files just keep the writer's umask


def join_admin_group(config, account: pwd.struct_passwd, admin: bool) -> None:
    """Hub admins' accounts may write the shared data folder; others are taken out of the group."""
    group = ensure_admin_group(config)
    member = account.pw_name in group.gr_mem
    if admin and not member:
        subprocess.run(["gpasswd", "-a", account.pw_name, group.gr_name], capture_output=True)
    elif not admin and member:
        subprocess.run(["gpasswd", "-d", account.pw_name, group.gr_name], capture_output=True)


def link_into_home(config, account: pwd.struct_passwd, log=None) -> None:
    """Links to both folders in the home, and the quickstart file if the home has none yet.

    A file of the same name the person made themselves is left alone: their data wins over our convenience.
    """
    from pangeohub import privileged

    home = Path(account.pw_dir)
    links = ((config.shared.data_link, data_dir(config)), (config.shared.scratch_link, scratch_dir(config)))
    for name, target in links:
        if name and not privileged.link_in_home(account, name, str(target)) and log:
            log.info("not linking %s: %s already exists in the home", target, home / name)
    homes = config.homes
    if homes.quickstart and homes.quickstart_name and not _given(home):
        privileged.create_file(account, homes.quickstart_name, homes.quickstart.encode())
        _mark_given(home)


# The home directory itself (never a path below it, which its owner could point elsewhere with a symlink)
# remembers that the quickstart was given, in a 'trusted.' attribute only root can read or remove: a person
# who deletes the file does not get it back at every start.
_GIVEN = "trusted.pangeohub.quickstart"


def _given(home: Path) -> bool:
    try:
        os.getxattr(home, _GIVEN, follow_symlinks=False)
        return True
    except OSError:
        return False


def _mark_given(home: Path) -> None:
    try:
        os.setxattr(home, _GIVEN, b"1", follow_symlinks=False)
    except OSError:
        pass  # no xattrs here: the file is offered again only if it was deleted
