"""Generated secrets and atomic private files."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from pangeohub.errors import PangeoError


def write_private(path: Path, text: str, mode: int = 0o600, gid: int | None = None) -> None:
    """Write ``text`` so that readers see the old file or the new one, never a partial or world-readable one.
    ``gid``: the group that may read it (with a ``mode`` that lets it), set before the file has any content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """Return the secret stored at ``path``, generating it (hex, 0600) on first use."""
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(nbytes)
    write_private(path, value + "\n")
    return value


def read_token_file(path: str, option: str, holds: str) -> str:
    """The token in the file an operator named with ``option``, refused if others may read it (as ssh refuses a
    private key others can read: whoever reads the file holds the token). ``holds``: what the file should hold."""
    file = Path(path).expanduser()
    try:
        mode = file.stat().st_mode
        if mode & 0o077:
            raise PangeoError(f"{option} {file} is readable by others (mode {mode & 0o777:o})",
                              f"make it private: chmod 600 {file}")
        token = file.read_text().strip()
    except OSError as exc:
        raise PangeoError(f"{option} {file}: cannot read it ({exc.strerror})",
                          f"give a file holding {holds}") from None
    if not token:
        raise PangeoError(f"{option} {file} is empty", f"write {holds} in it")
    return token
