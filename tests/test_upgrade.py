"""Upgrading a running platform with the installer: from an earlier commit of this repository to this checkout.

The earlier version is installed by its own installer into a prefix of its own, started, and given people with
data: passwords, an admin, home files, scratch objects, an API token, a running server. Then, in order: the new
installer meets a config the new version refuses (nothing may change), a release whose hub does not start (it
must be rolled back), the real upgrade (nothing lost, the running server kept, every person's server starts),
and a rerun at the same version (nothing restarted). Everything is checked through what people and admins use.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import Platform
from pangeohub.envs.layout import uv_cache
from pangeohub.storage.admin import endpoint_url, s3_client
from pangeohub.storage.credentials import CredentialStore
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

REPO = Path(__file__).resolve().parent.parent
# The state at the start of the HTTPS and backup work: the account store still counts failed logins per name
# (a table the new version replaces), the config names the scratch bucket's settings as version 1 did
# (storage.expiry), the object store's memory limit may be 256M, and there is no `pangeohub backup` yet.
EARLIER = "bc55624999b7e9b089f25cfaa95a1d40c9bc1e47"
THESIS = "chapter one: sea surface temperature"
# The uv and the package cache of the install under test: its installer filled the cache with every pin of the
# current lock, which keeps every pin of the earlier one.
UV, UV_CACHE = Path(sys.prefix) / "bin" / "uv", uv_cache(Path(sys.prefix))


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def earlier():
    """The earlier version's files (from git, as that commit has them) and its own install of them."""
    if shutil.which("git") is None or _git("cat-file", "-e", f"{EARLIER}^{{commit}}").returncode:
        pytest.skip(f"needs this repository's history with commit {EARLIER} (a git checkout, not shallow)")
    root = Path(tempfile.mkdtemp(prefix="pangeohub-upgrade-", dir="/var/tmp"))
    root.chmod(0o755)
    source, prefix = root / "earlier", root / "prefix"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", EARLIER], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    _from_the_package_cache(source, prefix)
    proc = subprocess.run(["/usr/bin/python3", str(source / "install.py"), "--no-start",
                           "--prefix", str(prefix)], capture_output=True, text=True, timeout=1200)
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield root, prefix
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _from_the_package_cache(source: Path, prefix: Path) -> None:
    """The earlier version's venv, made as its installer makes it, with its pinned packages linked from the cache
    of the install under test; and that cache as the one the new installer upgrades with. The proxy's node
    packages are copied from the install under test too.

    The earlier installer still runs every step (its pip finds the lock satisfied and installs anything missing,
    its npm step checks the proxy's version); the upgrade still installs the new lock with uv. What is saved is
    unpacking ~180 wheels with pip and fetching the proxy with npm for the earlier install, and fetching the new
    lock's ~400 wheels into an empty cache for each upgrade: minutes per run.
    """
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(prefix)], check=True)
    prefix.chmod(0o755)
    node = Path(sys.prefix) / "node"
    if node.is_dir():
        shutil.copytree(node, prefix / "node", symlinks=True)
    if not (UV.exists() and UV_CACHE.is_dir()):
        return  # the earlier installer's pip and the upgrade's uv fetch everything, as on a new machine
    uv_cache(prefix).parent.mkdir()
    uv_cache(prefix).symlink_to(UV_CACHE)  # the upgrade's `cp -al` keeps a symlink a symlink
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHON", "UV_"))}
    env.update(UV_CACHE_DIR=str(UV_CACHE), UV_LINK_MODE="hardlink", UV_OFFLINE="1", UV_NO_PROGRESS="1")
    # A pin missing from the cache fails the whole offline install: the earlier installer's pip then does it all.
    subprocess.run([str(UV), "pip", "install", "--python", str(prefix / "bin" / "python"),
                    "-r", str(source / "requirements" / "runtime.lock")], env=env, capture_output=True, timeout=600)


