"""Credentials for an external S3 endpoint, which pangeohub cannot create identities on.

A per-user file ``<state_dir>/storage/credentials/<user>.json`` (made by the operator with the provider's own
tools, e.g. an IAM user whose policy allows only ``<bucket>/<user>/*``) wins; otherwise everyone gets the
shared credentials of ``storage.external.credentials_file``, which isolate nobody from anybody.
"""

from __future__ import annotations

from pangeohub.errors import PangeoError
from pangeohub.storage.credentials import CredentialStore
from pangeohub.storage.identities import Credentials


def external_credentials(rt, user: str) -> Credentials:
    own = CredentialStore(rt.paths.root).get(user)
    if own is not None:
        return own
    path = rt.config.storage.external.credentials_file
    try:
        return Credentials.from_json(path.read_text())
    except FileNotFoundError:
        raise PangeoError(
            f"storage.external.credentials_file {path} does not exist",
            'write it as {"key": "...", "secret": "..."} (mode 0600), or give each user a file in '
            f"{CredentialStore(rt.paths.root).dir}",
        ) from None
    except (ValueError, KeyError, TypeError):
        raise PangeoError(
            f"storage.external.credentials_file {path} is not JSON with 'key' and 'secret'",
            'write it as {"key": "...", "secret": "..."}',
        ) from None
