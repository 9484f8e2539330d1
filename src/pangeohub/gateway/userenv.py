"""The environment of a user's Dask processes: the same as their notebook's, minus anything of root's.

Storage variables (``PANGEO_SCRATCH``, object-store credentials) are set on the notebook server by spawn hooks;
the hub records them at each server start (``record_server_environ``) and the gateway copies the allow-listed
ones to the user's scheduler and workers, so that ``Gateway().new_cluster()`` needs no arguments to give workers the same access.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pwd
from pathlib import Path

from pangeohub.secrets import write_private

USERSITE_DIR = Path(__file__).parent / "usersite"


def usersite_pythonpath(existing: str | None = None) -> str:
    parts = [str(USERSITE_DIR)] + ([existing] if existing else [])
    return os.pathsep.join(parts)


def allowed(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def userenv_file(state_dir: Path, hub_name: str) -> Path:
    """Where the hub records what its spawn hooks gave a user's server (root-only)."""
    return Path(state_dir) / "userenv" / f"{hub_name}.json"


def record_server_environ(state_dir: Path, hub_name: str, env: dict[str, str], reader: str | None = None) -> None:
    """Called by the spawner at each start. Read back by the gateway for that user's Dask processes.

    Read from a file, not from /proc/<server>/environ: a server forked by the fork server sets its environment
    after it starts, which /proc never shows (it keeps the environment the process was exec'd with).
    ``reader``: the gateway's account when it does not run as root; its group may read, nobody else.
    """
    path = userenv_file(state_dir, hub_name)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    if reader is None:
        write_private(path, json.dumps(env))
        return
    gid = pwd.getpwnam(reader).pw_gid
    os.chown(path.parent, 0, gid)
    path.parent.chmod(0o750)
    write_private(path, json.dumps(env), mode=0o640, gid=gid)


def server_environ(state_dir: Path, hub_name: str) -> dict[str, str]:
    """What the spawn hooks gave the user's server at its last start (empty if it never started)."""
    try:
        return json.loads(userenv_file(state_dir, hub_name).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def forwarded_env(state_dir: Path, hub_name: str, patterns: list[str]) -> dict[str, str]:
    return {k: v for k, v in server_environ(state_dir, hub_name).items() if allowed(k, patterns)}


def person_env(entry, install_dir: Path, lang: str = "C.UTF-8") -> dict[str, str]:
    """What a person's Dask process knows of them, on every target: their account, their home, the platform's
    runtime first on PATH and their ``pip install --user`` packages (as in their notebook)."""
    return {
        "USER": entry.pw_name, "LOGNAME": entry.pw_name, "HOME": entry.pw_dir, "SHELL": entry.pw_shell,
        "PATH": os.pathsep.join([str(Path(install_dir) / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": lang,
        "PYTHONPATH": usersite_pythonpath(),
    }
