"""The authenticator part of JupyterHub's config, rendered from ``auth:`` (pure: no I/O).

``render_auth`` returns the traitlets sections of the chosen authenticator (and of the expiry service in
modes with local accounts); render/hub.py merges them in, appending to lists such as JupyterHub.services.
``prepare_auth`` is the one impure step: it makes the generated shared passwords before the hub starts.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pangeohub.accounts import generate_password
from pangeohub.auth import AUTHENTICATOR_CLASSES
from pangeohub.auth.expiry import SCOPES as EXPIRY_SCOPES
from pangeohub.auth.expiry import SERVICE as EXPIRY_SERVICE
from pangeohub.config import Config
from pangeohub.names import uses_site_accounts
from pangeohub.paths import StatePaths
from pangeohub.secrets import write_private

TEMPLATES = Path(__file__).parent / "templates"
_TLS = {"starttls": "before_bind", "ldaps": "on_connect", "none": "insecure"}


def authenticator_class(config: Config) -> str:
    return AUTHENTICATOR_CLASSES[config.auth.mode]


def render_auth(config: Config, paths: StatePaths, *, local_gateway: bool = True) -> dict:
    """``local_gateway``: the gateway's operator API is on this machine's loopback (not on Kubernetes, where
    it is in a pod of its own), so that the expiry service stops ended people's clusters there."""
    auth = config.auth
    cls = authenticator_class(config).rsplit(".", 1)[1]
    common = {
        "accounts_db": str(paths.accounts_db),
        "system_prefix": config.users.system_prefix,
        "failed_login_limit": auth.failed_login_limit,
        "failed_login_window": float(auth.failed_login_window),
        "pangeo_admin_groups": sorted(auth.admin_groups),
    }
    if uses_site_accounts(config):
        common["site_accounts"] = True
    sections = {
        "Authenticator": {
            "admin_users": sorted(config.hub.admin_users),
            # Hub groups follow the authority (account store, directory, GitHub teams) at every login.
            "manage_groups": True,
            # Expired or pending accounts, and people dropped from their groups, cannot spawn on an old session;
            # while they use the hub their right to is checked again this often (each mode's refresh_user).
            "refresh_pre_spawn": True,
            "auth_refresh_age": max(1, int(auth.refresh_interval)),
        },
        cls: {**common, **_mode_settings(config, paths)},
    }
    if auth.mode in ("password", "signup"):
        sections["JupyterHub"] = {"services": [_expiry_service(config, paths, local_gateway)], "load_roles": [
            {"name": EXPIRY_SERVICE, "scopes": EXPIRY_SCOPES, "services": [EXPIRY_SERVICE]}]}
    if auth.mode == "signup":
        sections["JupyterHub"]["template_paths"] = [str(TEMPLATES)]
    return sections


def _expiry_service(config: Config, paths: StatePaths, local_gateway: bool) -> dict:
    from pangeohub.gateway import ADMIN_PATH

    command = [
        str(config.install_dir / "bin" / "python"), "-m", "pangeohub.auth.expiry",
        "--accounts-db", str(paths.accounts_db), "--system-prefix", config.users.system_prefix,
        "--every", str(float(config.auth.expiry_check_interval)),
    ]
    if uses_site_accounts(config):
        command.append("--site-accounts")
    if config.gateway.enabled and local_gateway:
        command += ["--gateway-admin-url", f"http://127.0.0.1:{config.gateway.api_port}{ADMIN_PATH}",
                    "--gateway-token-file", str(paths.secret("gateway_admin_token"))]
    return {"name": EXPIRY_SERVICE, "command": command}


def _mode_settings(config: Config, paths: StatePaths) -> dict:
    auth = config.auth
    if auth.mode == "signup":
        return {"min_password_length": auth.password.min_length, "max_pending": auth.signup.max_pending,
                "signup_prompt": auth.signup.prompt, "home_root": str(config.users.home_root)}
    if auth.mode == "ldap":
        ldap = auth.ldap
        settings = {
            "server_address": ldap.server_address,
            "server_port": ldap.server_port or (636 if ldap.tls == "ldaps" else 389),
            "tls_strategy": _TLS[ldap.tls],
            "bind_dn_template": list(ldap.bind_dn_templates),
            "user_attribute": ldap.user_attribute,
            "allowed_groups": [ldap.group_dn(g) for g in ldap.allowed_groups],
            "allow_all": not ldap.allowed_groups,
            "pangeo_group_search_base": ldap.group_search_base or "",
        }
        if ldap.tls != "none":
            # Upstream's default (ldap3's Tls()) accepts any certificate: anybody who can answer in the
            # directory's place would be handed every password. Require a valid certificate for the name.
            settings["tls_kwargs"] = {"validate": int(ssl.CERT_REQUIRED),
                                      **({"ca_certs_file": str(ldap.ca_file)} if ldap.ca_file else {})}
        # The search account also re-checks people's groups at each refresh (pangeohub.auth.ldap_refresh).
        settings.update({"lookup_dn_search_user": ldap.search_user_dn or "",
                         "search_password_file": str(ldap.search_password_file or "")})
        if not ldap.bind_dn_templates:
            settings.update({
                "lookup_dn": True,
                "user_search_base": ldap.user_search_base,
                "lookup_dn_user_dn_attribute": ldap.user_attribute,
            })
        return settings
    if auth.mode == "github":
        github = auth.github
        settings = {
            "client_id": github.client_id,
            "client_secret_file": str(github.client_secret_file),
            "github_url": github.url.rstrip("/"),
            "allowed_organizations": sorted(github.allowed_organizations),
            "admin_groups": sorted(g.lower() for g in auth.admin_groups),
            "scope": ["read:org"],
            "populate_teams_in_auth_state": True,
            # The access token is kept (encrypted with the hub's crypt key) so that refresh_user can ask GitHub
            # again whether the person is still in an allowed organisation.
            "enable_auth_state": True,
        }
        if github.callback_url:
            settings["oauth_callback_url"] = github.callback_url
        return settings
    if auth.mode == "shared":
        return {"user_password_file": str(shared_password_file(config, paths)),
                "admin_password_file": str(paths.secret("shared_admin_password")), "allow_all": True}
    return {}


def shared_password_file(config: Config, paths: StatePaths) -> Path:
    return config.auth.shared.password_file or paths.secret("shared_password")


def prepare_auth(config: Config, paths: StatePaths) -> None:
    """Generate what the chosen mode needs on disk and the operator did not provide."""
    if config.auth.mode != "shared":
        return
    for path, groups in ((shared_password_file(config, paths), 3), (paths.secret("shared_admin_password"), 8)):
        if not path.exists():
            write_private(path, generate_password(groups=groups) + "\n")
