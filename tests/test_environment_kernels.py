"""People choose environments on a running platform: kernels per person, a profile's server in an environment,
`up` building in the background, and `env remove` refused while someone runs it."""

import json
import secrets
import time

import pytest

from harness import Platform
from pangeohub.config import parse_config
from pangeohub.resources import profiles
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform
TAG = secrets.token_hex(2)
OPEN, TEAM = f"k{TAG}-open", f"k{TAG}-team"


@pytest.fixture(scope="module")
def hub():
    platform = Platform({
        "environments": [{"name": OPEN, "packages": ["tabulate==0.9.0"]},
                         {"name": TEAM, "packages": ["inflection==0.5.1"], "groups": ["team"]}],
        "profiles": [{"name": "small", "cpus": 1, "memory": "1G"},
                     {"name": "tables", "cpus": 1, "memory": "1G", "environment": OPEN}],
    })
    try:
        platform.up()
        yield platform
    finally:
        for name in (OPEN, TEAM):
            platform.cli("env", "remove", name, "--force", check=False)
        platform.close()


def built(hub) -> dict:
    """`status` once the background job has built both environments (it says so while it works)."""
    for _ in range(600):
        report = json.loads(hub.cli("status", "--json", check=False).stdout)
        states = {env["name"]: env["state"] for env in report["environments"]}
        if set(states.values()) <= {"ready", "failed"}:
            return states
        time.sleep(0.5)
    raise AssertionError(f"the environments were not built: {states}\n" + hub.rt.paths.log("environments").read_text())


def kernelspecs(hub, name: str) -> dict:
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server()
            return await user.server_get("/api/kernelspecs")

    return {spec["spec"]["display_name"]: key for key, spec in run_sync(go())["kernelspecs"].items()}


def run_in(hub, name: str, kernel: str, code: str, then=None):
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            kernel_id = await user.start_kernel(kernel)
            try:
                result = await user.execute(kernel_id, code)
                return result, (then() if then else None)
            finally:
                await user.stop_kernel(kernel_id)

    return run_sync(go())


@pytest.fixture(scope="module")
def people(hub):
    """ann (no group) and tim (group team), once `up` has built the environments in the background."""
    states = built(hub)
    hub.add_user("ann")
    hub.cli("users", "add", "tim", "--group", "team", "--password-stdin", input="pw-tim-123456\n")
    hub.passwords["tim"] = "pw-tim-123456"
    return states


def test_up_builds_in_the_background_and_each_person_sees_their_kernels(hub, people):
    assert people == {OPEN: "ready", TEAM: "ready"}
    ann, tim = kernelspecs(hub, "ann"), kernelspecs(hub, "tim")
    assert f"Python ({OPEN})" in ann and f"Python ({TEAM})" not in ann
    assert {f"Python ({OPEN})", f"Python ({TEAM})"} <= set(tim)

    result, users = run_in(hub, "tim", tim[f"Python ({TEAM})"],
                           "import sys, inflection; print(sys.executable)",
                           then=lambda: json.loads(hub.cli("env", "list", "--json").stdout))
    assert result.ok, result.error
    assert f"/envs/{TEAM}/current/bin/python" in result.stdout
    [row] = [r for r in users if r["name"] == TEAM]
    assert row["versions"][-1]["users"] == ["tim"]
    default, _ = run_in(hub, "tim", "python3", "import inflection")
    assert not default.ok and "ModuleNotFoundError" in default.error


def test_removing_an_environment_in_use_is_refused(hub, people):
    hub.add_user("rae")
    specs = kernelspecs(hub, "rae")

    def try_remove():
        return hub.cli("env", "remove", OPEN, check=False)

    result, refused = run_in(hub, "rae", specs[f"Python ({OPEN})"], "import tabulate", then=try_remove)
    assert result.ok, result.error
    assert refused.returncode == 2 and "in use by: rae" in refused.stderr and "--force" in refused.stderr
    assert json.loads(hub.cli("env", "list", "--json").stdout)[0]["current"] is not None


def test_a_profile_runs_the_server_in_its_environment(hub, people):
    name, _ = hub.add_user("pat")

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server({"profile": "tables"})
            return await user.run("import sys, tabulate, os\n"
                                  "print(sys.executable, os.environ['PANGEOHUB_ENVIRONMENT'])")

    result = run_sync(go())
    assert result.ok, result.error
    assert f"/envs/{OPEN}/" in result.stdout and result.stdout.split()[-1] == OPEN


def test_the_spawn_page_lists_each_profile_once_with_its_environment():
    config = parse_config(f"environments: [{{name: {OPEN}, packages: [tabulate]}}]\n"
                          f"profiles: [{{name: small, cpus: 1, memory: 2G, description: '1 CPU, 2 GB RAM'}},"
                          f" {{name: tables, cpus: 1, memory: 2G, environment: {OPEN}}}]\n")
    form = profiles.options_form(config, set(), False)
    assert form.count("1 CPU") == 2  # once for each profile, never twice for one
    assert "1 CPU, 2 GB RAM</label>" in form and f"1 CPU, 2G memory, environment {OPEN}</label>" in form


DASK_CODE = """
import json
from dask_gateway import Gateway
report = {}
with Gateway() as gw:
    try:
        gw.new_cluster(environment=%(other)r)
    except Exception as exc:
        report["refused"] = str(exc)
    with gw.new_cluster() as cluster:
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=240)
        def where():
            import sys, inflection
            return sys.executable
        report["worker"] = client.submit(where, pure=False).result()
        report["scheduler"] = client.run_on_scheduler(lambda: __import__("sys").executable)
        client.get_versions(check=True)
        report["versions"] = "checked"
print(json.dumps(report))
"""


def test_dask_clusters_run_the_environment_of_the_kernel(hub, people):
    tim = kernelspecs(hub, "tim")
    result, _ = run_in(hub, "tim", tim[f"Python ({TEAM})"], DASK_CODE % {"other": "nosuch"})
    assert result.ok, result.error
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert f"/envs/{TEAM}/current/bin/python" in report["worker"]
    assert f"/envs/{TEAM}/current/bin/python" in report["scheduler"]
    assert report["versions"] == "checked"
    assert "environment 'nosuch' does not exist" in report["refused"]


def test_an_environment_of_other_groups_is_refused_to_a_cluster(hub, people):
    ann = kernelspecs(hub, "ann")
    code = ("from dask_gateway import Gateway\n"
            f"try:\n    Gateway().new_cluster(environment={TEAM!r})\nexcept Exception as exc:\n    print(exc)")
    result, _ = run_in(hub, "ann", ann[f"Python ({OPEN})"], code)
    assert result.ok, result.error
    assert f"environment '{TEAM}' is limited to other groups; you may use: default, {OPEN}" in result.stdout
