"""LDAP / FreeIPA logins against a real slapd with a FreeIPA-like tree: access by group, admin by group,
directory groups as hub groups, and changes in the directory taking effect at the next login."""

import json
import time

import pytest
from traitlets.config import Config as TraitletsConfig

from access_helpers import logged_in, login_outcome, login_token, session, status, token_works
from harness import Platform
from ldap_server import GROUPS, ROOT_DN, USERS, Slapd
from pangeohub.auth.ldap import PangeoLDAPAuthenticator
from pangeohub.hubapi import HubAPI
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform
PEOPLE = {"alice": "alice-pw-1", "bob": "bob-pw-12", "carol": "carol-pw-1", "dave": "dave-pw-12",
          "erin": "erin-pw-12"}


@pytest.fixture(scope="module")
def slapd():
    server = Slapd().start()
    try:
        for uid, password in PEOPLE.items():
            server.add_user(uid, password)
        server.add_group("cluster_notebook_users", ["alice", "dave", "erin"])
        server.add_group("oceans", ["alice"])
        server.add_group("hubadmins", ["carol"])
        yield server
    finally:
        server.stop()


def ldap_settings(slapd, **extra) -> dict:
    return {"server_address": "127.0.0.1", "server_port": slapd.port, "tls": "none",
            "group_search_base": GROUPS, "allowed_groups": ["cluster_notebook_users"], **extra}


@pytest.fixture(scope="module")
def hub(slapd):
    platform = Platform(extra={"auth": {
        "mode": "ldap", "admin_groups": ["hubadmins"], "failed_login_limit": 3,
        "ldap": ldap_settings(slapd, bind_dn_templates=[f"uid={{username}},{USERS}"]),
    }})
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def test_group_member_logs_in_runs_as_own_linux_account_with_directory_groups(hub):
    async def go():
        async with UserSim(hub.url, "alice", password=PEOPLE["alice"], timeout=300) as user:
            await user.login()
            await user.start_server()
            return (await user.run("import getpass; print(getpass.getuser())")).stdout.strip()

    assert run_sync(go()) == hub.prefix + "alice"
    model = HubAPI(hub.rt).user("alice")
    assert set(model["groups"]) == {"cluster_notebook_users", "oceans"} and not model["admin"]


def test_refusals_look_the_same_not_in_group_wrong_password_unknown_user(hub):
    unknown = login_outcome(hub.url, "mallory", "whatever-pw")
    assert unknown != "accepted"
    assert login_outcome(hub.url, "bob", PEOPLE["bob"]) == unknown  # right password, not in the group
    assert login_outcome(hub.url, "alice", "wrong-password") == unknown
    assert login_outcome(hub.url, "alice", "") == unknown  # no anonymous bind
    assert login_outcome(hub.url, "*)(uid=*", "x") == unknown  # no filter injection
    assert HubAPI(hub.rt).user("bob") is None


def test_admin_group_member_becomes_hub_admin_and_users_list_shows_it(hub):
    login_token(hub.url, "carol", PEOPLE["carol"])  # in hubadmins, not in the access group
    assert HubAPI(hub.rt).user("carol")["admin"] is True
    listed = {r["name"]: r for r in json.loads(hub.cli("users", "list", "--json").stdout)}
    assert listed["carol"]["admin"] and listed["carol"]["groups"] == ["hubadmins"]


def test_removed_from_the_group_loses_access_at_next_login(hub, slapd):
    assert login_outcome(hub.url, "dave", PEOPLE["dave"]) == "accepted"
    slapd.remove_member("cluster_notebook_users", "dave")
    assert login_outcome(hub.url, "dave", PEOPLE["dave"]) != "accepted"


def test_hub_groups_follow_the_directory_at_next_login(hub, slapd):
    slapd.add_group("glaciers", ["alice"])
    slapd.remove_member("oceans", "alice")
    login_token(hub.url, "alice", PEOPLE["alice"])
    assert set(HubAPI(hub.rt).user("alice")["groups"]) == {"cluster_notebook_users", "glaciers"}


@pytest.fixture(scope="module")
def checking_hub(slapd, tmp_path_factory):
    """A hub with no admin groups, whose search account re-checks people every second."""
    secret = tmp_path_factory.mktemp("ldap-search") / "password"
    secret.write_text(slapd.root_pw + "\n")
    secret.chmod(0o600)
    platform = Platform(extra={"auth": {
        "mode": "ldap", "refresh_interval": "1s",
        "ldap": ldap_settings(slapd, bind_dn_templates=[f"uid={{username}},{USERS}"], search_user_dn=ROOT_DN,
                              search_password_file=str(secret)),
    }})
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def test_an_admin_flag_from_another_mode_does_not_survive_an_ldap_login(checking_hub):
    HubAPI(checking_hub.rt).ensure_user("alice", admin=True)  # as password mode left it
    login_token(checking_hub.url, "alice", PEOPLE["alice"])
    assert HubAPI(checking_hub.rt).user("alice")["admin"] is False


