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
from pangeohub.resources import profiles
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
    return {
        "PANGEO_PROFILE": profile.name,
        "PANGEO_MEMORY_LIMIT": format_size(profile.memory),
        "PANGEO_CPU_LIMIT": f"{profile.cpus:g}",
        # Private and in the home (not the node's shared /tmp); Jupyter's runtime files stay in the home too.
        "TMPDIR": str(tmp),
    }


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
