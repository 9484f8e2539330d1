"""Sign-up applications in the account store: rows with status 'pending' until an admin decides.

Shared by the review page (``signup.ReviewHandler``) and `pangeohub users pending | approve | deny`; kept
apart from the hub handlers so that the command line does not import JupyterHub to list them.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from pangeohub.accounts import Account
from pangeohub.errors import PangeoError
from pangeohub.names import system_name


def pending(store) -> list[Account]:
    return [a for a in store.list() if a.status == "pending"]


def existing_home(name: str, system_prefix: str, home_root: Path) -> str | None:
    """What of a former person ``name`` is still on this machine (``users remove --keep-home`` keeps the Linux
    account and the home), or None. A sign-up approved over it would hand their files to a stranger."""
    linux = system_name(name, system_prefix)
    try:
        return f"the Linux account {linux} (home {pwd.getpwnam(linux).pw_dir})"
    except KeyError:
        pass
    home = Path(home_root) / linux
    return f"the home {home}" if os.path.lexists(home) else None


def approve(store, name: str, kept: str | None = None) -> Account:
    """Make ``name``'s application an account; refused when ``kept`` (see ``existing_home``) names what a
    former person of that name left behind."""
    account = store.get(name)
    if account is None or account.status != "pending":
        raise PangeoError(f"no pending application named {name!r}", "see `pangeohub users pending`")
    if kept:
        raise PangeoError(
            f"approving {name!r} would hand over an existing home: {kept} is still there from a former person",
            f"deny the application (`pangeohub users deny {name}`); if it is that same person, "
            f"`pangeohub users add {name}` gives them their home back",
        )
    store.set_status(name, "active")
    account.status = "active"
    return account


def deny(store, name: str, release, kept: str | None = None) -> None:
    """Refuse an application: ``release(name)`` (pangeohub.release.release_account) removes it and anything
    made for the applicant, so that the name is free again and nothing of theirs is kept. When ``kept`` names
    a former person's account or home, only the application goes: what is kept is not the applicant's."""
    account = store.get(name)
    if account is None or account.status != "pending":
        raise PangeoError(f"no pending application named {name!r}", "see `pangeohub users pending`")
    if kept:
        store.remove(name)
        return
    release(name)
