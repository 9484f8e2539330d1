"""The shared intake catalog: one YAML file every server reads through ``$PANGEO_CATALOG``.

Admins change it with ``pangeohub catalog add|remove``; writes are atomic, so a user opening the catalog
sees the old file or the new one, and a change is visible at their next ``open_catalog`` (no restart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pangeohub.errors import PangeoError
from pangeohub.secrets import write_private

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DRIVERS = {"zarr": "zarr", "netcdf": "netcdf", "csv": "csv"}


@dataclass
class Entry:
    name: str
    urlpath: str
    driver: str
    description: str = ""
    args: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def to_intake(self) -> dict:
        return {"description": self.description, "driver": self.driver,
                "args": {"urlpath": self.urlpath, **self.args}, "metadata": self.metadata}


def guess_driver(urlpath: str) -> str:
    path = urlpath.rstrip("/").lower()
    if path.endswith(".zarr"):
        return "zarr"
    if path.endswith((".nc", ".nc4", ".netcdf", ".h5")):
        return "netcdf"
    if path.endswith(".csv"):
        return "csv"
    raise PangeoError(
        f"cannot tell the format of {urlpath!r} from its name",
        "give it with --driver zarr|netcdf|csv",
    )


class Catalog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> dict:
        try:
            data = yaml.safe_load(self.path.read_text()) or {}
        except FileNotFoundError:
            data = {}
        data.setdefault("metadata", {"version": 1, "title": "pangeohub data catalog"})
        data.setdefault("sources", {})
        return data

    def entries(self) -> dict[str, dict]:
        return self.read()["sources"]

    def add(self, entry: Entry, replace: bool = False) -> None:
        if not NAME_RE.match(entry.name):
            raise PangeoError(
                f"catalog name {entry.name!r} is not allowed: use letters, digits and '_', starting with a letter",
                "e.g. air_temperature",
            )
        if entry.driver not in DRIVERS:
            raise PangeoError(f"unknown driver {entry.driver!r}", f"one of: {', '.join(DRIVERS)}")
        data = self.read()
        if entry.name in data["sources"] and not replace:
            raise PangeoError(f"the catalog already has {entry.name!r}",
                              f"remove it first: pangeohub catalog remove {entry.name}")
        data["sources"][entry.name] = entry.to_intake()
        self._write(data)

    def remove(self, name: str) -> None:
        data = self.read()
        if name not in data["sources"]:
            known = ", ".join(sorted(data["sources"])) or "none"
            raise PangeoError(f"the catalog has no entry {name!r}", f"entries: {known}")
        del data["sources"][name]
        self._write(data)

    def _write(self, data: dict) -> None:
        # World-readable on purpose: every user and their Dask workers read it.
        write_private(self.path, yaml.safe_dump(data, sort_keys=False), mode=0o644)
