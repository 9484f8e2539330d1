"""What the config cannot check alone: a content `groups` entry that names a group nobody is in."""

from __future__ import annotations

from pangeohub.envs.checks import known_groups
from pangeohub.errors import PangeoError


def check_content_groups(rt) -> None:
    groups = known_groups(rt)
    if groups is None:  # LDAP or GitHub groups: only the directory knows them
        return
    for index, source in enumerate(rt.config.content):
        unknown = sorted(set(source.groups) - groups)
        if unknown:
            raise PangeoError(
                f"content[{index}] (folder '{source.folder}'): groups names {', '.join(repr(g) for g in unknown)}, "
                f"which no person belongs to (known groups: {', '.join(sorted(groups)) or 'none'})",
                f"correct the name, or put people in it: pangeohub users add NAME --group {unknown[0]}")
