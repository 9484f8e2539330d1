"""Personal environments: `pangeohub-env` from a person's own kernel (as from their terminal), as that person."""

import json
import sys
from pathlib import Path

import pytest

from harness import Platform, kernel_json
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform

SHELL = """
import json, subprocess
def sh(*args):
    proc = subprocess.run(["pangeohub-env", *args], capture_output=True, text=True)
    return {"code": proc.returncode, "out": proc.stdout, "err": proc.stderr}
report = {%s}
print(json.dumps(report))
"""


def shell(platform, name: str, token: str, calls: dict) -> dict:
    code = SHELL % ", ".join(f"{key!r}: sh(*{args!r})" for key, args in calls.items())
    result = platform.run_code(name, token, code)
    assert result.ok, result.error
    return json.loads(result.stdout.strip().splitlines()[-1])


def kernels(platform, name: str, token: str) -> dict:
    async def go():
        async with platform.sim(name, token=token) as user:
            return await user.server_get("/api/kernelspecs")

    return {s["spec"]["display_name"]: key for key, s in run_sync(go())["kernelspecs"].items()}


def run_kernel(platform, name: str, token: str, kernel: str, code: str):
    async def go():
        async with platform.sim(name, token=token) as user:
            kernel_id = await user.start_kernel(kernel)
            try:
                return await user.execute(kernel_id, code)
            finally:
                await user.stop_kernel(kernel_id)

    return run_sync(go())


def test_a_person_makes_lists_uses_and_removes_an_environment_of_their_own(platform):
    name, token = platform.started_user()
    other, other_token = platform.started_user()
    made = shell(platform, name, token, {"create": ["create", "mine", "inflection==0.5.1"], "list": ["list"]})
    assert made["create"]["code"] == 0, made["create"]["err"]
    assert "mine" in made["list"]["out"]
    home = Path(platform.system_user(name).pw_dir)
    env = home / ".local/share/pangeohub/envs/mine"
    assert env.stat().st_uid == platform.system_user(name).pw_uid  # made by the person, in their home

    specs = kernels(platform, name, token)
    assert "Python (mine)" in specs and "Python (mine)" not in kernels(platform, other, other_token)
    result = run_kernel(platform, name, token, specs["Python (mine)"],
                        "import sys, inflection, xarray; print(sys.executable)")
    assert result.ok, result.error
    assert str(env) in result.stdout

    gone = shell(platform, name, token, {"remove": ["remove", "mine"], "again": ["remove", "mine"]})
    assert gone["remove"]["code"] == 0 and not env.exists()
    assert gone["again"]["code"] == 2 and "no environment 'mine'" in gone["again"]["err"]
    assert "Python (mine)" not in kernels(platform, name, token)


def test_bad_personal_environments_leave_nothing_behind(platform):
    name, token = platform.started_user()
    bad = shell(platform, name, token, {
        "missing": ["create", "broken", "pangeohub-no-such-package-zz"],
        "name": ["create", "Bad.Name", "inflection"],
    })
    assert bad["missing"]["code"] == 2 and "pangeohub-no-such-package-zz" in bad["missing"]["err"]
    assert "Traceback" not in bad["missing"]["err"]
    assert bad["name"]["code"] == 2 and "'Bad.Name' is not a valid environment name" in bad["name"]["err"]
    home = Path(platform.system_user(name).pw_dir)
    assert not (home / ".local/share/pangeohub/envs/broken").exists()
    assert not (home / ".local/share/jupyter/kernels/personal-broken").exists()


def test_admin_environments_are_read_only_to_people(platform):
    envs = Path(sys.prefix) / "envs"
    envs.mkdir(mode=0o755, exist_ok=True)  # as a build leaves it
    name, token = platform.started_user()
    result = platform.run_code(name, token, f"open({str(envs / 'mine.txt')!r}, 'w')")
    assert not result.ok and "PermissionError" in result.error


def test_a_personal_environment_past_the_home_quota_fails_clearly_and_leaves_nothing():
    """duckdb (a ~24 MB wheel, more unpacked) cannot fit in a 32M home: the person reads that their quota is full,
    nothing of the attempt stays (environment, kernel, what it put in the package cache), and the home works."""
    hub = Platform(extra={"homes": {"quota": "32M"}})
    try:
        hub.up()
        name, token = hub.started_user()
        # inflection is small and unpacked into the cache before duckdb fills the home.
        tried = shell(hub, name, token, {"create": ["create", "big", "inflection==0.5.1", "duckdb"],
                                         "list": ["list"]})
        err = tried["create"]["err"]
        assert tried["create"]["code"] == 2, tried["create"]
        assert "Traceback" not in err, err
        assert "environment 'big' does not fit in your home quota of 32M" in err, err
        assert "No space left on device" in err and "nothing of it was kept" in err, err
        assert "bigger quota" in err, err  # says how to fix it
        assert "no environments of your own" in tried["list"]["out"]
        home = Path(hub.system_user(name).pw_dir)
        assert not (home / ".local/share/pangeohub/envs/big").exists()
        assert "Python (big)" not in kernels(hub, name, token)
        cached = [p.name for p in home.glob(".cache/uv/*/pypi/*")]  # the person's uv cache, in their home
        assert not {"inflection", "duckdb"} & set(cached), cached
        after = kernel_json(hub, name, token, (
            "import json, os, shutil\n"
            "open('after.txt', 'w').write('x' * 2**20)\n"
            "print(json.dumps({'read': len(open('after.txt').read()), "
            "'free': shutil.disk_usage(os.environ['HOME']).free}))\n"))
        assert after["read"] == 2**20
        assert after["free"] > 16 * 1024**2, after  # the failed attempt did not keep the quota's space
    finally:
        hub.close()
