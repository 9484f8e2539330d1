"""Login modes in the config and in the rendered hub config (pure: no platform), and the workshop helpers
against a real SQLite account store."""

import csv
import json
import time

import pytest

from harness import cli
from pangeohub.accounts import AccountStore
from pangeohub.auth import workshop
from pangeohub.config import parse_config
from pangeohub.errors import PangeoError
from pangeohub.paths import StatePaths
from pangeohub.render.hub import HubSecrets, render_hub_config

LDAP = {"mode": "ldap", "admin_groups": ["hubadmins"], "ldap": {
    "server_address": "ipa.example.org", "bind_dn_templates": ["uid={username},cn=users,cn=accounts,dc=x"],
    "group_search_base": "cn=groups,cn=accounts,dc=x", "allowed_groups": ["cluster_notebook_users"]}}
GITHUB = {"mode": "github", "admin_groups": ["Pangeo:Admins"], "github": {
    "client_id": "abc", "client_secret_file": "/etc/pangeohub/gh", "allowed_organizations": ["pangeo:workshop"]}}


def render(auth: dict, tmp_path) -> dict:
    config = parse_config(json.dumps({"state_dir": str(tmp_path), "auth": auth}))
    return render_hub_config(config, StatePaths(tmp_path), HubSecrets(admin_service_token="t"))


@pytest.mark.parametrize("auth, cls", [
    ({}, "PangeoAuthenticator"), ({"mode": "signup"}, "SignupAuthenticator"), (LDAP, "PangeoLDAPAuthenticator"),
    (GITHUB, "PangeoGitHubAuthenticator"), ({"mode": "shared"}, "PangeoSharedPasswordAuthenticator"),
])
def test_each_mode_loads_its_authenticator_with_its_settings(auth, cls, tmp_path):
    rendered = render(auth, tmp_path)
    assert rendered["JupyterHub"]["authenticator_class"].endswith("." + cls)
    settings = rendered[cls]
    assert settings["accounts_db"] == str(tmp_path / "accounts.sqlite")
    assert rendered["Authenticator"]["manage_groups"] is True
    if cls == "PangeoLDAPAuthenticator":
        assert settings["allowed_groups"] == ["cn=cluster_notebook_users,cn=groups,cn=accounts,dc=x"]
        assert settings["allow_all"] is False and settings["tls_strategy"] == "before_bind"
        assert settings["pangeo_admin_groups"] == ["hubadmins"]
    if cls == "PangeoGitHubAuthenticator":
        assert settings["admin_groups"] == ["pangeo:admins"] and "client_secret" not in settings
    if cls == "SignupAuthenticator":
        assert rendered["JupyterHub"]["template_paths"]


@pytest.mark.parametrize("auth, message", [
    ({"mode": "github"}, "auth.github.client_id is required"),
    ({"mode": "github", "github": {"client_id": "x", "client_secret_file": "/s"}},
     "auth.github.allowed_organizations is required"),
    ({"mode": "github", "github": {"allowed_organizations": ["a:b:c"]}}, "'a:b:c' is not 'org' or 'org:team'"),
    ({"mode": "ldap"}, "auth.ldap.server_address is required"),
    ({"mode": "ldap", "ldap": {"server_address": "h"}}, "needs bind_dn_templates or user_search_base"),
    ({"mode": "ldap", "ldap": {"server_address": "h", "bind_dn_templates": ["uid=x,dc=y"]}},
     "has no '{username}' placeholder"),
    ({"mode": "ldap", "ldap": {"server_address": "h", "user_search_base": "dc=x", "allowed_groups": ["g"]}},
     "auth.ldap.group_search_base is required"),
    ({"mode": "kerberos"}, "auth.mode"),
    ({"mode": "ldap", "ldap": {"server_adress": "h"}}, "server_adress"),
])
def test_bad_auth_config_says_which_field_and_how_to_fix(auth, message, tmp_path):
    with pytest.raises(PangeoError) as info:
        parse_config(json.dumps({"auth": auth}))
    assert message in str(info.value)


def test_bad_auth_config_is_refused_by_the_cli(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("auth:\n  mode: github\n  github:\n    client_id: abc\n")
    proc = cli("config", "validate", config=path, check=False)
    assert proc.returncode != 0 and "auth.github.client_secret_file is required" in proc.stderr


def test_workshop_names_continue_numbering_and_passwords_are_stored_hashed(tmp_path):
    store = AccountStore(tmp_path / "accounts.sqlite")
    rows = workshop.generate(store, workshop.next_names(store, "ws", 3, "jupyter-"), None, ["ws"])
    assert [r["username"] for r in rows] == ["ws01", "ws02", "ws03"]
    assert workshop.next_names(store, "ws", 2, "jupyter-") == ["ws04", "ws05"]
    assert all(store.verify(r["username"], r["password"]) for r in rows)
    raw = (tmp_path / "accounts.sqlite").read_bytes()
    assert not any(r["password"].encode() in raw for r in rows)
    csv_path, html_path = workshop.write_sheets(tmp_path / "out", rows, "https://hub.example.org/", None)
    assert csv_path.stat().st_mode & 0o077 == 0 and html_path.stat().st_mode & 0o077 == 0
    assert list(csv.DictReader(csv_path.open()))[1]["password"] == rows[1]["password"]
    assert html_path.read_text().count('class="card"') == 3


@pytest.mark.parametrize("prefix, count, message", [
    ("WS", 3, "is not allowed"), ("ws", 0, "out of range"), ("ws", 5000, "out of range"), ("x" * 31, 1, "too long"),
])
def test_workshop_bad_input_is_refused_before_any_account_is_made(prefix, count, message, tmp_path):
    store = AccountStore(tmp_path / "accounts.sqlite")
    with pytest.raises(PangeoError, match=message):
        workshop.next_names(store, prefix, count, "")
    assert store.list() == []


def test_expiry_dates_and_durations():
    now = time.time()
    assert workshop.parse_expiry("3d", now) == now + 3 * 86400
    assert workshop.parse_expiry("2030-01-02") > now
    with pytest.raises(PangeoError, match="neither a date nor a duration"):
        workshop.parse_expiry("next tuesday")
    with pytest.raises(PangeoError, match="--until '2020-01-02' is in the past"):
        workshop.parse_expiry("2020-01-02", option="--until")
