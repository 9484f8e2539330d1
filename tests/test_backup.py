"""Backup and restore for real: a running platform with data of every kind, restic, a destroyed state dir.

Everything is checked through what people and admins use: logging in, starting a server, reading a file in a
kernel, reading scratch objects with the person's own credentials, the hub API and the admin CLI.
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from harness import Platform

from pangeohub.accounts import Account, AccountStore
from pangeohub.hubapi import HubAPI
from pangeohub.storage.admin import admin_client, endpoint_url, s3_client
from pangeohub.storage.credentials import CredentialStore
from pangeohub.targets.sysusers import ensure_account
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

THESIS = "chapter one: sea surface temperature"


def run_code(hub, name, code, start=True):
    """Log in as ``name`` with their password, start their server, run ``code`` in a kernel; returns stdout."""
    async def go():
        async with hub.sim(name, timeout=180) as user:
            await user.login()
            if start:
                await user.start_server()
            return await user.run(code)

    result = run_sync(go())
    assert result.ok, f"{result.error}\n{result.stderr[-2000:]}"
    return result.stdout.strip()


def scratch(hub, name):
    """An S3 client with ``name``'s own scratch credentials (what their server is given)."""
    return s3_client(endpoint_url(hub.rt), CredentialStore(hub.rt.paths.root).get(name))


def users_json(hub):
    rows = json.loads(hub.cli("users", "list", "--json").stdout)
    return {row["name"]: row for row in rows}


def accounts(hub):
    return {a.name: (a.admin, a.status, a.expires, a.groups, a.email) for a in AccountStore(hub.rt.paths.accounts_db).list()}


