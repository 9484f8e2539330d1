"""An ended account ends everywhere, at once: what a token, a session cookie, a server, a Dask cluster and a
process of the person made BEFORE the event can still do after `users expire`, `users passwd` and logout.

Everything is tried as the person would, through the public surfaces: the hub's REST API with their token, the
hub's pages with their cookie, the gateway's REST API and client with their token."""

import json
import time

import pytest

from access_helpers import daemon, logged_in, login_outcome, processes_of, session, status, token_works
from pangeohub.accounts import AccountStore
from pangeohub.hubapi import HubAPI
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform
GATEWAY = "/services/dask-gateway/api/v1/clusters/"


def mints(platform, name: str, token: str) -> int:
    return status(f"{platform.url}/hub/api/users/{name}/tokens", "POST", token=token, body={"note": "more"})[0]


def gateway_status(platform, token: str) -> tuple[int, str]:
    return status(f"{platform.url}{GATEWAY}", token=token, gateway=True)


def start_cluster(platform, token: str) -> str:
    code, body = status(f"{platform.url}{GATEWAY}", "POST", token=token, gateway=True, body={"cluster_options": {}})
    assert code == 201, (code, body)
    return json.loads(body)["name"]


def test_expire_ends_tokens_sessions_servers_clusters_and_processes(platform):
    name, server_token = platform.started_user()
    token, cookies = session(platform, name)
    cluster = start_cluster(platform, token)
    daemon(platform, name)
    assert token_works(platform, name, token) and token_works(platform, name, server_token)
    assert logged_in(platform, cookies) and gateway_status(platform, token)[0] == 200

    out = platform.cli("users", "expire", name).stdout
    assert "ended 1 account(s)" in out, out

    assert not token_works(platform, name, token) and not token_works(platform, name, server_token)
    assert mints(platform, name, token) in (401, 403)
    assert not logged_in(platform, cookies)
    assert gateway_status(platform, token)[0] in (401, 403)
    assert not HubAPI(platform.rt).user(name)["servers"]
    listed = json.loads(platform.cli("clusters", "list", "--json").stdout)
    assert cluster not in [c["name"] for c in listed if c["status"] not in ("stopping", "stopped")]
    assert not processes_of(platform, name)
    assert platform.system_user(name)  # the Linux account and home are kept


def test_gateway_refuses_an_account_past_its_date_even_with_a_live_token(platform):
    name, _ = platform.add_user()
    token, _ = session(platform, name)
    assert gateway_status(platform, token)[0] == 200
    AccountStore(platform.rt.paths.accounts_db).set_expires(name, time.time())  # the date passes, nothing else
    code, body = gateway_status(platform, token)
    assert code == 403, (code, body)
    from dask_gateway import Gateway, JupyterHubAuth

    with Gateway(f"{platform.url}/services/dask-gateway", auth=JupyterHubAuth(api_token=token)) as gateway:
        with pytest.raises(Exception, match="403|has ended"):
            gateway.new_cluster()


def test_passwd_ends_the_other_sessions_unless_told_to_keep_them(platform):
    name, _ = platform.add_user()
    token, cookies = session(platform, name)
    platform.cli("users", "passwd", name, "--password-stdin", "--keep-sessions", input="kept-sessions-pw\n")
    assert token_works(platform, name, token) and logged_in(platform, cookies)

    platform.cli("users", "passwd", name, "--password-stdin", input="a-new-password\n")
    assert not token_works(platform, name, token)
    assert mints(platform, name, token) in (401, 403)
    assert not logged_in(platform, cookies)
    platform.passwords[name] = "a-new-password"
    assert token_works(platform, name, session(platform, name)[0])  # the owner logs in with the new one


def test_logout_ends_the_session_on_the_server(platform):
    name, _ = platform.add_user()

    async def go():
        async with platform.sim(name) as sim:
            await sim.login()
            copied = "; ".join(f"{c.key}={c.value}" for c in sim.session.cookie_jar)
            async with sim.session.get(f"{platform.url}/hub/logout", allow_redirects=False) as resp:
                assert resp.status == 302
            return copied

    copied = run_sync(go())
    assert not logged_in(platform, copied)
    fresh_token, fresh = session(platform, name)
    assert logged_in(platform, fresh)  # logging in again works


def test_remove_with_kept_home_ends_everything_too(platform):
    name, _ = platform.add_user()
    token, cookies = session(platform, name)
    daemon(platform, name)
    platform.cli("users", "remove", name, "--keep-home")
    assert not token_works(platform, name, token) and not logged_in(platform, cookies)
    assert gateway_status(platform, token)[0] in (401, 403)
    assert not processes_of(platform, name)
    assert platform.system_user(name)


def test_the_account_api_says_who_may_use_the_platform(platform):
    name, _ = platform.add_user()
    api = HubAPI(platform.rt)
    assert api.request("GET", f"/pangeohub/users/{name}/account")["usable"] is True
    platform.cli("users", "expire", name)
    assert api.request("GET", f"/pangeohub/users/{name}/account")["usable"] is False
    assert login_outcome(platform.url, name, platform.passwords[name]) != "accepted"
