"""Config of named software environments: what admins build with `pangeohub env build` for people to use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pangeohub.config.base import Section

# A directory name, a kernel name and a Dask option value at once: no dots (hidden files, versions), no slashes.
ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# The default stack is the runtime itself: an environment of that name would hide it.
RESERVED_NAMES = {"default", "pangeo", "python3", "current"}


class Environment(Section):
    name: str = Field(description="Identifier: the folder under install_dir/envs, the kernel 'Python (NAME)' and the "
                      "Dask cluster option `environment`. Lowercase letters, digits, '-' or '_', at most 32.")
    description: str = Field("", description="What the environment is for, shown by `pangeohub env list`.")
    packages: list[str] = Field(
        default_factory=list,
        description="Requirement specifiers installed from the package index, e.g. ['tabulate', 'xesmf==0.8.8'].",
    )
    requirements: Path | None = Field(
        None, description="A requirements file (absolute path) read at each build, in addition to `packages`.",
    )
    base: Literal["pangeo", "none"] = Field(
        "pangeo",
        description="'pangeo': the environment extends the default stack (xarray, dask, JupyterLab... stay "
        "importable, at the versions the platform runs); only what it adds is installed. 'none': a bare Python "
        "with only `packages` (and ipykernel, so that it runs as a kernel).",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="Hub groups whose members may use it (kernel, server, Dask clusters); empty means everybody. "
        "Admins may use any.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME_RE.match(value):
            raise ValueError(f"'{value}' is not a valid environment name: use lowercase letters, digits, '-' or '_', "
                             "starting with a letter, at most 32 characters (e.g. 'ocean-2026')")
        if value in RESERVED_NAMES:
            raise ValueError(f"'{value}' is reserved (it names the default stack or a link); choose another name")
        return value

    @field_validator("requirements")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"'{value}' must be an absolute path, e.g. /etc/pangeohub/ocean.txt")
        return value

    @field_validator("packages")
    @classmethod
    def _specifiers(cls, value: list[str]) -> list[str]:
        for spec in value:
            # Options would reach uv's command line: an index or a file given here escapes the review of the config.
            if not spec.strip() or spec.strip().startswith("-"):
                raise ValueError(f"{spec!r} is not a requirement specifier (e.g. 'tabulate>=0.9'); options such as "
                                 "--index-url are not accepted here")
        return value

    @model_validator(mode="after")
    def _something(self) -> "Environment":
        if not self.packages and self.requirements is None:
            raise ValueError(f"environment '{self.name}' installs nothing: give `packages` (e.g. [tabulate]) or a "
                             "`requirements` file")
        return self

    def allows(self, groups: set[str], admin: bool) -> bool:
        return admin or not self.groups or bool(groups & set(self.groups))


def check_unique(value: list[Environment]) -> list[Environment]:
    names = [env.name for env in value]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"environment names must be unique; repeated: {', '.join(twice)}")
    return value
