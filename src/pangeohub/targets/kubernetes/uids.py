"""Each person's own uid on Kubernetes, allocated once and recorded in the hub's volume.

Every pod of the chart would otherwise run as uid 1000 (jovyan): in any volume two pods mount (the shared
scratch folder, the data folder) everyone would then own everyone's files. A person's uid is
``first_uid + their hub user id`` the first time they start, unless some person already holds that uid: hub
ids can come back (SQLite gives a deleted last row's id to the next user), so then the next uid above every
uid ever given. Records are never removed, so a uid is never given to a second name; a person deleted and
made again under the same name gets their old uid back, as their home volume (named after them) is theirs.
"""

from __future__ import annotations

import json
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.secrets import write_private

FILE = "kubernetes-uids.json"


class UidRegistry:
    """{name: uid} in one JSON file, written atomically. The hub is one process and allocates without awaiting
    between reading and writing, so two starts cannot take the same uid."""

    def __init__(self, path: Path, first_uid: int):
        self.path = Path(path)
        self.first_uid = first_uid

    def _load(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in json.loads(self.path.read_text())["uids"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Guessing would risk giving someone's uid to another person: stop every start until it is fixed.
            raise PangeoError(f"{self.path} is not a pangeohub uid record ({exc})",
                              "restore it from a backup of the hub's volume; do not delete it") from exc

    def uid(self, name: str, hub_id: int) -> int:
        uids = self._load()
        if name in uids:
            return uids[name]
        wanted = self.first_uid + int(hub_id)
        given = set(uids.values())
        uid = wanted if wanted not in given else max(given) + 1
        uids[name] = uid
        record = {"first_uid": self.first_uid, "uids": uids}
        write_private(self.path, json.dumps(record, indent=1, sort_keys=True))
        return uid
