"""Config of workshop material: git repositories pulled into people's homes when their servers start."""

from __future__ import annotations

import posixpath
import re

from pydantic import Field, field_validator

from pangeohub.config.base import Section
from pangeohub.units import Duration

# What git accepts as a remote, minus options: a URL with a scheme git speaks, or scp-like user@host:path.
URL_RE = re.compile(r"^((https?|git|ssh|file)://\S+|[\w.-]+@[\w.-]+:\S+)$")
BRANCH_RE = re.compile(r"^(?!-)[A-Za-z0-9._/-]{1,200}$")


class ContentSource(Section):
    url: str = Field(description="Git repository to pull from, e.g. https://github.com/org/workshop, or a bare "
                     "repository on this machine, file:///srv/material/ocean.git. Each person's pull reaches it "
                     "from the hub's machine as that person, with no password prompt: use a public repository "
                     "or one on this machine.")
    branch: str = Field("main", description="Branch (or tag) to follow.")
    folder: str = Field(description="Where the material goes, relative to the person's home, e.g. "
                        "'workshops/ocean-2026'. It must stay inside the home.")
    groups: list[str] = Field(
        default_factory=list,
        description="Hub groups whose members receive it; empty means everybody. Admins receive what their "
        "own groups give them, like anyone else.",
    )
    timeout: Duration = Field(
        "20s", description="Longest a pull of this repository may take when a server starts (and at `pangeohub "
        "content sync`); a slower or unreachable repository is left for the next start and the person finds a "
        "notice beside the folder. All timeouts together may take at most half of hub.start_timeout.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not URL_RE.match(value):
            raise ValueError(f"{value!r} is not a git URL: use https://host/org/repo, git://..., ssh://..., "
                             "user@host:path or file:///path")
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not BRANCH_RE.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not a branch name, e.g. main")
        return value

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if value.startswith(("/", "~")):
            raise ValueError(f"{value!r} must be relative to the person's home, e.g. 'workshops/ocean'")
        parts = value.split("/")
        if ".." in parts:
            raise ValueError(f"{value!r} leaves the person's home ('..'): give a folder inside it, e.g. "
                             "'workshops/ocean'")
        normal = posixpath.normpath(value)
        if normal in (".", "") or any(p.startswith(".") for p in normal.split("/")) or "\0" in value:
            raise ValueError(f"{value!r} must name a visible folder inside the home (not the home itself, not a "
                             "hidden '.name' folder), e.g. 'workshops/ocean'")
        return normal

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value < 1:
            raise ValueError(f"{value:g}s is too short for any pull: give at least 1s, e.g. 30s")
        return value

    def allows(self, groups: set[str]) -> bool:
        return not self.groups or bool(groups & set(self.groups))


def check_content(value: list[ContentSource]) -> list[ContentSource]:
    folders = [c.folder for c in value]
    for i, a in enumerate(folders):
        for b in folders[i + 1:]:
            if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                raise ValueError(f"content folders {a!r} and {b!r} overlap: each repository needs its own folder, "
                                 "and none inside another")
    return value
