"""Sign-up with approval: a form where people apply, a review page where admins approve or deny.

NativeAuthenticator 1.3.0 would give this, but breaks on JupyterHub 6.1 (``LoginHandler.statsd``), so it is
built on JupyterHub's own ``BaseHandler``, registered through ``Authenticator.get_handlers``. Applications
are accounts with status 'pending' in pangeohub's account store: they cannot log in (``verify`` refuses
them) nor spawn (``pre_spawn_start``), and `pangeohub users pending | approve | deny` works on the same rows.

The form never says whether a name is taken: applying for an existing name shows the same "thank you" page,
after the same time (the password is hashed either way), and changes nothing. A name whose former Linux account
or home is still on the machine (``users remove --keep-home``) counts as taken: approving it would hand that
home to a stranger, and approval refuses it too.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import Integer, Unicode

from pangeohub.accounts import Account, hash_password
from pangeohub.auth.applications import approve, deny, existing_home, pending
from pangeohub.errors import PangeoError
from pangeohub.hub.auth import PangeoAuthenticator
from pangeohub.names import check_username

TEMPLATES = Path(__file__).parent / "templates"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_INFO = 2000


class SignupHandler(BaseHandler):
    async def get(self):
        self.finish(await self._page())

    async def _page(self, **ns):
        auth = self.authenticator
        ns.setdefault("form", {})
        return await self.render_template(
            "signup.html", prompt=auth.signup_prompt, min_length=auth.min_password_length, **ns
        )

    async def post(self):
        auth: SignupAuthenticator = self.authenticator
        form = {k: self.get_body_argument(k, "").strip() for k in ("username", "email", "info")}
        password = self.get_body_argument("password", "")
        error = self._problem(form, password, self.get_body_argument("password2", ""))
        if error:
            self.set_status(400)
            self.finish(await self._page(error=error, form=form))
            return
        name = auth.normalize_username(form["username"])
        outcome = await asyncio.get_running_loop().run_in_executor(
            None, auth.apply, name, password, form["email"], form["info"], self.find_user(name) is not None
        )
        if outcome == "full":
            self.set_status(503)
            self.finish(await self._page(error="Sign-ups are closed for now: too many applications are waiting "
                                               "for review. Please try again later."))
            return
        self.finish(await self.render_template("signup_done.html"))

    def _problem(self, form: dict, password: str, again: str) -> str | None:
        auth = self.authenticator
        try:
            check_username(auth.normalize_username(form["username"]), auth.system_prefix)
        except PangeoError as exc:
            return f"{exc.what}; {exc.fix}."
        if not _EMAIL.match(form["email"]):
            return f"{form['email']!r} is not an e-mail address (like name@example.org)."
        if len(password) < auth.min_password_length:
            return (f"The password has {len(password)} characters; at least {auth.min_password_length} are "
                    "needed.")
        if password != again:
            return "The two passwords differ: type the same password twice."
        if not form["info"]:
            return f"Please answer: {auth.signup_prompt}"
        if len(form["info"]) > MAX_INFO:
            return f"The answer has {len(form['info'])} characters; at most {MAX_INFO} please."
        return None


class ReviewHandler(BaseHandler):
    """The admins' page: pending applications with approve / deny buttons."""

    def _require_admin(self):
        if not self.current_user.admin:
            raise web.HTTPError(403, "Only administrators review sign-ups.")

    @web.authenticated
    async def get(self):
        self._require_admin()
        await self._show()

    async def _show(self, message: str | None = None):
        store = self.authenticator.store
        applications = await asyncio.get_running_loop().run_in_executor(None, pending, store)
        self.finish(await self.render_template("signup_review.html", applications=applications, message=message))

    @web.authenticated
    async def post(self):
        self._require_admin()
        name = self.get_body_argument("username", "")
        action = self.get_body_argument("action", "")
        auth: SignupAuthenticator = self.authenticator
        kept = existing_home(name, auth.system_prefix, auth.home_root) if name else None
        decide = {"approve": lambda store, who: approve(store, who, kept),
                  "deny": lambda store, who: deny(store, who, auth.release, kept)}.get(action)
        if decide is None:
            raise web.HTTPError(400, f"Unknown action {action!r}: use approve or deny.")
        store = auth.store
        try:
            await asyncio.get_running_loop().run_in_executor(None, decide, store, name)
        except PangeoError as exc:
            self.set_status(404)
            await self._show(exc.what)
            return
        if action == "approve":  # a hub user at once (add_user gives it the account's admin flag and groups)
            await maybe_future(auth.add_user(self.user_from_username(name)))
        self.log.info("%s %s the sign-up of %s", self.current_user.name, action, name)
        await self._show(f"{name}: {'approved' if action == 'approve' else 'denied'}.")


class SignupAuthenticator(PangeoAuthenticator):
    min_password_length = Integer(8, help="Shortest password accepted on the sign-up form.").tag(config=True)
    max_pending = Integer(200, help="Most applications waiting for review.").tag(config=True)
    signup_prompt = Unicode("What will you work on?", help="Question on the form.").tag(config=True)
    home_root = Unicode("/home", help="Where homes are made (users.home_root).").tag(config=True)

    def apply(self, name: str, password: str, email: str, info: str, hub_user_exists: bool) -> str:
        """Record an application; 'ok' (also when the name is taken: nothing is changed) or 'full'."""
        store = self.store
        if len(pending(store)) >= self.max_pending:
            return "full"
        kept = existing_home(name, self.system_prefix, self.home_root)
        if hub_user_exists or name in self.admin_users or store.get(name) is not None or kept:
            hash_password(password)  # the time a new application takes, so that timing tells nothing
            self.log.warning("Sign-up for existing name %r ignored%s", name, f" ({kept} is kept)" if kept else "")
            return "ok"
        try:
            store.add(Account(name=name, status="pending", email=email, info={"work": info}), password)
        except PangeoError:  # applied twice at the same moment
            pass
        self.log.info("New sign-up: %s <%s>", name, email)
        return "ok"

    def release(self, name: str) -> None:
        """Remove a refused applicant through the platform's one release function (pangeohub.release). The
        applicant never had a hub user, so the hub is not asked; the platform's settings are the spawner's."""
        from pangeohub.config import Config
        from pangeohub.release import release_account
        from pangeohub.services.runtime import Runtime

        # The settings are under the spawner's own class name (pangeohub.render.hub), which varies by target.
        section = str(self.config.JupyterHub.spawner_class).rsplit(".", 1)[-1]
        release_account(Runtime(config=Config.model_validate(dict(self.config[section].settings))), name)

    def get_handlers(self, app):
        return super().get_handlers(app) + [("/signup", SignupHandler), ("/signup/review", ReviewHandler)]