class Old:
    """The platform of the earlier version, driven by its own command line until the upgrade."""

    def __init__(self, root: Path, prefix: Path):
        self.prefix = prefix
        self.backups = root / "backups"
        self.hub = Platform({"install_dir": str(prefix),
                             # Version 1's names and values: storage.expiry is storage.scratch.expiry now, and
                             # 256M, the default then, is refused now (SeaweedFS's buffers alone take ~250 MB).
                             "storage": {"expiry": "3d", "memory_limit": "256M"}})
        # SeaweedFS's internal ports at their defaults (inside its own network namespace): the earlier version's
        # `weed shell` found the master's gRPC port only at port + 10000.
        del self.hub.config_data["storage"]["ports"]
        # Sections the earlier version does not know (it refuses unknown keys): the upgraded platform runs them
        # at their defaults, as an operator's would.
        self.later_sections = {key: self.hub.config_data.pop(key) for key in ("usage", "monitoring")}
        self.hub.config_path.write_text(yaml.safe_dump(self.hub.config_data))
        self.people: dict[str, str] = {}
        self.token = ""
        self.ada_started = ""

    def cli(self, *args, input=None, check=True) -> subprocess.CompletedProcess:
        argv = [str(self.prefix / "bin" / "pangeohub"), "--config", str(self.hub.config_path), *args]
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=600)
        assert not check or proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc

    def install(self, checkout: Path = REPO) -> subprocess.CompletedProcess:
        """The installer of ``checkout`` run against this platform, as an operator runs it."""
        return subprocess.run(["/usr/bin/python3", str(checkout / "install.py"), "--prefix", str(self.prefix),
                               "--config", str(self.hub.config_path), "--backup-to", str(self.backups)],
                              capture_output=True, text=True, timeout=1800)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json", check=False).stdout)

    def pids(self) -> dict:
        report = self.status()
        return {"supervisor": report["supervisor_pid"],
                **{name: svc["pid"] for name, svc in report["services"].items()}}

    def accept_config(self) -> None:
        """What the operator does once the new version has said why it refuses the file."""
        data = yaml.safe_load(self.hub.config_path.read_text())
        data["storage"]["memory_limit"] = "1G"
        self.hub.config_path.write_text(yaml.safe_dump(data))

    def sim(self, name: str) -> UserSim:
        return UserSim(self.hub.url, name, password=self.people[name], timeout=180)

    def run(self, name: str, code: str, start: bool = True) -> str:
        async def go():
            async with self.sim(name) as user:
                await user.login()
                if start:
                    await user.start_server()
                return await user.run(code)

        result = run_sync(go())
        assert result.ok, f"{result.error}\n{result.stderr[-2000:]}"
        return result.stdout.strip()

    def server(self, name: str) -> dict:
        async def go():
            async with self.sim(name) as user:
                await user.login()
                return (await user.hub_user()).get("servers", {}).get("", {})

        return run_sync(go())

    def stop_server(self, name: str) -> None:
        async def go():
            async with self.sim(name) as user:
                await user.login()
                await user.stop_server()

        run_sync(go())


WRITE = """
import os, pathlib, fsspec
pathlib.Path("thesis.txt").write_text({thesis!r})
with fsspec.open(os.environ["PANGEO_SCRATCH"] + "result-{name}.txt", "wb") as f:
    f.write(b"model output")
print("ok")
"""


@pytest.fixture(scope="module")
def old(earlier):
    """The earlier version running, with people and their data."""
    platform = Old(*earlier)
    try:
        platform.cli("up", "--detach")
        for name, admin in (("ada", True), ("bo", False), ("cy", False)):
            password = f"{name}-passphrase-1"
            platform.cli("users", "add", name, "--password-stdin", *(["--admin"] if admin else []),
                         input=password + "\n")
            platform.people[name] = password
        for name in ("ada", "bo"):  # cy has never started a server
            assert platform.run(name, WRITE.format(thesis=THESIS, name=name)) == "ok"
        platform.stop_server("bo")  # ada's keeps running through everything
        platform.token = platform.cli("token", "ada").stdout.strip()
        platform.ada_started = platform.server("ada")["started"]
        yield platform
    finally:
        platform.hub.close()


def test_a_config_the_new_version_refuses_stops_the_upgrade_before_anything_changes(old):
    before = old.pids()
    proc = old.install()
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "this version refuses the config" in said and "storage.memory_limit (got '256M')" in said, said[-3000:]
    assert "Nothing was changed" in said and "Traceback" not in said
    assert old.pids() == before  # nothing was restarted
    assert "commit" not in json.loads((old.prefix / ".pangeohub-install.json").read_text())  # the earlier install
    assert not old.prefix.with_name("prefix.previous").exists()
    assert old.run("ada", "print(open('thesis.txt').read())", start=False) == THESIS


