"""First-start steps that need no running service."""

from __future__ import annotations

from pangeohub.accounts import Account, AccountStore, generate_password
from pangeohub.secrets import write_private

INITIAL_ADMIN = "admin"


def ensure_initial_admin(rt) -> tuple[str, str] | None:
    """Make an 'admin' account with a random password when nobody could administer the hub otherwise.

    Returns (name, password) when it made one, so that ``up`` can print it once; None otherwise.
    """
    store = AccountStore(rt.paths.accounts_db)
    if rt.config.hub.admin_users or store.admins():
        return None
    password = generate_password()
    store.add(Account(name=INITIAL_ADMIN, admin=True), password)
    # Also kept root-only on disk, for an operator who started with --detach and lost the terminal output.
    write_private(rt.paths.secret("initial-admin-password"), password + "\n")
    return INITIAL_ADMIN, password


def default_admin(rt) -> str:
    from pangeohub.errors import PangeoError

    admins = list(rt.config.hub.admin_users) or AccountStore(rt.paths.accounts_db).admins()
    if not admins:
        raise PangeoError("there is no admin user yet", "add one: pangeohub users add NAME --admin")
    return sorted(admins)[0]
