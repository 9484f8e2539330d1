"""LDAP over StartTLS and LDAPS against a real slapd with its own CA: logins work when the directory proves
who it is, and a directory that cannot (another CA, no CA given, a certificate for another name) is never
sent a password. The authenticator is built from the rendered hub config, as the hub builds it."""

import json

import pytest
from tornado import web
from traitlets.config import Config as TraitletsConfig

from ldap_server import GROUPS, USERS, Slapd, make_ca
from pangeohub.auth.ldap import PangeoLDAPAuthenticator
from pangeohub.auth.render import render_auth
from pangeohub.config import parse_config
from pangeohub.paths import StatePaths
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform
PASSWORD = "alice-pw-tls"


@pytest.fixture(scope="module")
def slapd():
    server = Slapd(tls=True).start()
    try:
        server.add_user("alice", PASSWORD)
        server.add_group("oceans", ["alice"])
        yield server
    finally:
        server.stop()


def login(slapd, tmp_path, tls: str, host: str = "localhost", ca=None):
    """The outcome of alice's login: her groups, or the HTTP status the person is shown."""
    port = slapd.tls_port if tls == "ldaps" else slapd.port
    ldap = {"server_address": host, "server_port": port, "tls": tls, "group_search_base": GROUPS,
            "bind_dn_templates": [f"uid={{username}},{USERS}"], **({"ca_file": str(ca)} if ca else {})}
    config = parse_config(json.dumps({"auth": {"mode": "ldap", "ldap": ldap}}))
    auth = PangeoLDAPAuthenticator(config=TraitletsConfig(render_auth(config, StatePaths(tmp_path))))
    try:
        user = run_sync(auth.get_authenticated_user(None, {"username": "alice", "password": PASSWORD}))
    except web.HTTPError as exc:
        assert auth.store.failures("alice", 900) == 0  # the directory's fault, not a failed login of hers
        return exc.status_code
    return user["groups"] if user else None


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_login_over_tls_with_the_directorys_ca(slapd, tmp_path, tls):
    assert "oceans" in login(slapd, tmp_path, tls, ca=slapd.ca)


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_a_directory_signed_by_another_ca_gets_no_password(slapd, tmp_path, tls):
    impostor_ca = make_ca(tmp_path, "other-ca")
    assert login(slapd, tmp_path, tls, ca=impostor_ca) == 503


def test_a_private_ca_is_not_trusted_unless_configured(slapd, tmp_path):
    assert login(slapd, tmp_path, "starttls") == 503  # the system's CAs only


def test_the_certificate_must_name_the_server_address(slapd, tmp_path):
    # Same CA, but the certificate is for 'localhost' and the hub was told '127.0.0.1'.
    assert login(slapd, tmp_path, "starttls", host="127.0.0.1", ca=slapd.ca) == 503
