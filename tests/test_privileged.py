"""Attacks on root's file work in people's homes (pangeohub.privileged) and on the end of an account.

Each test makes a real Linux account, lets it plant what an attacker would (a link to a root-only file or
folder, a link swapped in for a folder, a process that forks in a loop), runs the root operation the platform
runs on that account's home, and checks that root wrote, chmodded, chowned and made nothing outside the
person's own tree, and that the operation either finished safely or stopped with a clear error.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pangeohub import privileged
from pangeohub.errors import PangeoError
from pangeohub.resources import shared
from pangeohub.targets.local.hook import temp_dir
from pangeohub.targets.sysusers import end_processes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes Linux accounts and acts as root: needs root")


@pytest.fixture
def person():
    """A throwaway account with a 0700 home in a root-owned folder (as the platform makes them)."""
    root = Path(tempfile_dir())
    name = f"pv{secrets.token_hex(3)}"
    home = root / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True,
                   capture_output=True)
    home.chmod(0o700)
    entry = pwd.getpwnam(name)
    try:
        yield entry
    finally:
        end_processes(entry.pw_uid, name)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def tempfile_dir() -> str:
    import tempfile

    path = tempfile.mkdtemp(prefix="pangeohub-priv-", dir="/var/tmp")
    os.chmod(path, 0o755)
    return path


@pytest.fixture
def victim(tmp_path):
    """What root owns and a person must never get: a 0600 file and a 0755 folder of root's."""
    secret = tmp_path / "root-secret.txt"
    secret.write_text("root only")
    secret.chmod(0o600)
    folder = tmp_path / "root-folder"
    folder.mkdir(mode=0o755)
    return secret, folder


def as_person(entry, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", entry.pw_name, "--", *cmd], capture_output=True, text=True)


def plant(entry, name: str, target: Path) -> Path:
    """A link the person makes in their home (made as them: the kernel records them as its owner)."""
    link = Path(entry.pw_dir) / name
    assert as_person(entry, "ln", "-s", str(target), str(link)).returncode == 0
    return link


def untouched(secret: Path, folder: Path) -> None:
    assert secret.read_text() == "root only"
    info = secret.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, 0, 0o600)
    info = folder.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o755)
    assert not any(folder.iterdir())


# -- the spawn hook: TMPDIR in the home ---------------------------------------------------------------------

def test_spawn_hook_temp_dir_never_chmods_through_a_planted_link(person, victim):
    secret, folder = victim
    cache = Path(person.pw_dir) / ".cache"
    assert as_person(person, "mkdir", str(cache)).returncode == 0
    plant(person, ".cache/tmp", folder)  # ~/.cache/tmp -> a root folder: once, this turned /usr 0700
    temp_dir(person)
    untouched(secret, folder)


def test_spawn_hook_temp_dir_never_makes_a_folder_for_the_person_in_roots_tree(person, victim):
    secret, folder = victim
    plant(person, ".cache", folder)  # ~/.cache -> a root folder: root would make 'tmp' there, owned by them
    temp_dir(person)
    untouched(secret, folder)


def test_spawn_hook_temp_dir_is_private_and_the_persons(person):
    temp_dir(person)
    made = Path(person.pw_dir) / ".cache" / "tmp"
    info = made.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (person.pw_uid, 0o700)


# -- shared links and the quickstart file -------------------------------------------------------------------

def test_shared_links_and_quickstart_never_follow_what_the_person_put_there(person, victim, tmp_path):
    from pangeohub.config import load_config

    secret, folder = victim
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"state_dir: {tmp_path}/state\nusers:\n  home_root: {Path(person.pw_dir).parent}\n")
    config = load_config(config_file)
    plant(person, config.shared.data_link, folder)
    plant(person, config.homes.quickstart_name, secret)
    shared.link_into_home(config, person)
    untouched(secret, folder)
    assert os.readlink(Path(person.pw_dir) / config.shared.data_link) == str(folder)  # their link, kept
    scratch_link = Path(person.pw_dir) / config.shared.scratch_link
    assert scratch_link.is_symlink() and os.lstat(scratch_link).st_uid == person.pw_uid


def test_a_home_swapped_for_a_link_is_refused(person, victim):
    secret, folder = victim
    home = Path(person.pw_dir)
    shutil.rmtree(home)
    home.symlink_to(folder)  # (only root can do this: the folder of homes is root's) — refused all the same
    with pytest.raises(PangeoError, match="cannot open the home"):
        privileged.create_file(person, "x.txt", b"data")
    with pytest.raises(PangeoError, match="cannot open the home"):
        privileged.make_home_private(person)
    untouched(secret, folder)


