"""Config file versions: the options renamed from one version to the next, and bringing a file up to date.

A file says which version of the option names it uses (``version: 2``); a file without it is version 1, the
names from before versions were counted. Loading accepts every older version: each renamed option is read under
its new name, with one notice per rename. ``pangeohub config migrate`` (run by the installer on upgrade)
rewrites the file with the new names and keeps a copy of the old one, comments kept. A file newer than this code
is refused: it may use names this code would misread.
"""

from __future__ import annotations

import copy
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def rewrite(path: Path, source: str | None = None) -> tuple[Migrated, Path | None]:
    """Rewrite the file at ``path`` with current names and ``version``, comments and order kept; the old file is
    kept beside it as ``<name>.v<old version>.bak``. Returns what was done and the copy (None if unchanged)."""
    from ruamel.yaml import YAML

    from pangeohub.config import parse_config

    source = source or str(path)
    text = path.read_text()
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    doc = yaml.load(text)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        parse_config(text, source=source)  # the loader's own error for a file that is not a mapping
    migrated = migrate(dict(doc), source)  # checks the version; the document is changed below
    if not migrated.changed:
        return migrated, None
    for old, new in migrated.renames:
        _move(doc, old, new, source)
    if "version" in doc:
        doc["version"] = CURRENT
    else:
        doc.insert(0, "version", CURRENT, comment="version of the option names (pangeohub config migrate)")
    out = io.StringIO()
    yaml.dump(doc, out)
    parse_config(out.getvalue(), source=source)  # never write a file the loader would refuse
    backup = _backup_name(path, migrated.version)
    backup.write_bytes(path.read_bytes())
    os.chmod(backup, path.stat().st_mode & 0o777)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(out.getvalue())
    os.chmod(partial, path.stat().st_mode & 0o777)
    os.replace(partial, path)
    return migrated, backup


def _backup_name(path: Path, version: int) -> Path:
    backup = path.with_name(f"{path.name}.v{version}.bak")
    if backup.exists() and backup.read_bytes() != path.read_bytes():  # an earlier, different copy stays too
        backup = path.with_name(f"{path.name}.v{version}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    return backup
