"""The spawn hook of the resources feature: everything a server needs before it starts.

Runs in the hub as root (see pangeohub.hub.hooks): mounts the quota'd home, links the shared folders and
gives the quickstart, then prepares the user's cgroup with the chosen profile's limits. The spawner puts the
server into that cgroup in its preexec function (see PangeoSpawner.make_preexec_fn).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import threading
from collections import defaultdict
from pathlib import Path

from pangeohub import privileged
from pangeohub.resources import profiles, shared
from pangeohub.targets.local import cgroups, homes
from pangeohub.targets.local.cgroup_base import keyed, read
from pangeohub.units import format_size

# Two servers of one person (named servers) must not both mount the home at once.
_home_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


def prepare_user(config, account: pwd.struct_passwd, profile, admin: bool, log=None) -> cgroups.UserCgroup | None:
    """Blocking part (runs in a worker thread): home, shared folders, cgroup."""
    with _home_locks[account.pw_name]:
        homes.ensure_home(config, account)
        shared.ensure_shared_dirs(config)
        shared.join_admin_group(config, account, admin)
        shared.link_into_home(config, account, log)
    runtime_dir(config, account)
    temp_dir(account)
    return cgroups.user_cgroup(config, account.pw_name, profile)


def temp_dir(account: pwd.struct_passwd) -> None:
    """The person's TMPDIR, inside their home: private (0700 under a 0700 home), and a file written there counts
    against their own home quota instead of filling the machine's shared /tmp. Made through descriptors: a
    ``~/.cache`` or ``~/.cache/tmp`` the person pointed elsewhere is theirs to use, and root never follows it."""
    privileged.private_dir(account, ".cache", "tmp")


def runtime_dir(config, account: pwd.struct_passwd) -> Path:
    """Jupyter's runtime files (kernel connection files) outside the home: with a full home, kernels must
    still start, so that the person can look at and delete files."""
    path = config.state_dir / "run" / "users" / account.pw_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o700)
    return path


async def resources_hook(spawner, account: pwd.struct_passwd) -> dict[str, str]:
    config = spawner.runtime.config
    # apply_user_options chose it; a launcher that bypasses that hook still gets a checked choice.
    admin = bool(spawner.user.admin)
    profile = spawner.profile or profiles.choose(config, spawner.user_options, spawner._groups(), admin)
    loop = asyncio.get_running_loop()
    cgroup = await loop.run_in_executor(None, prepare_user, config, account, profile, admin, spawner.log)
    spawner.cgroup = cgroup
    # Upstream exports these as MEM_LIMIT / CPU_LIMIT (jupyter-resource-usage shows them in JupyterLab).
    spawner.mem_limit = profile.memory
    spawner.cpu_limit = float(profile.cpus)
    env = {
        "PANGEO_PROFILE": profile.name,
        "PANGEO_MEMORY_LIMIT": format_size(profile.memory),
        "PANGEO_CPU_LIMIT": f"{profile.cpus:g}",
        "PANGEO_SHARED_DATA": str(shared.data_dir(config)),
        "PANGEO_SHARED_SCRATCH": str(shared.scratch_dir(config)),
        "JUPYTER_RUNTIME_DIR": str(config.state_dir / "run" / "users" / account.pw_name),
        "TMPDIR": str(Path(account.pw_dir) / ".cache" / "tmp"),
    }
    if cgroup is not None:
        # The kernel extension (kernel_notice) reports OOM kills past this count to the person.
        env["PANGEO_MEMORY_EVENTS"] = cgroup.memory_events
        env["PANGEO_OOM_BASELINE"] = str(keyed(read(Path(cgroup.memory_events)), "oom_kill"))
        env["PANGEO_SPAWN_ID"] = secrets.token_hex(8)
        if cgroup.pids_events:
            env["PANGEO_PIDS_EVENTS"] = cgroup.pids_events
            env["PANGEO_PROCESS_LIMIT"] = str(cgroup.processes)
            env["PANGEO_PIDS_BASELINE"] = str(keyed(read(Path(cgroup.pids_events)), "max"))
    if config.homes.quota:
        env["PANGEO_HOME_QUOTA"] = format_size(config.homes.quota)
    return env
