"""Faults a machine brings: a power cut ("reboot") kills every process of the platform at once and loses the
mounts, cgroups and run state; the next `up` must bring back every account, home file and login, and `check`
must pass. (A killed supervisor alone, or one killed service, is covered in test_release.py / test_platform.py.)
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pangeohub.services.supervisor import supervisor_pid

pytestmark = pytest.mark.platform


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def _owned_by_prefix(prefix: str) -> set[int]:
    uids = {entry.pw_uid for entry in pwd.getpwall() if entry.pw_name.startswith(prefix)}
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) in uids}


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


def _cgroup_dirs(pids: set[int]) -> set[Path]:
    dirs = set()
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
                if line.startswith("0::") and line[3:] not in ("/", ""):
                    dirs.add(Path("/sys/fs/cgroup") / line[3:].lstrip("/"))
        except OSError:
            pass
    return dirs


def test_a_power_cut_loses_no_account_file_or_login_and_up_brings_everything_back(fresh_platform):
    from pangeohub.targets.local import homes

    hub = fresh_platform
    hub.up()
    name, token = hub.started_user()
    hub.run_code(name, token, "import pathlib; (pathlib.Path.home() / 'thesis.txt').write_text('chapter 1')")
    other, _ = hub.add_user()

    # Every process of the platform killed at the same instant, as a power cut does.
    victims = (_descendants(supervisor_pid(hub.rt)) | _owned_by_prefix(hub.prefix)) - {os.getpid()}
    cgroups = {d for d in _cgroup_dirs(victims) if hub.prefix in str(d)}
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(2)
    # What a reboot loses besides the processes: the home mounts, the cgroups and the run state.
    for account in (hub.prefix + name, hub.prefix + other):
        for point in homes.mount_points(homes.image_path(hub.rt.config, account)):
            subprocess.run(["umount", "-l", point], check=True)
    for directory in sorted(cgroups, key=lambda d: len(d.parts), reverse=True):
        subprocess.run(["rmdir", str(directory)], capture_output=True)
    shutil.rmtree(hub.rt.paths.run)

    started = time.monotonic()
    hub.up()
    print(f"up after a power cut: {time.monotonic() - started:.1f}s")
    listed = {row["name"] for row in json.loads(hub.cli("users", "list", "--json").stdout)}
    assert {name, other} <= listed

    async def back():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server()
            return (await user.run("import pathlib; print((pathlib.Path.home() / 'thesis.txt').read_text())")).stdout

    from pangeohub.usersim import run_sync

    assert "chapter 1" in run_sync(back())
    hub.cli("check")
