"""The Slurm target's own spawn hook: what a server job needs before it is submitted.

The home is the site's (or the platform's, made with the account) on the shared filesystem; here only the
person's private directories in it are made, as the person (``runuser``): a home on NFS with root squashed
refuses root. Limits are not set up here: the profile's CPUs and memory are the job's request, and Slurm
(``task/cgroup``) enforces them on the node.
"""

from __future__ import annotations

import asyncio
import pwd
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.resources import profiles, shared
from pangeohub.targets.slurm.spawner import log_dir
from pangeohub.units import format_size


async def slurm_hook(spawner, account: pwd.struct_passwd) -> dict[str, str]:
    config = spawner.runtime.config
    admin = bool(spawner.user.admin)
    profile = spawner.profile or profiles.choose(config, spawner.user_options, spawner._groups(), admin)
    spawner.profile = profile
    spawner.mem_limit = profile.memory  # upstream exports MEM_LIMIT / CPU_LIMIT (jupyter-resource-usage)
    spawner.cpu_limit = float(profile.cpus)
    home = Path(account.pw_dir)
    tmp = home / ".cache" / "tmp"
    await _make_private_dirs(account.pw_name, [log_dir(account.pw_dir), str(tmp)])
    await asyncio.get_running_loop().run_in_executor(None, _shared_folders, config, account, admin, spawner.log)
    return {
        "PANGEO_SHARED_DATA": str(shared.data_dir(config)),
        "PANGEO_SHARED_SCRATCH": str(shared.scratch_dir(config)),
        "PANGEO_PROFILE": profile.name,
        "PANGEO_MEMORY_LIMIT": format_size(profile.memory),
        "PANGEO_CPU_LIMIT": f"{profile.cpus:g}",
        # Private and in the home (not the node's shared /tmp); Jupyter's runtime files stay in the home too.
        "TMPDIR": str(tmp),
    }


def _shared_folders(config, account: pwd.struct_passwd, admin: bool, log) -> None:
    """The shared data and scratch folders, linked into the home as on one machine. They must be on the
    cluster's shared filesystem (`up` says so when they are in the state directory)."""
    shared.ensure_shared_dirs(config)
    if config.target.slurm.accounts == "platform":  # a site's accounts' groups are the site's
        shared.join_admin_group(config, account, admin)
    try:
        shared.link_into_home(config, account, log)
    except OSError as exc:  # a home on NFS that squashes root: the folders are still at their paths
        log.warning("shared folders not linked into %s: %s", account.pw_dir, exc)


async def _make_private_dirs(user: str, paths: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "runuser", "-u", user, "--", "mkdir", "-p", "-m", "700", *paths,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd="/")
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    except asyncio.TimeoutError:
        proc.kill()
        raise PangeoError(f"making {', '.join(paths)} as {user} took over 30 s",
                          "check the shared filesystem of the homes") from None
    if proc.returncode:
        raise PangeoError(f"cannot make {', '.join(paths)} as {user}: {err.decode().strip()}",
                          "the home must exist and belong to the person")
