"""LDAP / FreeIPA logins: ldapauthenticator 2.0.2 extended with hub groups and group-based admin.

Upstream binds as the person and checks ``allowed_groups`` at every login (so somebody removed from the
group is refused at their next login), but it only reports which *allowed* groups matched and has no admin
groups. Here, with the person's own bound connection, every group under ``group_search_base`` that lists
them (``member``, ``uniqueMember`` or ``memberUid``: FreeIPA and plain OpenLDAP layouts) becomes a hub group
named by its cn, and members of the admin groups become hub admins.

Upstream's blocking LDAP calls are moved off the hub's event loop (see ``authenticate``).

People who leave the allowed groups are ended at the next refresh (``ldap_refresh``), not only refused at their
next login. The common mixin adds Linux-safe names (checked before anything reaches the directory) and the lockout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Unicode

from pangeohub.auth.common import PangeoAuthMixin
from pangeohub.auth.ldap_refresh import LDAPRefreshMixin

_GROUPS_KEY = "pangeohub_groups"


class PangeoLDAPAuthenticator(LDAPRefreshMixin, PangeoAuthMixin, LDAPAuthenticator):
    pangeo_group_search_base = Unicode(
        "", help="Where to look for the groups a person belongs to (they become hub groups)."
    ).tag(config=True)
    search_password_file = Unicode(
        "", help="File holding lookup_dn_search_password (kept out of the rendered config)."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.search_password_file:
            self.lookup_dn_search_password = Path(self.search_password_file).read_text().strip()

    def get_user_attributes(self, conn, userdn):
        # Called by upstream with the connection bound as the person: the one moment we can read their
        # groups with their own rights (no service account needed in bind-template mode).
        attributes = dict(super().get_user_attributes(conn, userdn))
        attributes[_GROUPS_KEY] = self._member_of(conn, userdn) if self.pangeo_group_search_base else []
        return attributes

    def _member_of(self, conn, userdn: str) -> list[str]:
        uid = parse_dn(userdn)[0][1]
        dn, uid = escape_filter_chars(userdn), escape_filter_chars(uid)
        conn.search(
            search_base=self.pangeo_group_search_base,
            search_scope=ldap3.SUBTREE,
            search_filter=f"(|(member={dn})(uniqueMember={dn})(memberUid={uid}))",
            attributes=["cn"],
        )
        return sorted({str(entry.cn.value) for entry in conn.entries if entry.cn.value})

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        upstream = super().authenticate

        def blocking():
            # Upstream's authenticate is a coroutine that never awaits: its ldap3 binds and searches block
            # the hub's event loop, so a slow or unreachable directory would freeze the hub for everybody.
            # It uses nothing of the hub's loop, so it runs to completion on a loop of its own in a thread.
            try:
                return asyncio.run(upstream(handler, data))
            except LDAPException as exc:
                # Upstream lets these through as a 500. Same words for every name: nothing leaks, and an
                # outage is not counted as anybody's failed login.
                self.log.error("LDAP server %s:%s failed: %s", self.server_address, self.server_port, exc)
                raise web.HTTPError(503, "The directory service cannot be reached; please try again later.")

        model = await self.guarded(name, handler=handler, check=blocking)
        if not model:
            return None
        groups = model["auth_state"]["user_attributes"].pop(_GROUPS_KEY, [])
        model["groups"] = groups
        # Never None ("leave the flag as it is"): an admin flag stored in another mode must not survive here.
        model["admin"] = name in self.admin_users or bool(set(groups) & self.pangeo_admin_groups)
        return model

    async def check_allowed(self, username, auth_model):
        # Members of an admin group get in even when they are not in an allowed group.
        if auth_model and auth_model.get("admin"):
            return True
        return await super().check_allowed(username, auth_model)
