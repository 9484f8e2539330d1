"""``pangeohub config migrate``: the config file rewritten with current option names, comments and order kept.

Apart from ``versions`` (the renames themselves), which the loader uses: this checks its result with the loader.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from pangeohub.config import parse_config
from pangeohub.config.versions import CURRENT, Migrated, _move, migrate


def rewrite(path: Path, source: str | None = None) -> tuple[Migrated, Path | None]:
    """Rewrite the file at ``path`` with current names and ``version``, comments and order kept; the old file is
    kept beside it as ``<name>.v<old version>.bak``. Returns what was done and the copy (None if unchanged)."""
    from ruamel.yaml import YAML

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