# -- restore: the home made to hold the restored copy ---------------------------------------------------------

def restored_copy(tmp_path: Path, person) -> Path:
    """A restored home in a root-only staging folder, owners already matched to the person (as restore does)."""
    stage = tmp_path / "stage"
    stage.mkdir(mode=0o700)
    copy = stage / "home"
    (copy / "notes").mkdir(parents=True)
    (copy / "notes" / "thesis.txt").write_text("chapter one")
    (copy / "results.csv").write_text("1,2,3")
    os.symlink("notes/thesis.txt", copy / "latest")
    for path in (copy, copy / "notes", copy / "notes" / "thesis.txt", copy / "results.csv", copy / "latest"):
        os.lchown(path, person.pw_uid, person.pw_gid)
    return copy


def test_restore_replaces_the_home_as_the_person_through_planted_links(person, victim, tmp_path):
    secret, folder = victim
    copy = restored_copy(tmp_path, person)
    plant(person, "results.csv", secret)  # the full restore once copied into existing homes through these
    plant(person, "notes", folder)
    (Path(person.pw_dir) / "stale.txt").write_text("from before")
    privileged.replace_home_content(person, str(copy))
    untouched(secret, folder)
    home = Path(person.pw_dir)
    assert (home / "notes" / "thesis.txt").read_text() == "chapter one"
    assert not (home / "notes").is_symlink() and (home / "results.csv").read_text() == "1,2,3"
    assert os.readlink(home / "latest") == "notes/thesis.txt" and not (home / "stale.txt").exists()
    assert all(os.lstat(p).st_uid == person.pw_uid for p in home.rglob("*"))
    assert (home.stat().st_mode & 0o777, home.stat().st_uid) == (0o700, person.pw_uid)


def test_restore_through_a_racing_process_of_the_person(person, victim, tmp_path):
    """A process of theirs swaps the folder for a link over and over while the home is replaced."""
    secret, folder = victim
    copy = restored_copy(tmp_path, person)
    home = person.pw_dir
    racer = subprocess.Popen(["runuser", "-u", person.pw_name, "--", "sh", "-c",
                              f"while true; do rm -rf {home}/notes; ln -sfn {folder} {home}/notes; "
                              f"ln -sfn {secret} {home}/results.csv; done"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        for _ in range(5):
            try:
                privileged.replace_home_content(person, str(copy))
            except PangeoError as exc:
                assert f"as {person.pw_name}" in str(exc)  # stopped with a clear error, as the person
    finally:
        racer.kill()
        racer.wait()
    untouched(secret, folder)


def test_restore_staging_stays_out_of_the_persons_reach(person, tmp_path):
    """The child gets the restored copy as an open folder: the person is never handed a path into root's."""
    copy = restored_copy(tmp_path, person)
    peek = as_person(person, "ls", str(copy))
    assert peek.returncode != 0
    privileged.replace_home_content(person, str(copy))
    assert (copy.parent.stat().st_mode & 0o777, copy.parent.stat().st_uid) == (0o700, 0)


def test_a_full_home_stops_the_restore_with_a_clear_error(person, tmp_path):
    """The home is a small filesystem (as a quota image is) and the copy does not fit: a clear error naming the
    cause, and the person's home holds only what fitted (root wrote nowhere else)."""
    copy = restored_copy(tmp_path, person)
    big = copy / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    os.chown(big, person.pw_uid, person.pw_gid)
    home = person.pw_dir
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=256k,uid={person.pw_uid},gid={person.pw_gid},mode=0700",
                    "tmpfs", home], check=True)
    try:
        with pytest.raises(PangeoError, match="No space left on device"):
            privileged.replace_home_content(person, str(copy))
    finally:
        subprocess.run(["umount", "-l", home], check=False)


# -- a home moved into its quota image ----------------------------------------------------------------------

