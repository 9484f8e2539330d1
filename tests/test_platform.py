"""The platform's lifecycle as an operator and a user see it: login, persistence, restarts, up/down."""

import json
import time

import pytest
from harness import run_in_kernel

from pangeohub.hubapi import HubAPI
from pangeohub.usersim import SimError, UserSim, run_sync

pytestmark = pytest.mark.platform


def test_login_with_wrong_password_is_refused_with_the_same_message_as_unknown_user(platform):
    name, _ = platform.add_user()

    async def attempt(user, password):
        async with UserSim(platform.url, user, password=password) as sim:
            try:
                await sim.login()
            except SimError as exc:
                return str(exc).replace(user, "<name>")
        return "accepted"

    wrong = run_sync(attempt(name, "not-the-password"))
    unknown = run_sync(attempt("nosuchperson", "not-the-password"))
    assert "refused" in wrong
    assert wrong == unknown  # no hint that the account exists


def test_repeated_failed_logins_lock_the_name(platform):
    name, password = platform.add_user()
    limit = platform.rt.config.auth.failed_login_limit

    async def go():
        for _ in range(limit):
            async with UserSim(platform.url, name, password="wrong-password") as sim:
                with pytest.raises(SimError):
                    await sim.login()
        async with platform.sim(name) as sim:
            await sim.login()  # the right password, now locked out

    with pytest.raises(SimError, match="refused"):
        run_sync(go())
    platform.cli("users", "passwd", name, "--password-stdin", input=password + "\n")  # an admin unlocks

    async def again():
        async with platform.sim(name) as sim:
            await sim.login()

    run_sync(again())


def test_home_files_survive_a_server_restart(platform):
    name, token = platform.started_user()

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            await user.run("open('notes.txt', 'w').write('kept')")
            await user.stop_server()
            await user.start_server()
            return await user.run("print(open('notes.txt').read())")

    assert run_sync(go()).stdout.strip() == "kept"


def test_a_kernel_has_the_pangeo_notebook_stack(platform):
    """The default environment is the Pangeo notebook stack (docs/stack.md): a person's first kernel imports it."""
    name, token = platform.started_user()
    out = run_in_kernel(platform, name, token,
                        "import cartopy, geopandas, rioxarray, hvplot, intake_esm, xgcm, flox, metpy, sklearn\n"
                        "print(len(geopandas.points_from_xy([0, 1], [0, 1])))")
    assert out.stdout.strip() == "2"


def test_a_server_has_the_git_panel_and_shows_memory_against_its_limit(platform):
    """JupyterLab's Git panel (jupyterlab-git) answers from a person's server with the machine's git, and the
    status bar's memory figure (jupyter-resource-usage) is measured against the limit of the profile started."""
    import requests

    name, token = platform.started_user()
    base = f"{platform.url}/user/{name}"
    auth = {"Authorization": f"token {token}"}
    git = requests.get(f"{base}/git/settings", headers=auth, timeout=30)
    assert git.status_code == 200, git.text
    assert git.json()["gitVersion"]
    metrics = requests.get(f"{base}/api/metrics/v1", headers=auth, timeout=30)
    assert metrics.status_code == 200, metrics.text
    server = HubAPI(platform.rt).user(name)["servers"][""]
    profile = next(p for p in platform.rt.config.profiles if p.name == server["user_options"].get("profile", p.name))
    assert metrics.json()["limits"]["memory"]["rss"] == profile.memory
    assert 0 < metrics.json()["rss"] < profile.memory


def test_running_server_stays_reachable_across_a_hub_restart(platform):
    name, token = platform.started_user()
    api = HubAPI(platform.rt)
    before = api.user(name)["servers"][""]
    old_hub = json.loads(platform.cli("status", "--json").stdout)["services"]["hub"]["pid"]

    platform.cli("restart", "hub")

    status = json.loads(platform.cli("status", "--json").stdout)
    assert status["healthy"]
    assert status["services"]["hub"]["pid"] != old_hub
    after = api.user(name)["servers"][""]
    assert after["ready"] and after["started"] == before["started"]

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user.run("print(6 * 7)")

    assert run_sync(go()).stdout.strip() == "42"


