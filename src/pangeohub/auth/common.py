"""What every login mode shares, as a mixin placed before the upstream authenticator class.

- Names: hub users become Linux accounts, so a name that is not a safe Linux name (or that is an existing
  system account such as ``daemon``) is refused in every mode, not only in password mode.
- Lockout: failed logins are counted per name and client address in the account store; past the limit that
  address is refused for the name, with back-off, whatever the password (upstream authenticators have no
  such limit). See ``pangeohub.auth.throttle``: wrong passwords from one address never lock the owner out.
- Group-based admin: members of ``admin_groups`` (hub group names) are admins; leaving the group takes
  the right away at the next login.
- Sessions that end: logout ends the person's sessions everywhere, and the account commands can end them
  (``pangeohub.auth.sessions``: JupyterHub never rotates a user's cookie id).
- Uniform refusals: every refusal returns None, so the hub shows the same "Invalid username or password"
  whether the name exists, is pending, expired, locked or simply wrong.
- Threads of their own (``in_login_threads``): a login's blocking work (the account store, a password hash, a
  directory bind) never queues behind spawn preparation in the hub's default thread pool. In a 300-person
  burst that pool's six threads were busy mounting homes and making storage identities, and a login waited
  there ~5 s while the hub's event loop was half idle.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from traitlets import Bool, Float, Integer, Set, Unicode
from traitlets.config import LoggingConfigurable

from pangeohub.accounts import AccountStore
from pangeohub.auth import throttle
from pangeohub.errors import PangeoError
from pangeohub.names import check_username

# Four: argon2 runs without the GIL (~40 ms of CPU a password), so a few threads use both cores, and more would
# only make logins of a burst wait for the CPU together instead of in order.
_LOGIN_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pangeohub-login")


async def in_login_threads(function, *args):
    """``function(*args)`` in the login threads, off the hub's event loop."""
    return await asyncio.get_running_loop().run_in_executor(_LOGIN_THREADS, function, *args)


class PangeoAuthMixin(LoggingConfigurable):
    accounts_db = Unicode(help="Path of pangeohub's account store (SQLite).").tag(config=True)
    system_prefix = Unicode("jupyter-", help="Prefix of the Linux accounts users run as.").tag(config=True)
    site_accounts = Bool(False, help="Hub users are a site's existing accounts of the same name (a Slurm "
                         "cluster's): such an account must exist and be a person's.").tag(config=True)
    failed_login_limit = Integer(10, help="Failed logins allowed per name and address within the window.").tag(
        config=True)
    failed_login_window = Float(900.0, help="Seconds over which failed logins are counted.").tag(config=True)
    pangeo_admin_groups = Set(Unicode(), help="Hub groups whose members are admins.").tag(config=True)

    @property
    def store(self) -> AccountStore:
        return AccountStore(self.accounts_db)

    def validate_username(self, username: str) -> bool:
        try:
            check_username(username, self.system_prefix, self.site_accounts)
        except PangeoError as exc:
            self.log.warning("Refusing username %r: %s", username, exc.what)
            return False
        return super().validate_username(username)

    def get_handlers(self, app):
        from pangeohub.auth.sessions import with_session_handlers

        return with_session_handlers(super().get_handlers(app))

    async def account_usable(self, name: str) -> bool:
        """May ``name`` use the platform now? False for an account of the store that is expired, pending or
        locked; people the store does not hold (a directory's, GitHub's) are the hub's to refuse."""
        if not self.accounts_db or not os.path.exists(self.accounts_db):
            return True
        account = await self._in_store("get", name)
        return account is None or account.usable()

    async def _in_store(self, method: str, *args):
        return await in_login_threads(getattr(self.store, method), *args)

    async def guarded(self, name: str, attempt=None, handler=None, check=None):
        """Check a password under the lockout: its model, or None if refused.

        ``check``: a blocking callable; it runs in one login thread together with the lockout's own reads and
        writes of the account store, one hop off the event loop instead of three (in a burst each hop back waits
        for a turn of a busy loop). ``attempt``: a coroutine function, for checks that run on the loop.
        ``handler`` is the login request's handler: the client's address comes from it."""
        if not self.validate_username(name):
            return None
        address = throttle.client_address(handler)
        if check is not None:
            def blocking():
                return None if self._refused(name, address) else self._settle(name, address, check())
            return await in_login_threads(blocking)
        if await in_login_threads(self._refused, name, address):
            return None
        model = await attempt()
        return await in_login_threads(self._settle, name, address, model)

    def _refused(self, name: str, address: str) -> bool:
        record = self.store.login_record(name, address, self.failed_login_window, throttle.KNOWN_FOR)
        why = throttle.refusal(record, self.failed_login_limit, self.failed_login_window)
        if why:
            self.log.warning("Login for %r from %s refused: %s", name, address, why)
        return bool(why)

    def _settle(self, name: str, address: str, model):
        """Record the check's outcome: the model on success, None (a counted failure) otherwise."""
        store, window = self.store, self.failed_login_window
        if not model:
            store.record_failure(name, address, window)
            self.log.warning("Failed login for %r from %s", name, address)
            self._log_lockout(name, address, store.login_record(name, address, window, throttle.KNOWN_FOR))
            return None
        store.record_success(name, address)
        return model

    def _log_lockout(self, name: str, address: str, record) -> None:
        """Tell the operator the moment a failure starts a lockout (the hub log: `pangeohub logs hub`)."""
        limit, window = self.failed_login_limit, self.failed_login_window
        if len(record.failures_here) >= limit:
            seconds = throttle.pair_locked_until(record, limit, window) - max(record.failures_here)
            self.log.warning("Login lockout: %r from %s locked for %.0fs after %d failed logins "
                             "(other addresses unaffected; `pangeohub users passwd %s` lifts it)",
                             name, address, seconds, len(record.failures_here), name)
        if record.failures_total == limit * throttle.NAME_CEILING:
            self.log.warning("Login lockout: %r has %d failed logins from several addresses: from now on only "
                             "addresses it logged in from may try, until they age out of %.0fs",
                             name, record.failures_total, window)

    def admin_from_groups(self, groups, current: bool | None = None) -> bool | None:
        """True/False from group membership when admin groups are configured; else ``current`` unchanged."""
        if current:
            return True
        if not self.pangeo_admin_groups:
            return current
        return bool(set(groups) & self.pangeo_admin_groups)
