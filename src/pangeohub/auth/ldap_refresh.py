"""Re-checking a directory person while they use the hub: ldapauthenticator 2.0.2 has no ``refresh_user``.

Upstream checks the allowed groups only at login, so somebody removed from the group kept their session up to
its end and their tokens for ever. At each refresh (``auth.refresh_interval``) the directory is searched with the
search account (``auth.ldap.search_user_dn``): a person who is gone, or in none of the allowed groups (nor an
admin group, nor ``admin_users``), is ended everywhere (``end_in_hub``). Their groups and admin flag follow the
directory on the way. When the directory cannot be asked (no search account, unreachable, or the account cannot
see the allowed groups), nothing changes: an outage, or a search that reads nothing, must not end everybody.
Anonymous searches are not used: a directory that hides entries from them would look as if everybody left.
"""

from __future__ import annotations

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from pangeohub.auth.common import in_login_threads


class LDAPRefreshMixin:
    """For PangeoLDAPAuthenticator (placed before it): ``refresh_user`` from the directory."""

    async def refresh_user(self, user, handler=None):
        try:
            found = await in_login_threads(self._directory_view, user.name)
        except LDAPException as exc:
            self.log.warning("Cannot re-check %s in the directory (%s): unchanged until the next refresh",
                             user.name, exc)
            return True
        if found is None:
            return True
        allowed, groups = found
        admin = user.name in self.admin_users or bool(set(groups) & self.pangeo_admin_groups)
        if not (allowed or admin):
            from pangeohub.auth.sessions import end_in_hub

            self.log.warning("%s is no longer in an allowed group of the directory", user.name)
            await end_in_hub(self, user)
            return False
        return {"name": user.name, "groups": groups, "admin": admin}

    def _directory_view(self, name: str) -> tuple[bool, list[str]] | None:
        """(in an allowed group?, the person's groups), or None if the directory cannot tell (no right to
        search). A person the directory no longer has is in no group."""
        if not self.lookup_dn_search_user:
            return None
        conn = self.get_connection(self.lookup_dn_search_user, self.lookup_dn_search_password or "")
        if conn is None:
            return None
        restricted = bool(self.allowed_groups) and not self.allow_all
        if restricted and not any(self._visible(conn, group) for group in self.allowed_groups):
            self.log.warning("The directory's search account sees none of the allowed groups: no re-check")
            return None
        userdn = self._find_dn(conn, name)
        if userdn is None:
            return False, []
        groups = self._member_of(conn, userdn) if self.pangeo_group_search_base else []
        if not restricted:
            return True, groups
        uid = escape_filter_chars(parse_dn(userdn)[0][1])
        dn = escape_filter_chars(userdn)
        for group in self.allowed_groups:
            conn.search(search_base=group, search_scope=ldap3.BASE,
                        search_filter=f"(|(member={dn})(uniqueMember={dn})(memberUid={uid}))", attributes=["cn"])
            if conn.entries:
                return True, groups
        return False, groups

    def _find_dn(self, conn, name: str) -> str | None:
        if self.lookup_dn:
            conn.search(search_base=self.user_search_base, search_scope=ldap3.SUBTREE,
                        search_filter=f"({self.user_attribute}={escape_filter_chars(name)})", attributes=["cn"])
            return conn.entries[0].entry_dn if len(conn.entries) == 1 else None
        templates = self.bind_dn_template if isinstance(self.bind_dn_template, list) else [self.bind_dn_template]
        return next((dn for dn in (t.format(username=name) for t in templates) if self._visible(conn, dn)), None)

    @staticmethod
    def _visible(conn, dn: str) -> bool:
        return bool(conn.search(search_base=dn, search_scope=ldap3.BASE, search_filter="(objectClass=*)",
                                attributes=["cn"]) and conn.entries)
