"""The environment of a user's Dask processes: the same as their notebook's, minus anything of root's.

Storage variables (``PANGEO_SCRATCH``, object-store credentials) are set on the notebook server by spawn hooks;
the gateway copies the allow-listed ones from the user's running notebook server, which every kernel inherits,
so that ``Gateway().new_cluster()`` needs no arguments to give workers the same access.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
from pathlib import Path

import psutil

USERSITE_DIR = Path(__file__).parent / "usersite"


def usersite_pythonpath(existing: str | None = None) -> str:
    parts = [str(USERSITE_DIR)] + ([existing] if existing else [])
    return os.pathsep.join(parts)


def allowed(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def server_environ(account: pwd.struct_passwd, hub_name: str) -> dict[str, str]:
    """Environment of the user's default notebook server (empty if it does not run)."""
    for proc in psutil.process_iter(["uids", "cmdline"]):
        try:
            if not proc.info["uids"] or proc.info["uids"].real != account.pw_uid:
                continue
            if not any("jupyterhub-singleuser" in part for part in proc.info["cmdline"] or []):
                continue
            env = proc.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if env.get("JUPYTERHUB_USER") == hub_name and not env.get("JUPYTERHUB_SERVER_NAME"):
            return env
    return {}


def forwarded_env(account: pwd.struct_passwd, hub_name: str, patterns: list[str]) -> dict[str, str]:
    return {k: v for k, v in server_environ(account, hub_name).items() if allowed(k, patterns)}
