"""Budgets on a real platform: CPU a person burns in their kernel is measured by the sampler and counted against
their monthly budget; past the notice level they read a notice on the spawn page and in JupyterLab and admins
are warned; a used-up budget refuses new Dask clusters and larger profiles (saying which budget, what was used
and when it resets) while what runs goes on; overrides from the command line, and bad ones refused."""

import json
import time
import urllib.request

import pytest
from harness import Platform, wait_for
from harness import kernel_json as run

from pangeohub.budgets.ledger import Ledger
from pangeohub.budgets.overrides import OverrideStore
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

INTERVAL = 3  # seconds between samples


@pytest.fixture(scope="module")
def hub():
    platform = Platform(extra={
        "usage": {"sample_interval": f"{INTERVAL}s", "storage_interval": "1h"},
        # Everybody has room by default; group 'tiny' shares a budget that a few seconds of CPU use up.
        "budgets": {"default": {"core_hours": 100}, "groups": {"tiny": {"core_hours": 0.0002}}},
    })
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def state(platform, scope, name):
    """The budget's state as the platform works it out (read in-process: no Python start per poll)."""
    return Ledger(platform.rt.config, platform.rt.paths).state(scope, name)


def burn(platform, name, token, seconds):
    """Burn CPU in the person's kernel, then wait until the sampler has counted it against their budget. The
    kernel sleeps past two samples first: on cgroup v1 the sampler moves a new process into the person's
    accounting group at its next round (test_usage.py)."""
    before = state(platform, "person", name).used
    run(platform, name, token, f"""
import json, time
time.sleep({2 * INTERVAL + 1})
start = time.process_time()
while time.process_time() - start < {seconds}:
    sum(i * i for i in range(10000))
print(json.dumps({{"burned": time.process_time() - start}}))
""")
    wait_for(lambda: state(platform, "person", name).used >= before + 0.8 * seconds / 3600, "the burn in the budget")


def spawn_page(platform, name) -> str:
    async def go():
        async with platform.sim(name) as user:
            await user.login()
            async with user.session.get(f"{platform.url}/hub/spawn") as resp:
                assert resp.status == 200
                return await resp.text()

    return run_sync(go())


def lab_notice(platform, name, token) -> str | None:
    """What JupyterLab shows as a notification when it loads (its update check, answered by the platform)."""
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user.server_get("/lab/api/update")

    notification = run_sync(go())["notification"]
    return notification["message"] if notification else None


def spawn(platform, name, token, options=None, expect=(201, 202)):
    """Ask for the person's server; returns the hub's answer (a 400 carries the refusal)."""
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user._json("POST", f"{platform.url}/hub/api/users/{name}/server", json=options or {},
                                    expect=expect)

    return run_sync(go())


def start(platform, name, token, options=None):
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            await user.start_server(options)

    run_sync(go())


def stop(platform, name, token):
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            await user.stop_server()

    run_sync(go())


NEW_CLUSTER = """
import gc, json
from dask_gateway import Gateway
report = {}
with Gateway() as gw:
    try:
        with gw.new_cluster():
            report["started"] = True
    except Exception as exc:
        report["refused"] = str(exc)
    gw.loop.add_callback(gc.collect)  # see test_gateway: a refused cluster's finaliser must not hang the kernel
print(json.dumps(report))
"""


def test_bad_budgets_are_refused_and_change_nothing(hub):
    name, _ = hub.add_user()
    for args, words in [
        ((name, "--core-hours", "-5"), "negative"),
        ((name, "--core-hours", "lots"), "'lots' is not a number"),
        ((name, "--money", "NaN"), "is not a number"),
        ((name, "--core-hours", "5", "--money", "3"), "--core-hours and --money given together"),
        ((name, "--money", "3"), "--money needs prices"),  # this platform sets no prices
        (("nobody", "--core-hours", "5"), "no person named 'nobody'"),
        (("--group", "nogroup", "--core-hours", "5"), "no group named 'nogroup'"),
        ((name, "--clear"), "has no budget set with `pangeohub users budget` to clear"),
    ]:
        proc = hub.cli("users", "budget", *args, check=False)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert OverrideStore(hub.rt.paths.budgets_db).all() == {}
    shown = json.loads(hub.cli("users", "budget", name, "--json").stdout)
    assert shown["source"] == "budgets.default" and shown["limit"] == 100 and not shown["exhausted"]


@pytest.fixture(scope="module")
def person(hub):
    """A person who burned a few seconds of CPU, with their server stopped so that their use stands still."""
    name, token = hub.started_user()
    burn(hub, name, token, 3)
    stop(hub, name, token)
    time.sleep(2 * INTERVAL)  # the samples after the stop
    return name, token


