"""Per-user S3 credentials, kept by root under ``<state_dir>/storage/credentials/<user>.json`` (0600)."""

from __future__ import annotations

import secrets
import string
from pathlib import Path

from pangeohub.secrets import ensure_secret, write_private
from pangeohub.storage.identities import Credentials

_KEY_ALPHABET = string.ascii_uppercase + string.digits


def new_credentials() -> Credentials:
    # AWS-shaped keys (20 upper-case characters, 40-character secret): some clients validate the shape.
    key = "PH" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))
    secret = secrets.token_urlsafe(30)[:40]
    return Credentials(key=key, secret=secret)


class CredentialStore:
    def __init__(self, root: Path):
        self.dir = root / "storage" / "credentials"

    def path(self, user: str) -> Path:
        return self.dir / f"{user}.json"

    def get(self, user: str) -> Credentials | None:
        try:
            return Credentials.from_json(self.path(user).read_text())
        except FileNotFoundError:
            return None

    def ensure(self, user: str) -> tuple[Credentials, bool]:
        """``user``'s credentials, and whether they were made just now."""
        found = self.get(user)
        if found is not None:
            return found, False
        self._ensure_dir()
        creds = new_credentials()
        write_private(self.path(user), creds.to_json())
        return creds, True

    def remove(self, user: str) -> None:
        self.path(user).unlink(missing_ok=True)

    def _ensure_dir(self) -> None:
        self.dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir.parent.chmod(0o700)
        self.dir.mkdir(mode=0o700, exist_ok=True)


def admin_credentials(rt) -> Credentials:
    """The object store's admin identity. Root-only files; never given to users or their servers."""
    return Credentials(
        key="PHADMIN" + ensure_secret(rt.paths.secret("objectstore_admin_key"), 8).upper()[:13],
        secret=ensure_secret(rt.paths.secret("objectstore_admin_secret"), 24),
    )