def test_leaving_the_group_ends_tokens_and_sessions_at_the_next_refresh(checking_hub, slapd):
    slapd.add_user("frank", "frank-pw-12")
    slapd.ldif("ldapmodify", f"dn: cn=cluster_notebook_users,{GROUPS}\nchangetype: modify\nadd: member\n"
                             f"member: uid=frank,{USERS}\n")
    checking_hub.passwords["frank"] = "frank-pw-12"
    token, cookies = session(checking_hub, "frank")
    assert token_works(checking_hub, "frank", token) and logged_in(checking_hub, cookies)
    slapd.remove_member("cluster_notebook_users", "frank")
    time.sleep(1.5)  # past auth.refresh_interval: the next request refreshes
    status(f"{checking_hub.url}/hub/api/user", token=token)  # the refresh that finds frank gone
    assert not token_works(checking_hub, "frank", token)
    assert not logged_in(checking_hub, cookies)
    assert login_outcome(checking_hub.url, "frank", "frank-pw-12") != "accepted"


def test_repeated_wrong_passwords_lock_the_name(hub):
    for _ in range(3):
        assert login_outcome(hub.url, "erin", "wrong-password") != "accepted"
    assert login_outcome(hub.url, "erin", PEOPLE["erin"]) != "accepted"  # locked, even with the right one
    hub.cli("users", "list")  # the hub still answers everybody else
    assert login_outcome(hub.url, "alice", PEOPLE["alice"]) == "accepted"


def test_search_mode_finds_the_dn_then_binds(slapd, tmp_path):
    """Without bind-DN templates: search for the person's DN (anonymous search is refused by this
    directory, as on FreeIPA, so a search account is used), then bind as them."""
    slapd.add_user("searcher", "searcher-pw")
    (tmp_path / "pw").write_text("searcher-pw\n")
    from pangeohub.auth.render import render_auth
    from pangeohub.config import parse_config
    from pangeohub.paths import StatePaths

    config = parse_config(json.dumps({"auth": {"mode": "ldap", "admin_groups": ["hubadmins"], "ldap": ldap_settings(
        slapd, user_search_base=USERS, search_user_dn=f"uid=searcher,{USERS}",
        search_password_file=str(tmp_path / "pw"))}}))
    rendered = render_auth(config, StatePaths(tmp_path))
    auth = PangeoLDAPAuthenticator(config=TraitletsConfig(rendered))

    async def login(name, password):
        return await auth.get_authenticated_user(None, {"username": name, "password": password})

    alice = run_sync(login("alice", PEOPLE["alice"]))
    assert alice["name"] == "alice" and "cluster_notebook_users" in alice["groups"]
    assert run_sync(login("alice", "wrong")) is None
    assert run_sync(login("nobody", "x-password")) is None
    assert run_sync(login("bob", PEOPLE["bob"])) is None
    assert run_sync(login("carol", PEOPLE["carol"]))["admin"] is True


def test_an_unresponsive_directory_does_not_freeze_the_hub(tmp_path):
    """A directory that accepts connections and never answers: the login waits, the hub's loop does not;
    when the directory goes away the person is told it cannot be reached (the same for every name)."""
    import asyncio
    import socket

    from tornado import web

    from pangeohub.auth.render import render_auth
    from pangeohub.config import parse_config
    from pangeohub.paths import StatePaths

    hole = socket.socket()  # listens (the kernel completes connections) but never accepts nor answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    config = parse_config(json.dumps({"auth": {"mode": "ldap", "ldap": {
        "server_address": "127.0.0.1", "server_port": hole.getsockname()[1], "tls": "none",
        "bind_dn_templates": [f"uid={{username}},{USERS}"]}}}))
    auth = PangeoLDAPAuthenticator(config=TraitletsConfig(render_auth(config, StatePaths(tmp_path))))

    async def go():
        login = asyncio.ensure_future(auth.get_authenticated_user(None, {"username": "alice", "password": "pw"}))
        ticks = 0
        while ticks < 20 and not login.done():  # the loop keeps turning while the bind hangs
            await asyncio.sleep(0.05)
            ticks += 1
        pending = not login.done()
        hole.close()  # pending connections are reset
        try:
            await asyncio.wait_for(login, 60)
        except web.HTTPError as exc:
            return pending, ticks, exc.status_code
        return pending, ticks, "no error"

    assert run_sync(go()) == (True, 20, 503)
    assert auth.store.failures("alice", 900) == 0  # an outage is nobody's failed login
