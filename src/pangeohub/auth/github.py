"""GitHub logins: oauthenticator 17.4's GitHubOAuthenticator with teams as hub groups and admin teams.

Upstream checks ``allowed_organizations`` ('org' or 'org:team') against GitHub's API at every login and can
put the person's teams in the auth state (``populate_teams_in_auth_state``); its group management
(``manage_groups``, ``admin_groups``) turns auth-state groups into hub groups and admins. What it lacks is a
mapping from GitHub's team objects to group names, which can only be given as a Python callable: this
subclass names each team 'org:team-slug', the same spelling ``allowed_organizations`` uses.

At each refresh (``auth.refresh_interval``) the person's organisations and teams are read again with their own
access token (kept encrypted in the hub's auth state): people who left are ended everywhere.

The client secret is read from a file so that it never appears in the rendered hub config.
"""

from __future__ import annotations

from pathlib import Path

from oauthenticator.github import GitHubOAuthenticator
from traitlets import Unicode

from pangeohub.auth.common import PangeoAuthMixin


def team_groups(auth_state: dict) -> set[str]:
    return {f"{t['organization']['login']}:{t['slug']}".lower() for t in auth_state.get("teams") or []}


class PangeoGitHubAuthenticator(PangeoAuthMixin, GitHubOAuthenticator):
    client_secret_file = Unicode("", help="File holding the OAuth app's client secret.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.client_secret_file:
            self.client_secret = Path(self.client_secret_file).read_text().strip()

    async def get_user_groups(self, auth_state: dict) -> set[str]:
        return team_groups(auth_state)

    async def authenticate(self, handler, data=None):
        model = await super().authenticate(handler, data)
        if model:
            # Upstream leaves admin None ("unchanged") for people outside admin_users when admin_groups is
            # empty, so an admin flag stored in another auth mode survived the switch to GitHub.
            model["admin"] = bool(model.get("admin"))
        return model

    async def refresh_user(self, user, handler=None, **kwargs):
        # Upstream rebuilds the person's model from GitHub with their stored access token (auth state) but never
        # checks it against allowed_organizations again: someone dropped from the organisation kept their session
        # and tokens. Here they are ended everywhere at the refresh that finds them gone.
        model = await super().refresh_user(user, handler, **kwargs)
        if not isinstance(model, dict):
            return model  # True: nothing to re-check; False: a new login is needed
        model["admin"] = bool(model.get("admin"))
        if model["admin"] or await self.check_allowed(user.name, model):
            return model
        from pangeohub.auth.sessions import end_in_hub

        self.log.warning("%s is no longer in an allowed GitHub organisation or team", user.name)
        await end_in_hub(self, user)
        return False
