"""Who may do what in the object store: pure functions from names to SeaweedFS identity actions.

SeaweedFS scopes an action to a bucket or to a key prefix: ``Read:scratch/alice/*`` allows reading keys that
start with ``alice/`` in bucket ``scratch``. The trailing ``/*`` matters: ``Read:scratch/alice*`` would also
reach ``alice2/``. Listing needs ``List`` on the same prefix, and SeaweedFS then only answers listings whose
``Prefix`` starts with ``alice/``; a listing of the whole bucket is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

ADMIN_IDENTITY = "pangeohub-admin"
USER_IDENTITY_PREFIX = "user-"  # keeps a hub user called "admin" apart from the admin identity


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str

    def to_json(self) -> str:
        return json.dumps({"key": self.key, "secret": self.secret}) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Credentials":
        data = json.loads(text)
        return cls(key=str(data["key"]), secret=str(data["secret"]))


def user_identity_name(user: str) -> str:
    return USER_IDENTITY_PREFIX + user


def scratch_prefix(user: str) -> str:
    """The key prefix of ``user`` in the scratch bucket. Names never hold '/', so prefixes never nest."""
    return f"{user}/"


def scratch_actions(user: str, bucket: str) -> list[str]:
    """Everything a person may do, only below their own prefix of the scratch bucket."""
    scope = f"{bucket}/{scratch_prefix(user)}*"
    return [f"{verb}:{scope}" for verb in ("Read", "Write", "List", "Tagging")]


def catalog_reader_actions(bucket: str) -> list[str]:
    """Read-only access to a whole bucket (the shared data catalog): read and list, never write or delete.

    Writing stays with the admin identity, so only admins (through `pangeohub` tooling) publish datasets.
    """
    return [f"Read:{bucket}", f"List:{bucket}"]


def user_actions(user: str, scratch_bucket: str, readable_buckets: list[str] | tuple[str, ...] = ()) -> list[str]:
    actions = scratch_actions(user, scratch_bucket)
    for bucket in readable_buckets:
        actions += catalog_reader_actions(bucket)
    return actions


def admin_actions() -> list[str]:
    return ["Admin", "Read", "Write", "List", "Tagging"]


def static_config(admin: Credentials) -> dict:
    """The file SeaweedFS reads at start (``-s3.config``): only the admin identity, which never leaves root.

    Per-user identities are added at run time (``s3.configure``) and kept by the filer, so that a new user
    does not restart the store for everyone.
    """
    return {
        "identities": [
            {
                "name": ADMIN_IDENTITY,
                "credentials": [{"accessKey": admin.key, "secretKey": admin.secret}],
                "actions": admin_actions(),
            }
        ]
    }


def configure_command(user: str, creds: Credentials, actions: list[str]) -> str:
    """The ``weed shell`` command that creates or replaces ``user``'s identity with exactly ``actions``.

    ``s3.configure`` adds to an identity's existing actions and keys; deleting first makes the result exact.
    """
    name = user_identity_name(user)
    return (
        f"s3.configure -user {name} -delete -apply\n"
        f"s3.configure -user {name} -access_key {creds.key} -secret_key {creds.secret} "
        f"-actions {','.join(actions)} -apply\n"
    )