def test_the_platforms_tokens_are_checked_with_one_hash_also_after_an_upgrade(platform):
    """The tokens the platform gives the hub are random keys: stored with one hash, not stretched like
    passwords (16,384 rounds cost every request made with one ~3 ms). A hub whose database still holds one
    stretched (made by an older release) stores it again with one hash at its next start, and it keeps working."""
    import sqlite3

    from jupyterhub.utils import hash_token

    db_path = platform.root / "state" / "hub" / "jupyterhub.sqlite"

    def stored() -> dict[str, str]:
        with sqlite3.connect(db_path) as db:
            return dict(db.execute("SELECT s.name, t.hashed FROM api_tokens t JOIN services s ON s.id = t.service_id "
                                   "WHERE t.note = 'from config'").fetchall())

    assert stored() and all(hashed.startswith("sha512:1:") for hashed in stored().values()), stored()
    admin = platform.rt.secret("hub_admin_token")
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE api_tokens SET hashed = ? WHERE hashed = ?",
                   (hash_token(admin, rounds=16384), stored()["pangeohub-admin"]))
    assert stored()["pangeohub-admin"].startswith("sha512:16384:")

    platform.cli("restart", "hub")

    assert all(hashed.startswith("sha512:1:") for hashed in stored().values()), stored()
    assert "boss" in {row["name"] for row in HubAPI(platform.rt).users()}


def test_status_json_lists_every_service(platform):
    report = json.loads(platform.cli("status", "--json").stdout)
    assert report["running"] and report["healthy"]
    assert set(report["services"]) >= {"proxy", "hub"}
    for name, svc in report["services"].items():
        assert svc["pid"] and svc["healthy"]
        assert svc["port"] or name == "forkserver"  # the fork server listens on a root-only Unix socket
    assert report["url"].startswith("http://127.0.0.1:")


def test_admin_token_drives_the_hub_api(platform):
    token = platform.cli("token").stdout.strip()
    import urllib.request

    request = urllib.request.Request(f"{platform.url}/hub/api/users", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request) as response:
        names = {user["name"] for user in json.load(response)}
    assert "boss" in names


def test_remove_user_deletes_account_and_home_unless_kept(platform):
    gone, _ = platform.started_user()
    kept, _ = platform.started_user()
    gone_home = platform.system_user(gone).pw_dir
    kept_home = platform.system_user(kept).pw_dir

    from pangeohub.gateway.userenv import userenv_file

    recorded = userenv_file(platform.rt.paths.root, gone)
    assert recorded.exists()  # the server's environment, for its Dask workers
    platform.cli("users", "remove", gone)
    platform.cli("users", "remove", kept, "--keep-home")
    assert not recorded.exists()

    import os
    import pwd

    assert not os.path.exists(gone_home)
    with pytest.raises(KeyError):
        pwd.getpwnam(platform.prefix + gone)
    assert os.path.isdir(kept_home)
    names = {u["name"] for u in HubAPI(platform.rt).users()}
    assert gone not in names and kept not in names

    async def login():
        async with platform.sim(gone) as sim:
            await sim.login()

    with pytest.raises(SimError):
        run_sync(login())
    proc = platform.cli("users", "remove", "never-existed", check=False)
    assert proc.returncode == 2 and "no user named" in proc.stderr


