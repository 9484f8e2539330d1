"""An operator's tools on Slurm with a site's own accounts (``accounts: site``), on the real two-node cluster.

The site's people are accounts the test makes the way a site would (its own homes on the shared filesystem, in
the site group the gateway may start jobs as); the platform never creates or removes any. `check` and
`loadtest` use the test accounts the config names, `users add` maps a hub user to an existing account, `users
remove` and the idle culler end jobs and leave the site's account and home alone.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import Platform
from pangeohub.errors import PangeoError
from pangeohub.usersim import SimError, run_sync
from slurm_cluster import cluster, requires_slurm  # noqa: F401 (fixture)
from test_gateway import wait_for
from test_slurm_spawn import slurm_extra

pytestmark = requires_slurm

IDLE = 45  # seconds a server may stay idle before the culler stops it


@pytest.fixture(scope="module")
def site(cluster):
    """The site's accounts and its group of hub people."""
    group = f"phsite{os.getpid() % 100000}"
    subprocess.run(["groupadd", group], check=True)
    people = [cluster.add_user("site") for _ in range(5)]
    for person in people:
        os.chmod(person.pw_dir, 0o700)  # a site with private homes (Debian's useradd makes them 0755)
        subprocess.run(["gpasswd", "--add", person.pw_name, group], check=True, capture_output=True)
    yield {"group": group, "people": [p.pw_name for p in people]}
    subprocess.run(["groupdel", group], capture_output=True)


@pytest.fixture(scope="module")
def hub(cluster, site):
    tag = os.getpid() % 100000
    extra = slurm_extra(cluster, accounts="site", check_users=site["people"][:2],
                        gateway={"user": f"phgwo{tag}", "people_group": site["group"]})
    # The platform's own prefix would not name a site account; the harness sets one for its accounts.
    extra["users"] = {"system_prefix": ""}
    extra["gateway"] = {"enabled": True, "server_idle_timeout": f"{IDLE}s", "stop_with_server_period": "2s",
                        "scheduler_memory": "400M",
                        "options": {"worker_memory": {"min": "256M", "default": "512M", "max": "1G"}}}
    extra["hub"]["admin_users"] = ["nosuchadmin"]
    platform = Platform(extra=extra)
    # An admin who is no account of the site's is refused before anything starts.
    refused = platform.cli("up", "--detach", check=False)
    assert refused.returncode != 0 and "hub.admin_users: there is no account 'nosuchadmin'" in refused.stderr, \
        refused.stderr
    platform.config_data["hub"]["admin_users"] = [site["people"][4]]
    platform.config_path.write_text(yaml.safe_dump(platform.config_data))
    from pangeohub.targets.slurm.gatewaysetup import sudoers_file

    rule = sudoers_file(platform.rt.config)
    try:
        platform.up()
        yield platform
    finally:
        platform.close()
        rule.unlink(missing_ok=True)
        subprocess.run(["userdel", f"phgwo{tag}"], capture_output=True)


def jobs_of(cluster, account: str) -> list[str]:
    return cluster.run("squeue", "-h", "-u", account, "-o", "%i").stdout.split()


def start(hub, name, password):
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server()
            return user.token

    hub.passwords[name] = password
    return run_sync(go())


def test_check_runs_on_compute_nodes_as_the_sites_test_accounts_and_leaves_them_as_they_were(hub, cluster, site):
    before = {name: pwd.getpwnam(name) for name in site["people"][:2]}
    proc = hub.cli("check", timeout=900)
    lines = proc.stdout
    assert "PASS" in lines, lines
    assert "skipped:" in lines and "site account" in lines  # no password of the site's to log in with
    assert "1 worker" in lines  # its Dask cluster ran as jobs too
    assert "each refused" in lines  # the second test account could not reach the first's things
    for name, entry in before.items():
        assert pwd.getpwnam(name) == entry  # the site's accounts: untouched
        home = Path(entry.pw_dir)
        assert home.is_dir() and not list(home.glob(".pangeohub-check*")), list(home.iterdir())
        # Its server and Dask jobs are cancelled (Slurm drops them from the queue within seconds).
        wait_for(lambda: jobs_of(cluster, name) == [], timeout=60, what=f"{name}'s jobs to leave the queue")


