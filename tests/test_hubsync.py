"""The platform's own accounts are hub users at once, with the same admin flag and groups as in the store."""

import json
import urllib.error
import urllib.request

import pytest

from pangeohub.hubapi import HubAPI

pytestmark = pytest.mark.platform


def _request(platform, method: str, path: str, token: str) -> int:
    request = urllib.request.Request(f"{platform.url}/hub/api{path}", method=method, data=b"{}" if method == "POST" else None,
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_installers_admin_can_start_another_persons_server_with_a_script(fresh_platform):
    hub = fresh_platform
    hub.config_data["hub"]["admin_users"] = []  # as installed: the first admin is made in the account store
    hub.config_path.write_text(json.dumps(hub.config_data))
    hub.up()
    alice, _ = hub.add_user("alice")
    token = hub.cli("token").stdout.strip()  # the installer's admin's, by default
    assert _request(hub, "POST", f"/users/{alice}/server", token) in (201, 202)
    api = HubAPI(hub.rt)
    assert api.user("admin")["admin"] is True
    api.stop_server(alice)


def test_store_accounts_are_hub_users_at_once_with_admin_flag_and_groups(platform):
    api = HubAPI(platform.rt)
    assert api.user("boss")["admin"] is True  # hub.admin_users
    name, _ = platform.add_user()
    platform.cli("users", "add", f"{name}g", "--group", "lab", "--group", "field")
    model = api.user(f"{name}g")
    assert sorted(model["groups"]) == ["field", "lab"] and model["admin"] is False

    platform.cli("users", "admin", name)
    assert api.user(name)["admin"] is True
    platform.cli("users", "admin", name, "--revoke")
    assert api.user(name)["admin"] is False


def test_workshop_accounts_are_in_the_admin_panel_at_once(platform, tmp_path):
    out = platform.cli("users", "generate", "--count", "2", "--prefix", "hsw", "--out", str(tmp_path)).stdout
    names = {user["name"] for user in HubAPI(platform.rt).users()}
    assert {"hsw01", "hsw02"} <= names, out
    for name in ("hsw01", "hsw02"):
        platform.cli("users", "remove", name)
    assert not {"hsw01", "hsw02"} & {user["name"] for user in HubAPI(platform.rt).users()}


def test_accounts_made_while_the_hub_was_down_are_hub_users_when_it_starts(fresh_platform):
    hub = fresh_platform
    hub.up()
    hub.down()
    name, _ = hub.add_user()
    hub.cli("users", "admin", name)
    hub.up()
    assert HubAPI(hub.rt).user(name)["admin"] is True
