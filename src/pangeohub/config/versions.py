"""Config file versions: the options renamed from one version to the next, and bringing a file up to date.

A file says which version of the option names it uses (``version: 2``); a file without it is version 1, the
names from before versions were counted. Loading accepts every older version: each renamed option is read under
its new name, with one notice per rename. ``pangeohub config migrate`` (run by the installer on upgrade)
rewrites the file with the new names and keeps a copy of the old one, comments kept. A file newer than this code
is refused: it may use names this code would misread.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from pangeohub.errors import PangeoError

CURRENT = 2
#: Renames made by the version after each one: {version: [(old dotted name, new dotted name)]}.
RENAMES: dict[int, list[tuple[str, str]]] = {
    # The scratch bucket's settings moved into storage.scratch, beside its quota; `storage.expiry` read as if
    # every bucket expired, while only scratch does.
    1: [("storage.scratch_bucket", "storage.scratch.bucket"), ("storage.expiry", "storage.scratch.expiry")],
}


@dataclass
class Migrated:
    data: dict
    version: int  # the version the file was written for
    renames: list[tuple[str, str]] = field(default_factory=list)  # those the file used

    @property
    def changed(self) -> bool:
        return self.version != CURRENT

    def notices(self, source: str) -> list[str]:
        return [f"{source}: '{old}' is now '{new}' (config version {CURRENT}); `pangeohub config migrate` "
                "rewrites the file" for old, new in self.renames]


def file_version(data: dict, source: str) -> int:
    value = data.get("version", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PangeoError(f"{source}: version (got {value!r}) must be a whole number from 1 to {CURRENT}",
                          f"the version of the option names the file uses; this pangeohub writes {CURRENT}")
    if value > CURRENT:
        raise PangeoError(
            f"{source}: config version {value} is newer than this pangeohub understands (at most {CURRENT})",
            "run the pangeohub that wrote it (sudo python3 install.py from its checkout), or go back to the copy "
            "an upgrade kept of the older file (<file>.v<version>.bak)",
        )
    return value


def migrate(data: dict, source: str) -> Migrated:
    """``data`` (a parsed file) with every option under its current name, and ``version`` current."""
    version = file_version(data, source)
    out = Migrated(copy.deepcopy(data), version)
    for step in range(version, CURRENT):
        for old, new in RENAMES.get(step, []):
            if _move(out.data, old, new, source):
                out.renames.append((old, new))
    if version != CURRENT or "version" in data:
        out.data["version"] = CURRENT
    return out


def _move(data, old: str, new: str, source: str) -> bool:
    """Move the value at dotted ``old`` to dotted ``new`` (making the sections on the way); False if absent."""
    *old_parents, old_key = old.split(".")
    parent = data
    for part in old_parents:
        parent = parent.get(part) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or old_key not in parent:
        return False
    *new_parents, new_key = new.split(".")
    target = data
    for part in new_parents:
        if target.get(part) is None:
            target[part] = type(target)()  # a round-trip document's own mapping type, so it dumps in block style
        target = target[part]
        if not isinstance(target, dict):
            return False  # the section itself is malformed: validation names it
    if new_key in target:
        raise PangeoError(f"{source}: both '{old}' and '{new}' are set; '{new}' replaces '{old}'",
                          f"keep only '{new}'")
    target[new_key] = parent.pop(old_key)
    return True