def test_check_and_loadtest_need_enough_named_test_accounts(hub, site):
    from pangeohub.ops.people import take_people

    rt = hub.rt
    rt.config.target.slurm.check_users = []
    with pytest.raises(PangeoError) as refused:
        take_people(rt, ["check-x"], "pangeohub check")
    assert "target.slurm.check_users" in str(refused.value) and "cannot make people" in str(refused.value)
    proc = hub.cli("loadtest", "--users", "3", "--ramp", "0", check=False, timeout=300)
    assert proc.returncode != 0
    assert "needs 3 test account(s)" in proc.stderr and "names 2" in proc.stderr, proc.stderr


def test_loadtest_runs_as_the_test_accounts(hub, cluster, site, tmp_path):
    proc = hub.cli("loadtest", "--users", "2", "--ramp", "0", "--out", str(tmp_path), timeout=900)
    [report_file] = tmp_path.glob("loadtest-*.json")
    report = json.loads(report_file.read_text())
    assert report["ok"] and report["failures"] == [], proc.stdout
    assert report["phases"]["spawn"]["count"] == 2 and "login" not in report["phases"]  # tokens, no passwords
    for name in site["people"][:2]:
        assert pwd.getpwnam(name)
        wait_for(lambda: jobs_of(cluster, name) == [], timeout=60, what=f"{name}'s jobs to leave the queue")


def test_users_add_maps_a_hub_user_to_an_existing_site_account_only(hub, cluster, site):
    name = site["people"][2]
    account = pwd.getpwnam(name)
    refused = hub.cli("users", "add", "nosuchperson", "--password-stdin", input="a-long-password\n", check=False)
    assert refused.returncode != 0 and "no account 'nosuchperson' on this cluster" in refused.stderr
    assert "nosuchperson" not in hub.cli("users", "list").stdout  # nothing half-made
    system = hub.cli("users", "add", "daemon", "--password-stdin", input="a-long-password\n", check=False)
    assert system.returncode != 0 and "system account" in system.stderr
    hub.cli("users", "add", name, "--password-stdin", input="a-long-password\n")
    token = start(hub, name, "a-long-password")
    out = hub.run_code(name, token, "import os; print(os.getuid(), os.environ['SLURM_JOB_ID'])")
    uid, job = out.stdout.split()
    assert int(uid) == account.pw_uid and jobs_of(cluster, name) == [job]


def test_users_remove_cancels_the_job_and_keeps_the_sites_account_and_home(hub, cluster, site):
    name = site["people"][2]  # started by the test above
    account = pwd.getpwnam(name)
    keep = Path(account.pw_dir) / "thesis.txt"
    keep.write_text("years of work\n")
    os.chown(keep, account.pw_uid, account.pw_gid)
    assert jobs_of(cluster, name)
    hub.cli("users", "remove", name)
    wait_for(lambda: not jobs_of(cluster, name), what="the removed person's job to be cancelled")
    assert pwd.getpwnam(name) == account and keep.read_text() == "years of work\n"


def test_an_idle_server_is_culled_and_its_job_cancelled(hub, cluster, site):
    name = site["people"][3]
    hub.cli("users", "add", name, "--password-stdin", input="a-long-password\n")
    start(hub, name, "a-long-password")
    assert jobs_of(cluster, name)
    wait_for(lambda: not jobs_of(cluster, name), timeout=IDLE * 4, what="the idle server's job to be cancelled")
    from pangeohub.hubapi import HubAPI

    assert not (HubAPI(hub.rt).user(name) or {}).get("servers")


def test_a_hub_password_cannot_name_a_site_account_the_admin_did_not_add(hub, site):
    name = site["people"][4]  # a site account nobody added to the hub

    async def go():
        async with hub.sim(name) as user:
            user.password = "guessed-password"
            await user.login()

    with pytest.raises(SimError, match="refused"):
        run_sync(go())