def test_past_the_notice_level_the_person_sees_a_notice_and_admins_are_warned(hub, person):
    name, token = person
    used = state(hub, "person", name).used
    out = hub.cli("users", "budget", name, "--core-hours", repr(used / 0.9)).stdout
    assert "set with `pangeohub users budget`" in out and "WARNING: past 80 %" in out, out

    page = spawn_page(hub, name)
    assert "pangeohub-budget-notice" in page and "You have used 9" in page and "of your monthly budget" in page
    assert 'value="large" disabled' not in page  # nothing is refused yet

    status = json.loads(hub.cli("status", "--json", check=False).stdout)
    assert [b["name"] for b in status["budgets"] if b["scope"] == "person"] == [name], status["budgets"]
    everyone = hub.cli("users", "budget").stdout
    assert any(line.startswith(f"{name}:") and "WARNING" in line for line in everyone.splitlines()), everyone
    wait_for(lambda: f"Budget warning: {name}'s monthly budget" in hub.rt.paths.log("hub").read_text(errors="replace"),
             "the admins' warning in the hub's log")

    start(hub, name, token)
    message = lab_notice(hub, name, token)
    # Starting the server used a little more: the notice says either how much is used or that it is used up.
    assert message and ("of your monthly budget" in message or "is used up" in message), message


def test_a_used_up_budget_refuses_new_clusters_and_larger_profiles_but_running_work_goes_on(hub, person):
    name, token = person
    if not state(hub, "person", name):
        pytest.skip("needs the previous test's server")

    async def open_kernel():
        async with UserSim(hub.url, name, token=token) as user:
            return await user.start_kernel()

    kernel = run_sync(open_kernel())  # work that runs while the budget is used up
    hub.cli("users", "budget", name, "--core-hours", "0.0001")
    assert "USED UP" in hub.cli("users", "budget", name).stdout

    refused = run(hub, name, token, NEW_CLUSTER)
    assert "started" not in refused
    message = refused["refused"]
    assert "new Dask cluster refused" in message and "your monthly budget" in message, message
    assert "core-hours" in message and "resets on" in message and "Running servers, kernels and clusters go on" in message

    async def still_running():
        async with UserSim(hub.url, name, token=token) as user:
            return await user.execute(kernel, "print(6 * 7)")

    assert run_sync(still_running()).stdout.strip() == "42"
    message = lab_notice(hub, name, token)
    assert message and "is used up" in message and "resets on" in message, message
    wait_for(lambda: f"{name}'s monthly budget (set with `pangeohub users budget`) is used up"
             in hub.rt.paths.log("hub").read_text(errors="replace"), "the admins' warning of a used-up budget")

    stop(hub, name, token)
    page = spawn_page(hub, name)
    assert "is used up" in page and 'value="large" disabled' in page and "refused while the budget is used up" in page
    start(hub, name, token)  # no profile asked for: the smallest, which the budget still allows
    stop(hub, name, token)
    answer = spawn(hub, name, token, {"profile": "large"}, expect=(400,))
    assert "profile 'large' (larger than 'small') refused" in answer["message"], answer
    assert "your monthly budget" in answer["message"] and "resets on" in answer["message"]
    start(hub, name, token, {"profile": "small"})

    out = hub.cli("users", "budget", name, "--clear").stdout
    assert "cleared" in out and "budgets.default" in out
    wait_for(lambda: lab_notice(hub, name, token) is None, "the notice to go with the override")


def test_a_group_budget_is_shared_by_its_members(hub):
    name = "grp" + str(int(time.time()) % 100000)
    password = "pw-" + name + "-long"
    hub.cli("users", "add", name, "--group", "tiny", "--password-stdin", input=password + "\n")
    hub.passwords[name] = password

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server()
            return user.token

    token = run_sync(go())
    burn(hub, name, token, 2)
    wait_for(lambda: state(hub, "group", "tiny").exhausted, "the group's budget to be used up")

    refused = run(hub, name, token, NEW_CLUSTER)
    assert "the monthly budget of group 'tiny'" in refused.get("refused", ""), refused
    assert "budgets.groups.tiny" in refused["refused"]
    shown = hub.cli("users", "budget", "--group", "tiny").stdout
    assert shown.startswith("group tiny:") and "USED UP" in shown

    # Admins see the group's state where they watch the platform: the metrics endpoint and the usage page.
    admin, _ = hub.add_user(admin=True)
    admin_token = hub.cli("token", admin).stdout.strip()
    request = urllib.request.Request(f"{hub.url}/services/usage/metrics",
                                     headers={"Authorization": f"token {admin_token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        scraped = response.read().decode()
    assert 'pangeohub_budget_exhausted{name="tiny",scope="group",unit="core_hours"} 1.0' in scraped
    assert 'pangeohub_budget_limit{name="tiny",scope="group",unit="core_hours"} 0.0002' in scraped
    request = urllib.request.Request(f"{hub.url}/services/usage/", headers={"Authorization": f"token {admin_token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        page = response.read().decode()
    assert "Budgets near or used up" in page and "<td>tiny</td>" in page and "used up" in page
