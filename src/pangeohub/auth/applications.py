"""Sign-up applications in the account store: rows with status 'pending' until an admin decides.

Shared by the review page (``signup.ReviewHandler``) and `pangeohub users pending | approve | deny`; kept
apart from the hub handlers so that the command line does not import JupyterHub to list them.
"""

from __future__ import annotations

from pangeohub.accounts import Account
from pangeohub.errors import PangeoError


def pending(store) -> list[Account]:
    return [a for a in store.list() if a.status == "pending"]


def approve(store, name: str) -> Account:
    account = store.get(name)
    if account is None or account.status != "pending":
        raise PangeoError(f"no pending application named {name!r}", "see `pangeohub users pending`")
    store.set_status(name, "active")
    account.status = "active"
    return account


def deny(store, name: str, release) -> None:
    """Refuse an application: ``release(name)`` (pangeohub.release.release_account) removes it and anything
    made for the applicant, so that the name is free again and nothing of theirs is kept."""
    account = store.get(name)
    if account is None or account.status != "pending":
        raise PangeoError(f"no pending application named {name!r}", "see `pangeohub users pending`")
    release(name)
