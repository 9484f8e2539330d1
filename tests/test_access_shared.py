"""Shared-password demos: one password for everybody, a separate one for admins, still Linux-safe names
and a lockout."""

import re

import pytest

from access_helpers import login_outcome
from harness import Platform
from pangeohub.hubapi import HubAPI

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def hub():
    platform = Platform(extra={"auth": {"mode": "shared", "failed_login_limit": 3}})
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def passwords(hub) -> tuple[str, str]:
    out = hub.cli("users", "shared-password").stdout
    return re.search(r"^password:\s+(\S+)", out, re.M).group(1), re.search(r"admin password:\s+(\S+)", out).group(1)


def test_anyone_with_the_password_logs_in_under_a_valid_name(hub):
    user_pw, _ = passwords(hub)
    assert login_outcome(hub.url, "demo1", user_pw) == "accepted"
    unknown = login_outcome(hub.url, "demo2", "not-the-password")
    assert unknown != "accepted"
    assert login_outcome(hub.url, "daemon", user_pw) == unknown
    assert login_outcome(hub.url, "Bad Name", user_pw) == unknown


def test_admins_need_the_admin_password(hub):
    user_pw, admin_pw = passwords(hub)
    assert login_outcome(hub.url, "boss", user_pw) != "accepted"
    assert login_outcome(hub.url, "boss", admin_pw) == "accepted"
    assert HubAPI(hub.rt).user("boss")["admin"] is True
    assert login_outcome(hub.url, "demo3", admin_pw) != "accepted"


def test_repeated_wrong_passwords_lock_the_name(hub):
    user_pw, _ = passwords(hub)
    for _ in range(3):
        login_outcome(hub.url, "demo4", "wrong-password")
    assert login_outcome(hub.url, "demo4", user_pw) != "accepted"


def test_shared_password_command_is_refused_in_other_modes(platform):
    proc = platform.cli("users", "shared-password", check=False)
    assert proc.returncode != 0 and "set auth.mode: shared" in proc.stderr


def test_a_store_admins_name_gives_no_admin_right_to_whoever_logs_in_with_the_shared_password(hub):
    # Attack: the store holds an admin (e.g. the installer's), but people log in with the shared password here;
    # its admin flag must not reach the hub, or anyone could log in under that name and be an admin.
    hub.cli("users", "add", "lead", "--admin")
    user_pw, _ = passwords(hub)
    assert login_outcome(hub.url, "lead", user_pw) == "accepted"
    assert HubAPI(hub.rt).user("lead")["admin"] is False
