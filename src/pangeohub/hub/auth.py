"""PangeoAuthenticator: password logins against pangeohub's account store (argon2 hashes).

Failed logins are counted per name and client address; past ``failed_login_limit`` within the window that
address is refused for the name, with back-off (``pangeohub.auth.throttle``). Every refusal looks the same to the person logging in, so that nobody can learn whether
an account exists, is pending or has expired. An account's groups (``users add --group``) become hub groups;
members of ``auth.admin_groups`` are admins.

Expiry and approval are checked at every login, again before every spawn (an admin or an old token cannot
start the server of an expired or pending account) and when the hub refreshes a session (``refresh_user``),
so that an expired person is logged out within ``auth_refresh_age``.

The store is the authority for its accounts in the hub too: ``add_user`` (JupyterHub calls it for every hub
user at each start and for each user it creates) gives the hub user the store's admin flag and groups at
once, not only at their next login (see pangeohub.hubsync).
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado import web

from pangeohub.auth.common import PangeoAuthMixin


class PangeoAuthenticator(PangeoAuthMixin, Authenticator):
    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")

        account = await self.guarded(name, handler=handler, check=lambda: self.store.verify(name, password))
        if account is None:
            return None
        return {
            "name": name,
            "admin": self.admin_from_groups(account.groups, account.admin or name in self.admin_users or None),
            "groups": list(account.groups),
        }

    async def add_user(self, user):
        super().add_user(user)
        account = await self._in_store("get", user.name)
        if account is not None and account.status != "pending":
            self._apply_account(user, account)

    def _apply_account(self, user, account) -> None:
        """Set the hub user's admin flag and groups from the account. At start JupyterHub passes the ORM row,
        later its User wrapper: both are written through the row's own database session."""
        from jupyterhub import orm, roles
        from sqlalchemy.orm import object_session

        row = getattr(user, "orm_user", user)
        db = object_session(row)
        if db is None:
            return
        row.admin = bool(self.admin_from_groups(account.groups, account.admin or user.name in self.admin_users))
        roles.assign_default_roles(db, entity=row)  # grants, or strips, the admin role to match the flag
        wanted = set(account.groups)
        if {g.name for g in row.groups} != wanted:
            groups = db.query(orm.Group).filter(orm.Group.name.in_(wanted)).all() if wanted else []
            for name in wanted - {g.name for g in groups}:
                group = orm.Group(name=name)
                db.add(group)
                groups.append(group)
            row.groups = groups
        db.commit()

    def check_allowed(self, username, authentication=None):
        account = self.store.get(username)
        return account is not None and account.usable()

    async def refresh_user(self, user, handler=None):
        account = await self._in_store("get", user.name)
        if account is not None and not account.usable():
            # Ended between the expiry service's rounds: ended everywhere now (tokens included, which
            # JupyterHub would otherwise keep honouring).
            from pangeohub.auth.sessions import end_in_hub

            await end_in_hub(self, user)
            return False
        return True

    async def pre_spawn_start(self, user, spawner):
        account = await self._in_store("get", user.name)
        if account is not None and not account.usable():
            # Same words whatever the reason: expired and pending accounts are not told apart.
            raise web.HTTPError(403, f"The account {user.name} cannot start a server.")
