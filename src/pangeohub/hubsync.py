"""The accounts the platform holds itself are hub users at once, with their admin flag and groups.

The account store (password, workshop and sign-up accounts) is the authority for its accounts; JupyterHub
only learns of a person from ``authenticate()`` at their first login, so without this an installer's admin is
no hub admin until they log in through the web, and a workshop's accounts are missing from the admin panel.

Two halves, each through JupyterHub's own surfaces:
- in the hub, the password authenticators' ``add_user`` hook (which JupyterHub calls for every hub user at
  each start and for each user it creates) gives the hub user the store's admin flag and groups
  (pangeohub.hub.auth); groups can only be set there, as ``manage_groups`` closes the groups API.
- from outside, ``sync_hub_users`` creates through the REST API every store account the hub lacks, and sets
  the admin flag where it differs. It runs once the hub is ready at each start (JupyterHub's own start-up
  resets the admin role to exactly ``admin_users`` when that list is set), and the CLI calls it after each
  change it makes while the hub runs (``users add | generate | approve | admin``).

Only in the modes where people log in with the store's passwords (password, signup). Directory people (LDAP,
GitHub) are not in the store: their admin flag and groups follow their directory at their next login, as
before.
"""

from __future__ import annotations

from pangeohub.accounts import Account, AccountStore


def expected_admin(config, account: Account) -> bool:
    """Admin in the hub: marked admin in the store, named in ``hub.admin_users``, or in ``auth.admin_groups``."""
    return bool(account.admin or account.name in config.hub.admin_users
                or set(account.groups) & set(config.auth.admin_groups))


# Where people log in with the store's passwords. In the directory modes (and the shared-password demo) a
# store account is not how anybody logs in: making, say, the installer's "admin" a hub admin there would hand
# the admin right to whoever logs in under that name through the directory, or with the shared password.
STORE_MODES = ("password", "signup")


def hub_accounts(rt, names: list[str] | None = None) -> list[Account]:
    """Store accounts that are hub users (a sign-up waiting for review is not one yet)."""
    if rt.config.auth.mode not in STORE_MODES:
        return []
    wanted = set(names) if names is not None else None
    return [a for a in AccountStore(rt.paths.accounts_db).list()
            if a.status != "pending" and (wanted is None or a.name in wanted)]


def sync_hub_users(rt, api=None, names: list[str] | None = None, forget: list[str] = ()) -> dict:
    """Make the hub agree with the store for ``names`` (default: every account); remove the hub users named in
    ``forget`` (temporary accounts released while the hub was down). Returns {"created", "admin", "removed"}."""
    from pangeohub.hubapi import HubAPI

    api = api or HubAPI(rt)
    accounts = hub_accounts(rt, names)
    present = {u["name"]: u for u in api.users()}
    missing = [a.name for a in accounts if a.name not in present]
    for start in range(0, len(missing), 100):
        # One request per hundred; the hub's add_user hook gives each the store's admin flag and groups.
        api.request("POST", "/users", {"usernames": missing[start:start + 100]})
    if missing:
        present.update({u["name"]: u for u in api.users()})
    changed = []
    for account in accounts:
        admin = expected_admin(rt.config, account)
        if account.name in present and bool(present[account.name].get("admin")) != admin:
            api.ensure_user(account.name, admin=admin)
            changed.append(account.name)
    removed = [name for name in forget if api.delete_user(name)]
    return {"created": missing, "admin": changed, "removed": removed}
