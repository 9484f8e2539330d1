"""Password mode as organisers and attendees see it: workshop accounts handed out on cards, ended after the
workshop; refusals that never tell whether an account exists; the admin panel."""

import csv
import json
import os

import aiohttp
import pytest

from access_helpers import login_outcome, login_token
from pangeohub.hubapi import HubAPI
from pangeohub.storage.credentials import CredentialStore
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform


def test_workshop_accounts_log_in_until_expired_then_servers_stop_and_homes_stay(platform, tmp_path):
    prefix = f"w{os.urandom(2).hex()}"
    out = platform.cli("users", "generate", "--count", "3", "--prefix", prefix, "--expires", "3d",
                       "--out", str(tmp_path)).stdout
    assert f"created 3 accounts {prefix}01 .. {prefix}03" in out
    rows = list(csv.DictReader(next(tmp_path.glob("*.csv")).open()))
    sheet = next(tmp_path.glob("*.html")).read_text()
    assert [r["username"] for r in rows] == [f"{prefix}01", f"{prefix}02", f"{prefix}03"]
    assert all(r["password"] in sheet and r["username"] in sheet for r in rows)
    assert platform.url.replace("http://", "") in rows[0]["hub_url"] or rows[0]["hub_url"].startswith("http")
    # Prepared in advance, so that the opening minute only starts servers: Linux accounts and scratch keys.
    keys = CredentialStore(platform.rt.paths.root)
    for row in rows:
        assert platform.system_user(row["username"]).pw_dir
        assert keys.get(row["username"]) is not None
    first = rows[0]

    async def work():
        async with UserSim(platform.url, first["username"], password=first["password"]) as user:
            await user.login()
            await user.start_server()
            return (await user.run("open('kept.txt','w').write('x'); import os; print(os.getcwd())")).stdout

    home = run_sync(work()).strip()
    api = HubAPI(platform.rt)
    assert api.user(first["username"])["servers"]

    out = platform.cli("users", "expire", "--prefix", prefix).stdout
    assert "ended 3 account(s): stopped 1 server(s)" in out and "homes kept" in out
    assert not api.user(first["username"])["servers"]
    assert os.path.exists(os.path.join(home, "kept.txt"))  # the home is kept
    refused = login_outcome(platform.url, first["username"], first["password"])
    assert refused != "accepted"
    assert refused == login_outcome(platform.url, "nosuchperson", "whatever-password")
    listed = {r["name"]: r for r in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert listed[first["username"]]["status"] == "expired"


def test_an_expired_person_cannot_start_a_server_with_an_old_token(platform):
    name, password = platform.add_user()
    token = login_token(platform.url, name, password)
    platform.cli("users", "expire", name)

    async def start_again():
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{platform.url}/hub/api/users/{name}/server",
                                    headers={"Authorization": f"token {token}"}) as resp:
                return resp.status

    assert run_sync(start_again()) in (403, 401)
    assert not HubAPI(platform.rt).user(name)["servers"]


def test_an_ended_account_is_extended_and_logs_in_again_to_its_home(platform, tmp_path):
    prefix = f"x{os.urandom(2).hex()}"
    platform.cli("users", "generate", "--count", "2", "--prefix", prefix, "--expires", "1d", "--out", str(tmp_path))
    rows = list(csv.DictReader(next(tmp_path.glob("*.csv")).open()))
    name, password = rows[0]["username"], rows[0]["password"]
    home = platform.system_user(name).pw_dir
    platform.cli("users", "expire", "--prefix", prefix)
    assert login_outcome(platform.url, name, password) != "accepted"

    # Bad input changes nothing: a date in the past, or nobody named.
    past = platform.cli("users", "extend", name, "--until", "2020-01-01", check=False)
    assert past.returncode != 0 and "'2020-01-01' is in the past" in past.stderr + past.stdout
    nobody = platform.cli("users", "extend", "--until", "3d", check=False)
    assert nobody.returncode != 0 and "name them, or give --prefix" in nobody.stderr + nobody.stdout
    assert login_outcome(platform.url, name, password) != "accepted"

    out = platform.cli("users", "extend", name, "--until", "2d").stdout
    assert "extended 1 account(s) until" in out
    assert login_outcome(platform.url, name, password) == "accepted"
    assert platform.system_user(name).pw_dir == home  # the same account and home as before
    listed = {r["name"]: r for r in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert listed[name]["status"] == "active"
    assert listed[rows[1]["username"]]["status"] == "expired"  # only the one named
    platform.cli("users", "extend", "--prefix", prefix, "--until", "never")
    assert login_outcome(platform.url, rows[1]["username"], rows[1]["password"]) == "accepted"


@pytest.mark.parametrize("name", ["daemon", "root", "Robert'); DROP", "../../etc", "a" * 40, "-rf"])
def test_names_that_are_not_safe_linux_names_are_refused_like_any_wrong_login(platform, name):
    assert login_outcome(platform.url, name, "some-password") == login_outcome(
        platform.url, "nosuchperson", "some-password")


def test_cli_refuses_bad_usernames_with_a_clear_message(platform):
    proc = platform.cli("users", "add", "Bad Name", "--password-stdin", input="long-enough-pw\n", check=False)
    assert proc.returncode != 0 and "is not allowed" in proc.stderr and "fix:" in proc.stderr


def test_admin_panel_lists_users_starts_and_stops_servers_and_grants_admin(platform):
    admin, admin_pw = platform.add_user(admin=True)
    other, _ = platform.add_user()
    HubAPI(platform.rt).ensure_user(other)

    async def as_admin():
        async with UserSim(platform.url, admin, password=admin_pw) as sim:
            await sim.login()
            async with sim.session.get(f"{platform.url}/hub/admin") as resp:
                page = resp.status, await resp.text()
            users = await sim._json("GET", f"{platform.url}/hub/api/users")
            # What the panel's buttons do: start and stop somebody else's server, make them admin.
            await sim._json("POST", f"{platform.url}/hub/api/users/{other}/server")
            started = await _wait(sim, other, ready=True)
            await sim._json("DELETE", f"{platform.url}/hub/api/users/{other}/server")
            stopped = await _wait(sim, other, ready=False)
            patched = await sim._json("PATCH", f"{platform.url}/hub/api/users/{other}", json={"admin": True})
            return page, users, started, stopped, patched

    (status, html), users, started, stopped, patched = run_sync(as_admin())
    assert status == 200 and "admin" in html.lower()
    assert {admin, other} <= {u["name"] for u in users}
    assert started and stopped and patched["admin"] is True
    listed = {r["name"]: r for r in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert listed[other]["admin"] and listed[admin]["admin"]


async def _wait(sim, name, ready: bool, attempts: int = 300):
    import asyncio

    for _ in range(attempts):
        model = await sim._json("GET", f"{sim.base}/hub/api/users/{name}")
        server = model["servers"].get("")
        if (bool(server and server.get("ready")) if ready else not server):
            return True
        await asyncio.sleep(0.2)
    return False
