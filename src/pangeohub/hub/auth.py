"""PangeoAuthenticator: password logins against pangeohub's account store (argon2 hashes).

Failed logins are counted per name; past ``failed_login_limit`` within the window the name is locked for the
rest of the window. Every refusal looks the same to the person logging in, so that nobody can learn whether
an account exists, is pending or has expired.
"""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from traitlets import Float, Integer, Unicode

from pangeohub.accounts import AccountStore
from pangeohub.errors import PangeoError
from pangeohub.names import check_username


class PangeoAuthenticator(Authenticator):
    accounts_db = Unicode(help="Path of pangeohub's account store (SQLite).").tag(config=True)
    system_prefix = Unicode("jupyter-", help="Prefix of the Linux accounts users run as.").tag(config=True)
    failed_login_limit = Integer(10, help="Failed logins allowed per name within the window.").tag(config=True)
    failed_login_window = Float(900.0, help="Seconds over which failed logins are counted.").tag(config=True)

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

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        password = data.get("password", "")
        if not self.validate_username(name):
            return None
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(None, self.store.failures, name, self.failed_login_window) >= (
            self.failed_login_limit
        ):
            self.log.warning("Login for %r refused: too many failed attempts", name)
            return None
        account = await loop.run_in_executor(None, self.store.verify, name, password)
        if account is None:
            await loop.run_in_executor(None, self.store.record_failure, name, self.failed_login_window)
            self.log.warning("Failed login for %r", name)
            return None
        await loop.run_in_executor(None, self.store.clear_failures, name)
        return {"name": name, "admin": account.admin or None}

    def check_allowed(self, username, authentication=None):
        account = self.store.get(username)
        return account is not None and account.usable()