def test_moving_a_home_into_its_image_copies_links_as_links_and_keeps_what_is_there(person, victim, tmp_path):
    secret, folder = victim
    home = Path(person.pw_dir)
    (home / "data.txt").write_text("mine")
    plant(person, "secret-link", secret)
    # The person's filesystem mounted over the home, as homes.ensure_home does; the directory underneath is
    # reached only through the descriptor opened before the mount.
    image = tmp_path / "image-root"
    image.mkdir()
    os.chown(image, person.pw_uid, person.pw_gid)
    (image / "data.txt").write_text("already in the image")
    with privileged.opened_home(person) as covered:
        subprocess.run(["mount", "--bind", str(image), str(home)], check=True)
        try:
            privileged.move_covered_home(person, covered)
            assert not os.listdir(covered)  # the covered directory is left empty
        finally:
            subprocess.run(["umount", str(home)], check=False)
    untouched(secret, folder)
    assert os.readlink(image / "secret-link") == str(secret)  # a link, never the secret's content
    assert (image / "data.txt").read_text() == "already in the image"  # no overwrite
    assert not any(home.iterdir())


# -- the end of an account: no process survives --------------------------------------------------------------

def test_a_process_that_keeps_forking_does_not_survive_the_end_of_its_account(person):
    """Fork, exit, fork again: each pid lives a millisecond, so a scan-and-kill never catches it."""
    import psutil

    reaper(True)  # the dead it leaves come to this process to be read (this machine's pid 1 reads none)
    script = "import os, time\nwhile True:\n    if os.fork():\n        os._exit(0)\n    time.sleep(0.001)\n"
    for _ in range(3):
        subprocess.Popen(["runuser", "-u", person.pw_name, "--", "/usr/bin/python3", "-c", script],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def pids_of_person() -> set[int]:
        return {p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and person.pw_uid in p.info["uids"]}

    time.sleep(1)
    assert len(pids_of_person()) > 10  # running: new pids (and the dead it leaves) keep appearing
    end_processes(person.pw_uid, person.pw_name)
    after = pids_of_person()
    time.sleep(1)
    assert pids_of_person() <= after  # nothing new: no process of theirs is left to fork
    alive = [p for p in psutil.process_iter(["uids", "status"])
             if p.info["uids"] and person.pw_uid in p.info["uids"] and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert alive == []
    reaper(False)


def reaper(on: bool) -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    if not on:
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def test_ending_root_is_refused():
    with pytest.raises(PangeoError, match="root"):
        end_processes(0)


# -- release: removing a person deletes their home, never what it links to ---------------------------------

def test_removing_a_person_never_follows_a_link_out_of_their_home(tmp_path, victim):
    from pangeohub.config import load_config
    from pangeohub.targets.local import LocalTarget
    from pangeohub.targets.sysusers import ensure_account, our_account

    secret, folder = victim
    homes = Path(tempfile_dir())
    prefix = f"rl{secrets.token_hex(2)}-"
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"state_dir: {tmp_path}/state\nusers:\n  home_root: {homes}\n  system_prefix: {prefix}\n"
                           "limits:\n  enforce: false\n")
    config = load_config(config_file)
    entry = ensure_account("leaver", config.users)
    try:
        plant(entry, "data", folder)
        plant(entry, "notes.txt", secret)
        problems = []

        def step(what, func, *args, **kwargs):
            try:
                return func(*args, **kwargs)
            except (PangeoError, OSError) as exc:
                problems.append(f"{what}: {exc}")

        assert LocalTarget(config).release_person("leaver", False, step) is True
        assert problems == []
        untouched(secret, folder)
        assert not Path(entry.pw_dir).exists() and our_account(entry.pw_name) is None
    finally:
        subprocess.run(["userdel", entry.pw_name], capture_output=True)
        shutil.rmtree(homes, ignore_errors=True)


# -- backup: a destination that is not root's own is refused --------------------------------------------------

@pytest.mark.parametrize("problem", ["owner", "mode"])
def test_backup_refuses_a_destination_others_control(person, tmp_path, problem):
    from pangeohub.ops.backup import ensure_destination
    from pangeohub.ops.restic import Repository

    dest = Path(tempfile_dir()) / "backups"
    dest.mkdir()
    if problem == "owner":
        os.chown(dest, person.pw_uid, person.pw_gid)  # theirs: they could swap what root writes there
        match = "belongs to uid"
    else:
        dest.chmod(0o777)
        match = "may be written by others"
    with pytest.raises(PangeoError, match=match):
        ensure_destination(Repository(location=dest, password_file=tmp_path / "pw", cache_dir=tmp_path / "cache"))
    assert list(dest.iterdir()) == []  # nothing was written there
    shutil.rmtree(dest.parent)
