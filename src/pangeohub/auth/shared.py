"""Shared-password logins for quick demos: JupyterHub's SharedPasswordAuthenticator, with pangeohub's
Linux-safe names and lockout, and the passwords read from files (never written into the hub config).

Anybody who knows the password can log in under any (valid) name, and as any other non-admin user: this mode
is for a demo on a closed network, not for real work. Admins (hub.admin_users) use the separate admin
password.
"""

from __future__ import annotations

from pathlib import Path

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator
from traitlets import Unicode

from pangeohub.auth.common import PangeoAuthMixin


class PangeoSharedPasswordAuthenticator(PangeoAuthMixin, SharedPasswordAuthenticator):
    user_password_file = Unicode("", help="File holding the password everybody uses.").tag(config=True)
    admin_password_file = Unicode("", help="File holding the admins' password (32+ characters).").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Assigned after init so that upstream's validators (length, user != admin) still run.
        if self.user_password_file:
            self.user_password = Path(self.user_password_file).read_text().strip()
        if self.admin_password_file and self.admin_users:
            self.admin_password = Path(self.admin_password_file).read_text().strip()

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        return await self.guarded(
            name, lambda: super(PangeoSharedPasswordAuthenticator, self).authenticate(handler, data), handler
        )