def test_users_list_shows_admins_and_servers(platform):
    name, _ = platform.started_user()
    admin, _ = platform.add_user(admin=True)
    rows = {row["name"]: row for row in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert rows[name]["server"] == "running" and not rows[name]["admin"]
    assert rows[admin]["admin"]
    assert rows[name]["system_user"] == platform.prefix + name


def test_up_twice_and_down_twice(fresh_platform):
    # What a supervisor killed with SIGKILL leaves behind: a status claiming everything runs.
    paths = fresh_platform.rt.paths
    paths.ensure()
    stale = {name: {"pid": 1, "port": None, "state": "running", "restarts": 0, "since": 0}
             for name in ("proxy", "hub")}
    paths.status_file.write_text(json.dumps({"supervisor": 1, "url": fresh_platform.url, "services": stale}))
    first = fresh_platform.cli("up", "--detach")
    # `up --detach` returned only once this start's own services were healthy, not on the old file's word.
    assert json.loads(fresh_platform.cli("status", "--json").stdout)["healthy"]
    assert "is up" in first.stdout
    second = fresh_platform.cli("up", "--detach")
    assert "already running" in second.stdout
    assert json.loads(fresh_platform.cli("status", "--json").stdout)["healthy"]
    assert "stopped" in fresh_platform.cli("down").stdout
    assert "not running" in fresh_platform.cli("down").stdout
    stopped = fresh_platform.cli("status", "--json", check=False)
    assert stopped.returncode == 1 and not json.loads(stopped.stdout)["running"]


def test_first_start_prints_one_time_admin_credentials(fresh_platform):
    fresh_platform.config_data["hub"]["admin_users"] = []
    import yaml

    fresh_platform.config_path.write_text(yaml.safe_dump(fresh_platform.config_data))
    out = fresh_platform.cli("up", "--detach").stdout
    assert "log in at" in out and "as 'admin'" in out
    password = out.split("with password:")[1].split()[0]
    fresh_platform.passwords["admin"] = password

    async def go():
        async with fresh_platform.sim("admin") as sim:
            await sim.login()
            return await sim.hub_user()

    assert run_sync(go())["admin"] is True
    fresh_platform.down()
    assert "as 'admin'" not in fresh_platform.cli("up", "--detach").stdout  # only the first time


def test_a_killed_service_is_restarted_and_reported(fresh_platform):
    import os
    import signal

    fresh_platform.up()
    hub = json.loads(fresh_platform.cli("status", "--json").stdout)["services"]["hub"]
    os.kill(hub["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        report = json.loads(fresh_platform.cli("status", "--json", check=False).stdout)
        svc = report["services"]["hub"]
        if svc["pid"] not in (None, hub["pid"]) and svc["healthy"]:
            break
        time.sleep(0.5)
    assert svc["restarts"] == 1 and svc["healthy"]


def test_foreground_up_stops_everything_on_ctrl_c(fresh_platform):
    import os
    import signal
    import subprocess
    import sys

    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "pangeohub", "--config", str(fresh_platform.config_path), "up"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "pangeohub is up" in line:
            break
    report = json.loads(fresh_platform.cli("status", "--json").stdout)
    pids = [svc["pid"] for svc in report["services"].values()]
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, rest
    assert "stopped hub" in rest and "stopped proxy" in rest
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    assert not os.path.exists(fresh_platform.rt.paths.supervisor_pid)


def test_the_supervisor_leaves_no_zombie_once_its_background_jobs_end(platform):
    import psutil

    platform.wait_for_catalog()  # the catalog job has ended
    supervisor = psutil.Process(json.loads(platform.cli("status", "--json").stdout)["supervisor_pid"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        zombies = [child.pid for child in supervisor.children() if child.status() == psutil.STATUS_ZOMBIE]
        if not zombies:
            break
        time.sleep(0.5)
    assert zombies == [], "the supervisor did not wait for its ended children"


def test_session_cookies_of_the_hub_and_of_servers_are_samesite_lax(platform):
    """A form on another site that posts to the platform must not carry the person's session."""
    name, _ = platform.add_user()

    async def go():
        async with platform.sim(name) as sim:
            await sim.login()
            await sim.start_server()
            async with sim.session.get(f"{sim.user_url}/lab") as resp:  # through the server's OAuth
                assert resp.status == 200, await resp.text()
            return {cookie.key: cookie["samesite"] for cookie in sim.session.cookie_jar}

    cookies = run_sync(go())
    assert {"jupyterhub-session-id", "jupyterhub-hub-login", f"jupyterhub-user-{name}", "_xsrf"} <= set(cookies)
    assert {key: value for key, value in cookies.items() if value != "Lax"} == {}
