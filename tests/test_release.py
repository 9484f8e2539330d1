"""Every account the platform removes is released in full, and what an interrupted run left is released at
the next `up` (and shown by `status`): a later account that gets the same uid must own nothing of the old one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pangeohub.services.supervisor import supervisor_pid

pytestmark = pytest.mark.platform


def _owned_by(uid: int, *roots: Path) -> list[str]:
    """Files under ``roots`` that belong to ``uid`` (mounted homes included: find crosses into them)."""
    found = []
    for root in roots:
        if root.exists():
            proc = subprocess.run(["find", str(root), "-uid", str(uid)], capture_output=True, text=True)
            found += proc.stdout.split()
    return found


def test_a_new_account_with_a_reused_uid_owns_nothing_of_a_checked_users(platform):
    report = json.loads(platform.cli("check", "--json").stdout)
    assert report["ok"], report
    assert platform.traces_of(report["user"]) == []
    # useradd gives the next account the highest uid + 1: the uid the check's user just gave back.
    name, _ = platform.add_user()
    account = platform.system_user(name)
    mine = str(platform.root / "home" / account.pw_name)
    foreign = [path for path in _owned_by(account.pw_uid, platform.root / "home", platform.root / "state")
               if not path.startswith(mine)]
    assert foreign == []


def test_removing_a_user_releases_the_home_the_runtime_dir_and_the_account(platform):
    name, token = platform.started_user()
    assert any(trace.startswith("mounted at") for trace in platform.traces_of(name))
    platform.cli("users", "remove", name)
    assert platform.traces_of(name) == []


def test_users_add_with_a_name_whose_linux_account_clashes_with_a_group_is_one_clear_line(platform):
    proc = platform.cli("users", "add", "admins", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and f"clash with the existing group '{platform.prefix}admins'" in proc.stderr
    listed = {row["name"] for row in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert "admins" not in listed  # nothing half-made: no account that cannot spawn
    api = platform.rt
    from pangeohub.hubapi import HubAPI

    assert HubAPI(api).user("admins") is None


def test_an_interrupted_run_is_released_at_the_next_up_and_status_says_what(fresh_platform, monkeypatch):
    from pangeohub import leftovers, release
    from pangeohub.hubapi import HubAPI
    from pangeohub.targets.local import lifecycle

    hub = fresh_platform
    hub.up()
    # A check killed in the middle: its temporary user has a server, a mounted home and a runtime dir.
    argv = [sys.executable, "-m", "pangeohub", "--config", str(hub.config_path), "check"]
    check = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checked = _wait_for_temporary_user_with_a_home(hub)
    check.kill()
    check.wait()
    # A removal killed after the Linux account went, before the home was released.
    cut, _ = hub.started_user()
    kept, _ = hub.started_user()  # and one whose removal keeps the home (`users remove --keep-home`)
    with monkeypatch.context() as patch:
        patch.setattr(lifecycle, "release_user", _killed)
        for name, keep_home in ((cut, False), (kept, True)):
            with pytest.raises(_Killed):
                release.release_account(hub.rt, name, hub=HubAPI(hub.rt), keep_home=keep_home)
            assert any(trace.startswith("mounted at") for trace in hub.traces_of(name))
    # An account deleted behind the platform's back (userdel): its home stays mounted, for its old uid.
    gone_name, _ = hub.started_user()
    gone = hub.system_user(gone_name)
    subprocess.run(["pkill", "-KILL", "-u", gone.pw_name], capture_output=True)
    subprocess.run(["userdel", "--force", gone.pw_name], check=True, capture_output=True)
    # And the supervisor itself is killed (no `down`: nothing is released on the way out).
    os.kill(supervisor_pid(hub.rt), signal.SIGKILL)
    time.sleep(1)
    # Were the account lookup to fail (a directory outage), nobody would look removed: nothing is released.
    monkeypatch.setattr(leftovers, "PASSWD", hub.root / "unreadable")
    assert leftovers.find(hub.rt) == []
    monkeypatch.undo()

    hub.up()
    assert hub.traces_of(checked) == [] and hub.traces_of(cut) == []
    assert not [t for t in hub.traces_of(gone_name) if t.startswith(("mounted", "runtime"))]
    status = hub.cli("status").stdout
    assert "released at the start" in status
    assert f"temporary account of {checked}" in status and f"unfinished removal of {cut}" in status
    # The kept home was only unmounted: its image and Linux account are there for when the person comes back.
    assert f"unfinished removal of {kept}" in status
    assert [t.split()[0] for t in hub.traces_of(kept)] == ["image", "home", "Linux"]
    assert f"home mount of {gone.pw_name}" in status and f"runtime dir of {gone.pw_name}" in status
    api = HubAPI(hub.rt)
    assert api.user(checked) is None and api.user(cut) is None  # the hub forgot them too
    listed = {row["name"] for row in json.loads(hub.cli("users", "list", "--json").stdout)}
    assert checked not in listed and cut not in listed


class _Killed(BaseException):
    pass


def _killed(*args, **kwargs):
    raise _Killed()


def _wait_for_temporary_user_with_a_home(hub, timeout: float = 300) -> str:
    from pangeohub.accounts import AccountStore

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for account in AccountStore(hub.rt.paths.accounts_db).list():
            if account.info.get("temporary") and any(t.startswith("mounted at") for t in hub.traces_of(account.name)):
                return account.name
        time.sleep(0.5)
    raise AssertionError("the check's user never got a home")


def test_up_refuses_a_quota_the_images_filesystem_cannot_hold(fresh_platform):
    hub = fresh_platform
    hub.config_data["homes"] = {"quota": "20T"}  # ext4, which /var/tmp is here, holds at most 16T per file
    hub.config_path.write_text(json.dumps(hub.config_data))
    proc = hub.cli("up", "--detach", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot hold a home image of 20T" in proc.stderr and "lower homes.quota" in proc.stderr
