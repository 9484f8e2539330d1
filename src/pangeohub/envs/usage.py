"""Which people's processes (servers, kernels, Dask schedulers and workers) run which environment version.

A process runs an environment when its interpreter path lies in a version folder: kernels are started as
``envs/NAME/current/bin/python``, so the link is resolved to tell the version. Processes on other machines (Slurm
nodes) are not seen here.
"""

from __future__ import annotations

import os
import pwd
from collections import defaultdict

import psutil

from pangeohub.envs.layout import EnvDir


def users_by_version(envdir: EnvDir, system_prefix: str) -> dict[int, set[str]]:
    """{version: {hub user names}} of the processes running this environment now."""
    root = os.path.realpath(envdir.path)
    found: dict[int, set[str]] = defaultdict(set)
    for proc in psutil.process_iter(["cmdline", "uids"]):
        cmdline = proc.info.get("cmdline") or []
        if not cmdline or "/" not in cmdline[0]:
            continue
        # The folder, not the file: bin/python is a link to the system interpreter.
        folder = os.path.realpath(os.path.dirname(cmdline[0]))
        relative = os.path.relpath(folder, root)
        head = relative.split(os.sep)[0]
        if relative.startswith("..") or not head.isdigit():
            continue
        uid = proc.info["uids"].real if proc.info.get("uids") else None
        found[int(head)].add(_person(uid, system_prefix))
    return dict(found)


def _person(uid: int | None, system_prefix: str) -> str:
    try:
        name = pwd.getpwuid(uid).pw_name
    except (KeyError, TypeError):
        return f"uid {uid}"
    return name.removeprefix(system_prefix) if system_prefix and name.startswith(system_prefix) else name


def in_use(envdir: EnvDir, system_prefix: str) -> set[str]:
    return set().union(*users_by_version(envdir, system_prefix).values()) if envdir.path.exists() else set()