def test_a_config_the_running_version_cannot_read_stops_the_installer_before_anything_changes(old):
    """Settings only the new version knows, written before the upgrade: the running version cannot say whether it
    runs. Taken for stopped, it kept running the old code while the installer said it was done."""
    before, config = old.pids(), old.hub.config_path.read_text()
    data = yaml.safe_load(config)
    data.update(old.later_sections)
    old.hub.config_path.write_text(yaml.safe_dump(data))
    try:
        proc = old.install()
    finally:
        old.hub.config_path.write_text(config)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in said, said[-3000:]
    assert "cannot read the config" in said and "Nothing was changed" in said and "fix:" in said, said[-3000:]
    assert old.pids() == before
    assert "commit" not in json.loads((old.prefix / ".pangeohub-install.json").read_text())  # the earlier install


def test_a_release_whose_hub_does_not_start_is_rolled_back_and_the_earlier_version_serves(old, tmp_path):
    old.accept_config()
    config_before = old.hub.config_path.read_text()
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in ("src", "requirements", "share", "install.py", "pyproject.toml", "README.md"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, broken / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / part, broken / part)
    hub_py = broken / "src/pangeohub/services/hub.py"
    hub_py.write_text(hub_py.read_text().replace('"-f", str(self.config_file)]',
                                                 '"-f", str(self.config_file), "--no-such-option"]'))
    proc = old.install(broken)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said[-3000:]
    assert "the new version did not start" in said and "Rolled back: the previous version runs again" in said, \
        said[-4000:]
    report = old.status()
    assert report["healthy"], report
    assert "commit" not in json.loads((old.prefix / ".pangeohub-install.json").read_text())
    assert old.hub.config_path.read_text() == config_before  # the migration's rewrite was undone
    assert old.server("ada")["started"] == old.ada_started  # the same server all along
    assert old.run("ada", "print(open('thesis.txt').read())", start=False) == THESIS


@pytest.fixture(scope="module")
def upgraded(old):
    old.accept_config()
    proc = old.install()
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    return proc


def test_upgrade_keeps_every_person_their_data_and_the_running_server(old, upgraded):
    said = upgraded.stdout
    assert "upgraded to" in said and "back up the running platform" in said
    record = json.loads((old.prefix / ".pangeohub-install.json").read_text())
    assert record["commit"].startswith(_git("rev-parse", "HEAD").stdout.strip())
    # The config file: rewritten with the new names, a copy of the old one beside it, one line per rename.
    config = yaml.safe_load(old.hub.config_path.read_text())
    assert config["version"] == 2 and config["storage"]["scratch"]["expiry"] == "3d"
    assert "expiry" not in config["storage"]
    kept = yaml.safe_load(old.hub.config_path.with_name("config.yaml.v1.bak").read_text())
    assert kept["storage"]["expiry"] == "3d" and "version" not in kept
    assert "'storage.expiry' is now 'storage.scratch.expiry'" in said
    # The backup taken first.
    snapshots = json.loads(old.cli("backup", "list", "--from", str(old.backups), "--json").stdout)
    assert snapshots, "no backup was taken before the upgrade"
    # ada's server ran through the upgrade and still answers, with her files.
    assert old.server("ada")["started"] == old.ada_started
    assert old.run("ada", "print(open('thesis.txt').read())", start=False) == THESIS
    # Passwords, the admin, the token, scratch objects: as they were.
    users = {row["name"]: row for row in json.loads(old.cli("users", "list", "--json").stdout)}
    assert users["ada"]["admin"] and not users["bo"]["admin"] and "cy" in users
    request = urllib.request.Request(f"{old.hub.url}/hub/api/user",
                                     headers={"Authorization": f"token {old.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.load(response)["name"] == "ada"
    rt = old.hub.rt
    for name in ("ada", "bo"):
        client = s3_client(endpoint_url(rt), CredentialStore(rt.paths.root).get(name))
        body = client.get_object(Bucket="scratch", Key=f"{name}/result-{name}.txt")["Body"].read()
        assert body == b"model output"
    # Every person's server starts, and finds their files (cy has none yet).
    assert old.run("bo", "print(open('thesis.txt').read())") == THESIS
    assert old.run("cy", "import xarray, dask; print('ready')") == "ready"
    old.stop_server("ada")
    assert old.run("ada", "print(open('thesis.txt').read())") == THESIS


def test_running_the_installer_again_changes_and_restarts_nothing(old, upgraded):
    before = old.pids()
    config = old.hub.config_path.read_text()
    proc = old.install()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "nothing to upgrade, nothing restarted" in proc.stdout
    assert old.pids() == before
    assert old.hub.config_path.read_text() == config
    assert sorted(os.listdir(old.backups)) and "back up" not in proc.stdout
