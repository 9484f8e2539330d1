"""Sign-up with approval, as applicants and reviewing admins see it: the form, the review page, the CLI."""

import re
import time

import aiohttp
import pytest

from access_helpers import login_outcome, login_token
from harness import Platform
from pangeohub.accounts import AccountStore
from pangeohub.hubapi import HubAPI
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform
MAX_PENDING = 6


@pytest.fixture(scope="module")
def hub():
    platform = Platform(extra={"auth": {"mode": "signup", "admin_groups": ["staff"], "expiry_check_interval": "1s",
                                        "signup": {"max_pending": MAX_PENDING}}})
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


async def _form(session, url: str, data: dict) -> tuple[int, str]:
    async with session.get(url) as resp:
        page = await resp.text()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    async with session.post(url, data={**data, "_xsrf": xsrf}) as resp:
        return resp.status, await resp.text()


def apply(hub, name: str, password: str = "a-good-password", **changes) -> tuple[int, str]:
    data = {"username": name, "email": f"{name}@example.org", "password": password, "password2": password,
            "info": "ocean heat content", **changes}

    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            return await _form(session, f"{hub.url}/hub/signup", data)

    return run_sync(go())


def test_login_page_links_to_the_sign_up_form(hub):
    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{hub.url}/hub/login") as resp:
                return await resp.text()

    assert "/hub/signup" in run_sync(go())


def test_applicant_cannot_log_in_or_spawn_until_an_admin_approves_on_the_review_page(hub):
    status, page = apply(hub, "newbie")
    assert status == 200 and "application was received" in page
    assert "newbie" in hub.cli("users", "pending").stdout
    assert login_outcome(hub.url, "newbie", "a-good-password") == login_outcome(hub.url, "nobody", "a-good-password")

    api = HubAPI(hub.rt)  # not even an admin can start a pending person's server
    api.ensure_user("newbie")
    with pytest.raises(Exception, match="403"):
        api.request("POST", "/users/newbie/server")

    boss, boss_pw = hub.add_user("reviewer")
    hub.cli("users", "remove", "reviewer")
    hub.cli("users", "add", "reviewer", "--group", "staff", "--password-stdin", input=boss_pw + "\n")

    async def review():
        async with UserSim(hub.url, "reviewer", password=boss_pw) as sim:
            await sim.login()  # admin through the 'staff' group (auth.admin_groups)
            async with sim.session.get(f"{hub.url}/hub/signup/review") as resp:
                listing = await resp.text()
            return listing, await _form(sim.session, f"{hub.url}/hub/signup/review",
                                        {"username": "newbie", "action": "approve"})

    listing, (status, page) = run_sync(review())
    assert 'data-username="newbie"' in listing and "ocean heat content" in listing
    assert status == 200 and "newbie: approved" in page
    assert HubAPI(hub.rt).user("reviewer")["admin"] is True
    assert login_outcome(hub.url, "newbie", "a-good-password") == "accepted"


def test_review_page_is_for_admins_only(hub):
    name, password = hub.add_user()
    token = login_token(hub.url, name, password)

    async def go():
        async with UserSim(hub.url, name, password=password) as sim:
            await sim.login()
            async with sim.session.get(f"{hub.url}/hub/signup/review") as resp:
                return resp.status

    assert token and run_sync(go()) == 403


def test_cli_approves_and_denies(hub):
    apply(hub, "keen")
    apply(hub, "spammer")
    hub.cli("users", "approve", "keen")
    hub.cli("users", "deny", "spammer")
    assert "spammer" not in hub.cli("users", "pending").stdout
    assert login_outcome(hub.url, "keen", "a-good-password") == "accepted"
    assert login_outcome(hub.url, "spammer", "a-good-password") != "accepted"
    proc = hub.cli("users", "approve", "spammer", check=False)
    assert proc.returncode != 0 and "no pending application named 'spammer'" in proc.stderr


def test_applying_for_a_taken_name_changes_nothing_and_says_nothing(hub):
    name, password = hub.add_user()
    status, page = apply(hub, name, password="an-attackers-password")
    assert status == 200 and "application was received" in page  # same page as a fresh name
    assert name not in hub.cli("users", "pending").stdout
    assert login_outcome(hub.url, name, password) == "accepted"
    assert login_outcome(hub.url, name, "an-attackers-password") != "accepted"
    status, page = apply(hub, "boss")  # an admin_users name that has no account yet
    assert "boss" not in hub.cli("users", "pending").stdout


@pytest.mark.parametrize("changes, message", [
    ({"username": "Root"}, "is not allowed"),
    ({"username": "daemon"}, "existing system account"),
    ({"email": "not-an-address"}, "is not an e-mail address"),
    ({"password": "short", "password2": "short"}, "at least 8 are needed"),
    ({"password2": "something-else"}, "The two passwords differ"),
    ({"info": ""}, "Please answer: What will you work on?"),
])
def test_bad_sign_up_input_is_explained_on_the_form(hub, changes, message):
    status, page = apply(hub, "formtest", **changes)
    assert status == 400 and message in page.replace("&#39;", "'")
    assert "formtest" not in hub.cli("users", "pending").stdout


def test_a_sign_up_flood_is_turned_away_once_the_queue_is_full(hub):
    names = [f"flood{i}" for i in range(MAX_PENDING + 1)]
    results = [apply(hub, n) for n in names]
    assert results[-1][0] == 503 and "Sign-ups are closed for now" in results[-1][1]
    for name in hub.cli("users", "pending").stdout.split("\n"):
        if name.startswith("flood"):
            hub.cli("users", "deny", name.split()[0])
    assert apply(hub, "latecomer")[0] == 200


def test_servers_of_accounts_past_their_date_are_stopped_by_the_hub(hub):
    name, _ = hub.started_user()
    api = HubAPI(hub.rt)
    assert api.user(name)["servers"]
    AccountStore(hub.rt.paths.accounts_db).set_expires(name, time.time())  # the date passes
    for _ in range(600):
        if not api.user(name)["servers"]:
            break
        time.sleep(0.2)
    assert not api.user(name)["servers"]
    assert hub.system_user(name)  # the Linux account and home stay
    assert login_outcome(hub.url, name, hub.passwords[name]) != "accepted"


def test_admin_users_stay_admins_when_admin_groups_are_configured(hub):
    hub.add_user("boss")  # in hub.admin_users, not in the 'staff' group
    login_token(hub.url, "boss", hub.passwords["boss"])
    assert HubAPI(hub.rt).user("boss")["admin"] is True
