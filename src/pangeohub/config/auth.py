"""Config sections of the login modes other than 'password' (auth.ldap, auth.github, auth.signup, auth.shared).

Each section is inert unless ``auth.mode`` selects it; ``require()`` is called for the selected mode only,
so that an operator can keep, say, LDAP settings around while trying another mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pangeohub.config.base import Section


def _missing(field: str, example: str) -> ValueError:
    return ValueError(f"auth.{field} is required by this mode (e.g. {example})")


class LdapAuth(Section):
    server_address: str | None = Field(
        None, description="Host name or address of the LDAP/FreeIPA server, e.g. ipa.example.org."
    )
    server_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the LDAP server; default 636 with tls 'ldaps', else 389."
    )
    tls: Literal["starttls", "ldaps", "none"] = Field(
        "starttls",
        description="How the connection is protected: 'starttls' (upgrade on port 389), 'ldaps' (port 636) "
        "or 'none' (passwords travel in clear: only for a directory on this machine).",
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA that signed the directory's certificate (FreeIPA: /etc/ipa/ca.crt). "
        "Default: the system's trusted CAs. With 'starttls' and 'ldaps' the certificate is always checked, "
        "and so is its name against server_address: a directory that cannot prove who it is gets no password.",
    )
    bind_dn_templates: list[str] = Field(
        default_factory=list,
        description="DNs tried in turn to bind as the person logging in; '{username}' is replaced, e.g. "
        "'uid={username},cn=users,cn=accounts,dc=example,dc=org'. Leave empty to search for the DN instead "
        "(user_search_base).",
    )
    user_search_base: str | None = Field(
        None, description="Where to search for a person's DN when bind_dn_templates is empty, "
        "e.g. cn=users,cn=accounts,dc=example,dc=org.",
    )
    user_attribute: str = Field("uid", description="Attribute that holds the login name when searching.")
    search_user_dn: str | None = Field(
        None, description="DN to bind as for the search (anonymous if unset). Also used to check people's "
        "groups again while they use the hub (auth.refresh_interval); without it, leaving a group takes effect "
        "at the next login only."
    )
    search_password_file: Path | None = Field(
        None, description="File (0600) holding the password of search_user_dn."
    )
    group_search_base: str | None = Field(
        None,
        description="Where groups live, e.g. cn=groups,cn=accounts,dc=example,dc=org. A person's groups "
        "(by member, uniqueMember or memberUid) become hub groups named by their cn.",
    )
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="Only members of these groups may log in: a cn under group_search_base (e.g. "
        "'cluster_notebook_users') or a full DN. Checked at every login. Empty: every directory user.",
    )

    @field_validator("bind_dn_templates")
    @classmethod
    def _has_username(cls, value: list[str]) -> list[str]:
        for template in value:
            if "{username}" not in template:
                raise ValueError(f"'{template}' has no '{{username}}' placeholder")
        return value

    def require(self) -> None:
        if not self.server_address:
            raise _missing("ldap.server_address", "ipa.example.org")
        if self.ca_file and self.tls == "none":
            raise ValueError("auth.ldap.ca_file is set but tls is 'none': use tls 'starttls' or 'ldaps'")
        if not self.bind_dn_templates and not self.user_search_base:
            raise ValueError("auth.ldap needs bind_dn_templates or user_search_base to find a person's DN")
        if any("=" not in g for g in self.allowed_groups) and not self.group_search_base:
            raise _missing("ldap.group_search_base", "cn=groups,cn=accounts,dc=example,dc=org")

    def group_dn(self, group: str) -> str:
        return group if "=" in group else f"cn={group},{self.group_search_base}"


class GithubAuth(Section):
    client_id: str | None = Field(None, description="Client ID of the GitHub OAuth app.")
    client_secret_file: Path | None = Field(
        None, description="File (0600) holding the OAuth app's client secret."
    )
    callback_url: str | None = Field(
        None, description="The OAuth app's callback URL, e.g. https://hub.example.org/hub/oauth_callback "
        "(default: derived from the address people use)."
    )
    url: str = Field(
        "https://github.com", description="GitHub's address; change it for GitHub Enterprise Server."
    )
    allowed_organizations: list[str] = Field(
        default_factory=list,
        description="Who may log in: members of these organisations ('pangeo-data') or teams "
        "('pangeo-data:workshop-2026').",
    )

    @field_validator("allowed_organizations")
    @classmethod
    def _org_team(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.count(":") > 1 or not all(item.split(":")):
                raise ValueError(f"'{item}' is not 'org' or 'org:team'")
        return value

    def require(self) -> None:
        if not self.client_id:
            raise _missing("github.client_id", "the OAuth app's Client ID")
        if not self.client_secret_file:
            raise _missing("github.client_secret_file", "/etc/pangeohub/github-secret")
        if not self.allowed_organizations:
            raise _missing("github.allowed_organizations", "['pangeo-data:workshop']")


class SignupAuth(Section):
    max_pending: int = Field(
        200, ge=1, description="Most applications waiting for review; further sign-ups are turned away "
        "until an admin approves or denies some (keeps a sign-up flood from filling the disk)."
    )
    prompt: str = Field(
        "What will you work on?", description="Question on the sign-up form, shown to the reviewing admin."
    )


class SharedAuth(Section):
    password_file: Path | None = Field(
        None, description="File holding the one password everybody uses (at least 8 characters). Default: "
        "generated in the state directory; `pangeohub users shared-password` prints it.",
    )
