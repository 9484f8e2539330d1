"""GitHub logins, the whole OAuth dance against a local stand-in for GitHub: organisation/team access,
an admin team, teams as hub groups, and a person dropped from a team losing access at the next login and, while
they use the hub, at the next refresh."""

import json
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from access_helpers import logged_in, status, token_works
from github_standin import GitHubStandIn
from harness import Platform
from pangeohub.auth.github import team_groups
from pangeohub.hubapi import HubAPI
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform
CLIENT_ID = "pangeohub-test"
CLIENT_SECRET = "s3cret-of-the-oauth-app"


@pytest.fixture(scope="module")
def github():
    people = {
        "ana": {"teams": {("pangeo", "workshop"), ("pangeo", "oceans")}},
        "ben": {"orgs": {"pangeo"}},  # in the organisation, not in the team
        "Cat": {"teams": {("pangeo", "hub-admins")}},  # only in the admin team; GitHub names have capitals
        "9lives": {"teams": {("pangeo", "workshop")}},  # a fine GitHub login, not a Linux name
        "dan": {"teams": {("pangeo", "workshop")}},
    }
    server = GitHubStandIn(CLIENT_ID, CLIENT_SECRET, people).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hub(github, tmp_path_factory):
    secret = tmp_path_factory.mktemp("gh") / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    platform = Platform(extra={"auth": {
        "mode": "github", "admin_groups": ["pangeo:hub-admins"], "refresh_interval": "1s",
        "github": {"client_id": CLIENT_ID, "client_secret_file": str(secret), "url": github.url,
                   "allowed_organizations": ["pangeo:workshop"]},
    }})
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def oauth_login(hub, login: str) -> int:
    """Follow the browser's redirects: hub -> GitHub (where ``login`` signs in) -> hub callback.
    Returns the callback's status: 302 into the hub when accepted."""

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False) as resp:
                assert resp.status == 302, await resp.text()
                authorize = resp.headers["Location"]
            async with session.get(f"{authorize}&{urlencode({'login': login})}", allow_redirects=False) as resp:
                callback = resp.headers["Location"]
            async with session.get(callback, allow_redirects=False) as resp:
                if resp.status != 302:
                    return resp.status
            async with session.get(f"{hub.url}/hub/home", allow_redirects=False) as resp:
                return 302 if resp.status == 200 else resp.status

    return run_sync(go())


def test_team_member_logs_in_with_teams_as_hub_groups(hub):
    assert oauth_login(hub, "ana") == 302
    model = HubAPI(hub.rt).user("ana")
    assert set(model["groups"]) == {"pangeo:workshop", "pangeo:oceans"} and not model["admin"]


def test_organisation_member_outside_the_allowed_team_is_refused(hub):
    assert oauth_login(hub, "ben") == 403
    assert HubAPI(hub.rt).user("ben") is None


def test_admin_team_member_is_an_admin_and_users_list_shows_it(hub):
    assert oauth_login(hub, "Cat") == 302
    assert HubAPI(hub.rt).user("cat")["admin"] is True  # GitHub's 'Cat' is hub user 'cat'
    listed = {r["name"]: r for r in json.loads(hub.cli("users", "list", "--json").stdout)}
    assert listed["cat"]["admin"] and listed["cat"]["groups"] == ["pangeo:hub-admins"]


def test_login_that_is_not_a_linux_name_is_refused(hub):
    assert oauth_login(hub, "9lives") == 403
    assert HubAPI(hub.rt).user("9lives") is None


def test_dropped_from_the_team_loses_access_at_next_login(hub, github):
    assert oauth_login(hub, "dan") == 302
    github.people["dan"]["teams"] = set()
    assert oauth_login(hub, "dan") == 403


def hub_session(hub, login: str) -> tuple[str, str]:
    """Log in as ``login`` through GitHub: (an API token made with the session, the session's cookies)."""

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False) as resp:
                authorize = resp.headers["Location"]
            async with session.get(f"{authorize}&{urlencode({'login': login})}", allow_redirects=False) as resp:
                callback = resp.headers["Location"]
            async with session.get(callback, allow_redirects=False) as resp:
                assert resp.status == 302, await resp.text()
            async with session.get(f"{hub.url}/hub/home") as resp:
                assert resp.status == 200
            xsrf = next(c.value for c in session.cookie_jar if c.key == "_xsrf")
            async with session.post(f"{hub.url}/hub/api/users/{login}/tokens", json={"note": "script"},
                                    headers={"X-XSRFToken": xsrf, "Referer": f"{hub.url}/hub/"}) as resp:
                assert resp.status == 201, await resp.text()
                token = (await resp.json())["token"]
            return token, "; ".join(f"{c.key}={c.value}" for c in session.cookie_jar)

    return run_sync(go())


def test_leaving_the_organisation_ends_tokens_and_sessions_at_the_next_refresh(hub, github):
    github.people["eve"] = {"teams": {("pangeo", "workshop")}}
    token, cookies = hub_session(hub, "eve")
    assert token_works(hub, "eve", token) and logged_in(hub, cookies)
    github.people["eve"]["teams"] = set()
    time.sleep(1.5)  # past auth.refresh_interval: the next request refreshes
    status(f"{hub.url}/hub/api/user", token=token)  # the refresh that finds eve gone
    assert not token_works(hub, "eve", token)
    assert not logged_in(hub, cookies)


def test_team_names_are_org_colon_slug():
    state = {"teams": [{"slug": "Hub-Admins", "organization": {"login": "Pangeo"}}]}
    assert team_groups(state) == {"pangeo:hub-admins"} and team_groups({}) == set()
