"""Hub usernames and the Linux accounts they map onto.

Hub user ``alice`` runs as Linux account ``<prefix>alice``. A name is refused when it is not a valid Linux
name, when it is itself an existing system account (``root``, ``daemon``: somebody trying to look like one),
or when its mapped account exists but was not made by pangeohub (we would otherwise spawn as a stranger's uid).
"""

from __future__ import annotations

import grp
import pwd

from pangeohub.config.model import LINUX_NAME_MAX, LINUX_NAME_RE
from pangeohub.errors import PangeoError

# The GECOS field marks accounts we created; only those may be reused for a hub user.
GECOS_MARK = "pangeohub"


def system_name(hub_name: str, prefix: str) -> str:
    return f"{prefix}{hub_name}"


def is_ours(entry: pwd.struct_passwd) -> bool:
    return entry.pw_gecos.split(",")[0].startswith(GECOS_MARK)


def uses_site_accounts(config) -> bool:
    """People run as a site's existing accounts (a Slurm cluster's), by their own name: none is made here."""
    return config.target.kind == "slurm" and config.target.slurm.accounts == "site"


def check_username(name: str, prefix: str, site_accounts: bool = False) -> str:
    """Return ``name`` if it may be a hub user, else raise a PangeoError saying why and what to do.

    With ``site_accounts`` a hub user is the site's account of the same name: it must exist and be a person's
    (uid 1000 or more). Otherwise the platform makes ``prefix + name``, and no account outside the platform's
    may have either name."""
    if not LINUX_NAME_RE.match(name or ""):
        raise PangeoError(
            f"username {name!r} is not allowed: use lowercase letters, digits, '-' and '_', "
            "starting with a letter",
            "pick a name like 'alice' or 'j_smith'",
        )
    if site_accounts:
        site_account(name)
        return name
    mapped = system_name(name, prefix)
    if len(mapped) > LINUX_NAME_MAX:
        raise PangeoError(
            f"username {name!r} is too long: its Linux account {mapped!r} would have {len(mapped)} "
            f"characters, the limit is {LINUX_NAME_MAX}",
            "pick a shorter name",
        )
    for candidate in {name, mapped}:
        try:
            entry = pwd.getpwnam(candidate)
        except KeyError:
            continue
        if not is_ours(entry):
            raise PangeoError(
                f"username {name!r} is not allowed: {candidate!r} is an existing system account "
                f"(uid {entry.pw_uid}) not managed by pangeohub",
                "pick another name",
            )
    _check_group(name, mapped)
    return name


def _check_group(name: str, mapped: str) -> None:
    """Each account gets a group of its own name (useradd --user-group), so a group that already has that name
    and is not the account's own (the platform's ``<prefix>admins``, a site's group) rules the name out."""
    try:
        group = grp.getgrnam(mapped)
    except KeyError:
        return
    try:
        own = pwd.getpwnam(mapped).pw_gid == group.gr_gid
    except KeyError:
        own = False
    if not own:
        raise PangeoError(
            f"username {name!r} is not allowed: its Linux account {mapped!r} would clash with the existing "
            f"group {mapped!r} (gid {group.gr_gid})",
            "pick another name",
        )


# Accounts below this uid are the system's (Debian's UID_MIN): never a person a job may run as.
FIRST_PERSON_UID = 1000


def site_account(name: str) -> pwd.struct_passwd:
    """A site's existing account for hub user ``name``: it must exist (nothing is created) and be a person's."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PangeoError(f"there is no account {name!r} on this cluster",
                          "site accounts are not created by pangeohub: ask the site to create it, or log in "
                          "with your cluster username") from None
    if entry.pw_uid < FIRST_PERSON_UID:
        raise PangeoError(f"{name!r} is a system account (uid {entry.pw_uid}): jobs never run as one",
                          "log in with a person's account")
    return entry
