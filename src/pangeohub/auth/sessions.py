"""Ending a person's sessions in the hub, which JupyterHub 6.1 has no way to do.

A hub login cookie carries the user's ``cookie_id``, and JupyterHub never changes it: not at logout (which only
clears the cookie in the browser that logged out), not when the account ends. A copied cookie therefore stays
valid for its whole life. Giving the user a new ``cookie_id`` ends every hub session of theirs at once; their
sessions on their servers and services are OAuth tokens, which the token API (or ``end_sessions``) revokes.

Both pieces are served by the hub itself, through the authenticator's handlers (``Authenticator.get_handlers``):
- ``SessionsAPIHandler``: ``DELETE /hub/api/pangeohub/users/NAME/sessions`` (scope ``admin:users``) gives the user
  a new cookie id. The account commands and the expiry service call it (``HubAPI.end_person``).
- ``AccountAPIHandler``: ``GET /hub/api/pangeohub/users/NAME/account`` (scope ``read:users:name``) says whether
  the account may be used now (not expired, pending or locked): Dask Gateway asks it at every request
  (``pangeohub.gateway.auth``), since it cannot read the account store and tokens alone end too late.
- ``logout_handler(base)``: upstream's logout handler (or oauthenticator's), which also ends the person's sessions
  everywhere before upstream clears the cookie: copied cookies stop working at logout.
"""

from __future__ import annotations

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.login import LogoutHandler
from jupyterhub.orm import new_token
from jupyterhub.scopes import needs_scope
from tornado import web

SESSIONS_PATH = r"/api/pangeohub/users/([^/]+)/sessions"
ACCOUNT_PATH = r"/api/pangeohub/users/([^/]+)/account"
HUB_CLIENT = "jupyterhub"  # the client id of tokens the hub issues itself (API tokens, not OAuth sessions)


def end_sessions(db, orm_user, *, oauth_tokens: bool) -> int:
    """Give ``orm_user`` a new cookie id (and, with ``oauth_tokens``, revoke their OAuth tokens: their sessions on
    servers and services). Returns how many tokens were revoked."""
    orm_user.cookie_id = new_token()
    revoked = 0
    if oauth_tokens:
        for token in list(orm_user.api_tokens):
            if token.client_id != HUB_CLIENT:
                db.delete(token)
                revoked += 1
    db.commit()
    return revoked


async def end_in_hub(authenticator, user) -> None:
    """From inside the hub (an authenticator's ``refresh_user`` that finds the person may no longer log in): every
    token revoked, every session ended, every server stopped, every process of their Linux account ended.

    Returning False from ``refresh_user`` alone is not enough: JupyterHub then only forces a new login on
    cookie requests, and keeps honouring the person's tokens."""
    orm_user = user.orm_user
    for token in list(orm_user.api_tokens):
        user.db.delete(token)
    end_sessions(user.db, orm_user, oauth_tokens=False)
    for name, spawner in list(user.spawners.items()):
        if spawner.active:
            await user.stop(name)
    if not authenticator.site_accounts:
        import asyncio

        from pangeohub.config.model import UsersSection
        from pangeohub.targets.sysusers import lock_account

        users = UsersSection(system_prefix=authenticator.system_prefix)
        await asyncio.get_running_loop().run_in_executor(None, lock_account, user.name, users)
    authenticator.log.warning("%s may no longer log in: tokens, sessions, servers and processes ended", user.name)


class SessionsAPIHandler(APIHandler):
    @needs_scope("admin:users")
    def delete(self, user_name):
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        end_sessions(self.db, user.orm_user, oauth_tokens=False)
        self.log.info("Sessions of %s ended by %s", user_name, self.current_user.name)
        self.set_status(204)


class AccountAPIHandler(APIHandler):
    @needs_scope("read:users:name")
    async def get(self, user_name):
        usable = await self.authenticator.account_usable(user_name)
        self.write({"name": user_name, "usable": bool(usable)})


class _EndSessionsOnLogout:
    async def default_handle_logout(self):
        user = self.current_user
        if user:
            revoked = end_sessions(self.db, user.orm_user, oauth_tokens=True)
            self.log.info("Logout of %s ends their sessions everywhere (%d OAuth tokens revoked)", user.name, revoked)
        await super().default_handle_logout()


def logout_handler(base: type = LogoutHandler) -> type:
    """``base`` (upstream's logout handler class) ending the person's sessions everywhere at logout."""
    return type(f"SessionEnding{base.__name__}", (_EndSessionsOnLogout, base), {})


def with_session_handlers(handlers: list) -> list:
    """An authenticator's handlers with the logout replaced and the sessions API added (tornado serves the first
    pattern that matches; the authenticator's handlers come before the hub's own)."""
    base = next((h[1] for h in handlers if h[0] == "/logout"), LogoutHandler)
    rest = [h for h in handlers if h[0] != "/logout"]
    return [("/logout", logout_handler(base)), (SESSIONS_PATH, SessionsAPIHandler),
            (ACCOUNT_PATH, AccountAPIHandler), *rest]
