"""What every login mode shares, as a mixin placed before the upstream authenticator class.

- Names: hub users become Linux accounts, so a name that is not a safe Linux name (or that is an existing
  system account such as ``daemon``) is refused in every mode, not only in password mode.
- Lockout: failed logins are counted per name in the account store; past the limit the name is refused for
  the rest of the window, whatever the password (upstream authenticators have no such limit).
- Group-based admin: members of ``admin_groups`` (hub group names) are admins; leaving the group takes
  the right away at the next login.
- Uniform refusals: every refusal returns None, so the hub shows the same "Invalid username or password"
  whether the name exists, is pending, expired, locked or simply wrong.
"""

from __future__ import annotations

import asyncio

from traitlets import Float, Integer, Set, Unicode
from traitlets.config import LoggingConfigurable

from pangeohub.accounts import AccountStore
from pangeohub.errors import PangeoError
from pangeohub.names import check_username


class PangeoAuthMixin(LoggingConfigurable):
    accounts_db = Unicode(help="Path of pangeohub's account store (SQLite).").tag(config=True)
    system_prefix = Unicode("jupyter-", help="Prefix of the Linux accounts users run as.").tag(config=True)
    failed_login_limit = Integer(10, help="Failed logins allowed per name within the window.").tag(config=True)
    failed_login_window = Float(900.0, help="Seconds over which failed logins are counted.").tag(config=True)
    pangeo_admin_groups = Set(Unicode(), help="Hub groups whose members are admins.").tag(config=True)

    @property
    def store(self) -> AccountStore:
        return AccountStore(self.accounts_db)

    def validate_username(self, username: str) -> bool:
        try:
            check_username(username, self.system_prefix)
        except PangeoError as exc:
            self.log.warning("Refusing username %r: %s", username, exc.what)
            return False
        return super().validate_username(username)

    async def _in_store(self, method: str, *args):
        return await asyncio.get_running_loop().run_in_executor(None, getattr(self.store, method), *args)

    async def guarded(self, name: str, attempt):
        """Run ``attempt()`` (the check of the password) under the lockout; its result, or None if refused."""
        if not self.validate_username(name):
            return None
        if await self._in_store("failures", name, self.failed_login_window) >= self.failed_login_limit:
            self.log.warning("Login for %r refused: too many failed attempts", name)
            return None
        model = await attempt()
        if not model:
            await self._in_store("record_failure", name, self.failed_login_window)
            self.log.warning("Failed login for %r", name)
            return None
        await self._in_store("clear_failures", name)
        return model

    def admin_from_groups(self, groups, current: bool | None = None) -> bool | None:
        """True/False from group membership when admin groups are configured; else ``current`` unchanged."""
        if current:
            return True
        if not self.pangeo_admin_groups:
            return current
        return bool(set(groups) & self.pangeo_admin_groups)