def hub_api_user(hub, token):
    request = urllib.request.Request(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def destroy(hub):
    """What a dead machine leaves: nothing of the platform's state, accounts or homes."""
    hub.down()
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(hub.prefix):
            subprocess.run(["userdel", "-r", entry.pw_name], capture_output=True)
    shutil.rmtree(hub.rt.paths.root)
    shutil.rmtree(hub.rt.config.users.home_root, ignore_errors=True)


@pytest.fixture
def dest():
    path = Path(tempfile.mkdtemp(prefix="pangeohub-backup-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_backup_destroy_restore_then_one_person(dest, tmp_path):
    hub = Platform(extra={"backup": {"destination": str(dest), "schedule": "10m", "keep": 3}})
    try:
        hub.up()
        # -- a platform with data of every kind ------------------------------------------------------------
        hub.add_user("alice", admin=True)
        hub.passwords["bob"] = "bob-password-123"
        hub.cli("users", "add", "bob", "--password-stdin", "--group", "climate", input="bob-password-123\n")
        hub.cli("users", "generate", "--count", "1", "--prefix", "ws", "--expires", "3d", "--out", str(tmp_path))
        AccountStore(hub.rt.paths.accounts_db).add(
            Account("carol", status="pending", email="carol@example.org"), "carol-password-123")
        hub.cli("catalog", "add", "backup_test", "/srv/data/sst.zarr", "-d", "kept across restores")
        hub.cli("users", "budget", "bob", "--core-hours", "42")
        token = hub.cli("token", "alice", "--note", "backup test").stdout.strip()
        assert run_code(hub, "alice", f"import pathlib; p = pathlib.Path.home() / 'notes'; p.mkdir(); "
                                      f"(p / 'thesis.txt').write_text({THESIS!r}); print('ok')") == "ok"
        run_code(hub, "bob", "import pathlib; (pathlib.Path.home() / 'bob.txt').write_text('bob'); print('ok')")
        scratch(hub, "alice").put_object(Bucket="scratch", Key="alice/results.txt", Body=b"42")
        scratch(hub, "bob").put_object(Bucket="scratch", Key="bob/run.txt", Body=b"bob's run")
        before = users_json(hub)
        before_store = accounts(hub)
        api = HubAPI(hub.rt)
        before_hub = {name: api.user(name) for name in ("alice", "bob")}
        old_uid = hub.system_user("alice").pw_uid

        # -- the schedule backs up the running platform, then a backup by hand -----------------------------
        deadline = time.monotonic() + 180
        while not dest.joinpath("snapshots").is_dir() or not any(dest.joinpath("snapshots").iterdir()):
            assert time.monotonic() < deadline, hub.rt.paths.log("backup").read_text()
            time.sleep(2)
        made = hub.cli("backup", "--to", str(dest), timeout=600)
        assert made.stdout.startswith("snapshot") or "snapshot " in made.stdout, made.stdout
        listed = json.loads(hub.cli("backup", "list", "--from", str(dest), "--json").stdout)
        assert len(listed) >= 2 and all(row["size"] > 0 for row in listed), listed
        password = tmp_path / "backup_password"  # kept apart from the machine, as the admin guide says
        shutil.copy(hub.rt.paths.secret("backup_password"), password)

        # -- the machine is lost; a new one makes its accounts in another order, so uids differ -------------
        destroy(hub)
        for name in ("filler", "bob", "alice"):
            ensure_account(name, hub.rt.config.users)
        assert hub.system_user("alice").pw_uid != old_uid
        # The new machine's alice already has a home, in which 'notes' (a folder of the backup) is a link to a
        # directory of root's: the full restore must not copy her files through it.
        decoy_dir = tmp_path / "root-only-dir"
        decoy_dir.mkdir(mode=0o700)
        alice = hub.system_user("alice")
        os.symlink(decoy_dir, Path(alice.pw_dir) / "notes")
        os.lchown(Path(alice.pw_dir) / "notes", alice.pw_uid, alice.pw_gid)
        restored = hub.cli("restore", "--from", str(dest), "--password-file", str(password), timeout=600)
        assert "restored snapshot" in restored.stdout, restored.stdout
        assert not any(decoy_dir.iterdir()) and decoy_dir.stat().st_uid == 0
        hub.up()

        # -- everything as it was, seen through the public surfaces ----------------------------------------
        assert not HubAPI(hub.rt).user("alice")["servers"]  # servers of the old machine are not taken for running
        assert run_code(hub, "alice", "import pathlib, os; p = pathlib.Path.home() / 'notes/thesis.txt'; "
                                      "print(p.read_text(), p.stat().st_uid == os.getuid())") == f"{THESIS} True"
        thesis = Path(hub.system_user("alice").pw_dir) / "notes" / "thesis.txt"
        assert pwd.getpwuid(thesis.stat().st_uid).pw_name == hub.prefix + "alice"
        peek = subprocess.run(["runuser", "-u", hub.prefix + "bob", "--", "cat", str(thesis)], capture_output=True)
        assert peek.returncode != 0 and THESIS.encode() not in peek.stdout  # nobody else reads what came back
        assert scratch(hub, "alice").get_object(Bucket="scratch", Key="alice/results.txt")["Body"].read() == b"42"
        assert run_code(hub, "bob", "print(open('bob.txt').read())") == "bob"
        assert scratch(hub, "bob").get_object(Bucket="scratch", Key="bob/run.txt")["Body"].read() == b"bob's run"
        after = users_json(hub)
        for name, row in before.items():
            for key in ("admin", "groups", "status", "system_user"):
                assert after[name].get(key) == row.get(key), (name, key, row, after[name])
        assert "carol" in hub.cli("users", "pending").stdout
        assert accounts(hub) == before_store  # workshop expiry, pending sign-up, admin flag, groups, hashes
        assert any(name.startswith("ws") and row[2] for name, row in before_store.items())
        for name, user in before_hub.items():
            now = api.user(name)
            assert (now["admin"], sorted(now["groups"])) == (user["admin"], sorted(user["groups"]))
        assert hub_api_user(hub, token)["name"] == "alice"
        catalog = json.loads(hub.cli("catalog", "list", "--json").stdout)
        assert "backup_test" in json.dumps(catalog)
        budget = json.loads(hub.cli("users", "budget", "bob", "--json").stdout)
        assert (budget["limit"], budget["source"]) == (42, "set with `pangeohub users budget`")

        # -- one person back alone: alice's files and scratch as of the snapshot, bob's newer data kept ----
        run_code(hub, "alice", "import pathlib; (pathlib.Path.home() / 'notes/thesis.txt').write_text('lost'); "
                               "(pathlib.Path.home() / 'later.txt').write_text('x'); print('ok')", start=False)
        bob_home = Path(hub.system_user("bob").pw_dir)
        subprocess.run(["runuser", "-u", hub.prefix + "bob", "--", "sh", "-c", f"echo newer > {bob_home}/newer.txt"],
                       check=True)
        scratch(hub, "alice").put_object(Bucket="scratch", Key="alice/results.txt", Body=b"overwritten")
        scratch(hub, "alice").put_object(Bucket="scratch", Key="alice/later.txt", Body=b"later")
        scratch(hub, "bob").put_object(Bucket="scratch", Key="bob/newer.txt", Body=b"newer")
        # A process of alice's still runs (a background job) and keeps planting a link to a root-only file where
        # the restore writes her backed-up notes: root must neither write through it nor give alice the file.
        decoy = tmp_path / "root-only.txt"
        decoy.write_text("root's own")
        decoy.chmod(0o600)
        alice = hub.system_user("alice")
        planter = subprocess.Popen(
            ["runuser", "-u", alice.pw_name, "--", "sh", "-c",
             f"while true; do rm -rf {alice.pw_dir}/notes; ln -sfn {decoy} {alice.pw_dir}/notes 2>/dev/null; "
             f"ln -sfn {decoy} {alice.pw_dir}/later.txt 2>/dev/null; done"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        one = hub.cli("restore", "--from", str(dest), "--password-file", str(password), "--user", "alice")
        assert "restored alice's home" in one.stdout, one.stdout
        assert planter.wait(timeout=30) is not None  # the restore ended every process of alice's first
        assert decoy.read_text() == "root's own"
        assert (decoy.stat().st_uid, decoy.stat().st_mode & 0o777) == (0, 0o600)
        assert run_code(hub, "alice", "import pathlib; h = pathlib.Path.home(); "
                                      "print((h / 'notes/thesis.txt').read_text(), (h / 'later.txt').exists())"
                        ) == f"{THESIS} False"
        alice_s3 = scratch(hub, "alice")
        assert alice_s3.get_object(Bucket="scratch", Key="alice/results.txt")["Body"].read() == b"42"
        keys = {o["Key"] for o in alice_s3.list_objects_v2(Bucket="scratch", Prefix="alice/").get("Contents", [])}
        assert keys == {"alice/results.txt"}
        assert (bob_home / "newer.txt").read_text() == "newer\n"
        assert scratch(hub, "bob").get_object(Bucket="scratch", Key="bob/newer.txt")["Body"].read() == b"newer"

        nobody = hub.cli("restore", "--from", str(dest), "--password-file", str(password), "--user", "zed",
                         check=False)
        assert nobody.returncode == 2 and "nobody of that name" in nobody.stderr and "Traceback" not in nobody.stderr
    finally:
        hub.close()


# -- bad inputs: each one clear line, nothing lost ---------------------------------------------------------

def _restic(repo: Path, password: Path, *args: str) -> None:
    subprocess.run(["restic", "--repo", str(repo), "--password-file", str(password), "--cache-dir",
                    str(repo.parent / "cache"), *args], check=True, capture_output=True)


def _error(proc, *words):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert lines and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], proc.stderr


def test_bad_inputs(dest, tmp_path):
    hub = Platform()
    try:
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        _error(hub.cli("backup", "--to", str(blocker / "backups"), check=False), "not a writable directory")
        _error(hub.cli("restore", "--from", str(tmp_path / "gone"), check=False), "does not exist")
        empty = tmp_path / "empty"
        empty.mkdir()
        right, wrong = tmp_path / "right", tmp_path / "wrong"
        right.write_text("the-right-password\n")
        wrong.write_text("not-it\n")
        _error(hub.cli("restore", "--from", str(empty), "--password-file", str(right), check=False),
               "no restic repository there")
        repo = dest / "repo"
        _restic(repo, right, "init")
        data = tmp_path / "data"
        data.mkdir()
        (data / "f.txt").write_text("x")
        _restic(repo, right, "backup", "--tag", "pangeohub", "--host", "pangeohub", str(data))
        listed = hub.cli("backup", "list", "--from", str(repo), "--password-file", str(right))
        assert len(listed.stdout.strip().splitlines()) == 2, listed.stdout
        _error(hub.cli("backup", "list", "--from", str(repo), "--password-file", str(wrong), check=False),
               "does not open")
        _error(hub.cli("restore", "--from", str(repo), "--password-file", str(right), "--snapshot", "deadbeef",
                       check=False), "'deadbeef'", "is not a snapshot")
        _error(hub.cli("restore", "--from", str(repo), "--password-file", str(right), check=False),
               "not a pangeohub backup")
        for pack in (repo / "data").rglob("*"):
            if pack.is_file():
                pack.write_bytes(b"damaged")
        _error(hub.cli("restore", "--from", str(repo), "--password-file", str(right), check=False), "restic failed")
        assert not hub.rt.paths.accounts_db.exists()  # a failed restore leaves no half-made platform
    finally:
        hub.close()


def test_schedule_backs_up_every_period_and_keeps_the_newest(tmp_path):
    """The supervisor's job (`backup schedule`) with a real restic repository and a clock that runs fast."""
    from types import SimpleNamespace

    from pangeohub.config import parse_config
    from pangeohub.ops.restic import HOST, TAG, Repository
    from pangeohub.ops.schedule import run_schedule

    password = tmp_path / "password"
    password.write_text("schedule-test\n")
    repo = Repository(location=tmp_path / "repo", password_file=password, cache_dir=tmp_path / "cache")
    repo.init()
    data = tmp_path / "data"
    data.mkdir()
    now, taken = [time.time()], []

    class Done(Exception):
        pass

    def backup():
        if len(taken) == 4:
            raise Done
        (data / "f.txt").write_text(f"version {len(taken)}")
        summary = repo.stream("backup", "--host", HOST, "--tag", TAG, str(data), what="test",
                              on_message=lambda message: None)
        taken.append((now[0], summary["snapshot_id"]))
        return {"snapshot": summary["snapshot_id"], "seconds": 0.0}

    def sleep(seconds):
        now[0] += seconds

    rt = SimpleNamespace(config=parse_config("backup: {schedule: 10m, keep: 2}"))
    with pytest.raises(Done):
        run_schedule(rt, backup, lambda: repo, echo=lambda line: None, sleep=sleep, clock=lambda: now[0])
    assert [round(b[0] - a[0]) for a, b in zip(taken, taken[1:])] == [600, 600, 600]
    kept = sorted(s.short_id for s in repo.snapshots())
    assert kept == sorted(snapshot for _, snapshot in taken[-2:])
