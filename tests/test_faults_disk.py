"""A full state disk: the platform's state directory on a small filesystem of its own, filled to the last block
while the platform runs. Operators' commands fail with a clear error (no traceback), no database is damaged,
and once space is freed everything works again with no repair.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from harness import Platform
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform


def fill(directory: Path) -> Path:
    """A file that takes every free block of ``directory``'s filesystem (root's reserved blocks too)."""
    filler = directory / "filler"
    free = os.statvfs(directory).f_bfree * os.statvfs(directory).f_frsize
    subprocess.run(["fallocate", "-l", str(max(free - (16 << 20), 4096)), str(filler)], check=True)
    take_the_rest(filler)
    return filler


def take_the_rest(filler: Path) -> None:
    """The last blocks, until the filesystem says no. Unbuffered: a buffered file would try the refused bytes
    again when closed and raise there. Again right before a command: the running platform hands blocks back
    now and then (a database's write-ahead log shrinking), and a few were enough for `users add` to succeed."""
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
            os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def integrity(path: Path) -> str:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def test_a_full_state_disk_gives_clear_errors_damages_nothing_and_recovers_once_space_is_freed():
    # Homes without images: only the state directory is on the small filesystem.
    platform = Platform(extra={"homes": {"quota": 0}})
    state = Path(platform.config_data["state_dir"])
    image = platform.root / "state.img"
    subprocess.run(["truncate", "-s", "400M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    state.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(state)], check=True)
    try:
        platform.up()
        name, token = platform.started_user()
        platform.run_code(name, token, "open('notes.txt', 'w').write('written before')")
        before, _ = platform.add_user()
        filler = fill(state)

        time.sleep(2)
        take_the_rest(filler)
        added = platform.cli("users", "add", "fullday", "--password-stdin", input="a-long-password\n",
                             check=False)
        assert added.returncode != 0 and "Traceback" not in added.stderr, added.stderr
        assert "full" in added.stderr or "No space left" in added.stderr, added.stderr
        print(f"\nusers add on a full state disk: {added.stderr.strip()}")
        status = platform.cli("status", check=False)
        assert "Traceback" not in status.stdout + status.stderr
        # A person already working: the hub cannot record anything now; whatever they get, nothing hangs.
        try:
            out = platform.run_code(name, token, "print('working')")
            print(f"a running server's new kernel on a full state disk: {out.stdout.strip() or out.error}")
        except Exception as exc:
            print(f"a running server's new kernel on a full state disk: {type(exc).__name__}: {exc}"[:300])

        filler.unlink()
        # Their server was never stopped, and their files are where they left them.
        assert platform.run_code(name, token, "print(open('notes.txt').read())").stdout.strip() == "written before"
        for db in (state / "hub" / "jupyterhub.sqlite", state / "accounts.sqlite"):
            assert integrity(db) == "ok", db
        platform.cli("users", "add", "fullday", "--password-stdin", input="a-long-password\n")
        platform.passwords["fullday"] = "a-long-password"

        async def later(who):
            async with platform.sim(who) as user:
                await user.login()
                await user.start_server()
                return (await user.run("print(6 * 7)")).stdout.strip()

        assert run_sync(later("fullday")) == "42"
        assert run_sync(later(before)) == "42"  # added before the disk filled: nothing of theirs was lost
        assert "PASS" in platform.cli("check", timeout=600).stdout
    finally:
        (state / "filler").unlink(missing_ok=True)  # a failure while full: the teardown needs the space
        platform.close()
        subprocess.run(["umount", "-l", str(state)], capture_output=True)
        image.unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", str(platform.root)], capture_output=True)
