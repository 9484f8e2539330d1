"""Config sections for resources: hardware profiles, kernel-enforced limits, homes with quotas, shared folders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pangeohub.config.base import Section
from pangeohub.config.target import SlurmResources
from pangeohub.units import ByteSize

# Beyond these no machine can give what the value asks; what this machine can give is checked at `up`.
MAX_CPUS = 8192  # Linux's largest CONFIG_NR_CPUS
MAX_MEMORY = 4 * 1024**5  # 52-bit physical addresses (x86-64, arm64)
MAX_QUOTA = 1024**6  # ext4 with 4 KiB blocks
PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DEFAULT_QUICKSTART = """# Welcome to pangeohub

- Your home directory is private and persistent; it has a quota (see `df -h ~`).
- `shared/` holds read-only datasets that the administrators provide.
- `scratch/` is a folder shared with everybody on this hub: others can read what you put there.
- Your server's CPUs and memory come from the profile you chose when it started; if a kernel is stopped
  because it used more memory than that, the next cell you run says so. Choose a bigger profile or use less.
"""


class Profile(Section):
    name: str = Field(description="Short identifier used in the API (`{\"profile\": \"small\"}`), e.g. 'small'.")
    description: str = Field("", description="What the spawn page shows next to the name.")
    cpus: float = Field(gt=0, description="CPU cores the server and everything it starts may use together.")
    memory: ByteSize = Field(description="Memory (RAM) the server and everything it starts may use together, "
                             "e.g. '2G'. Past it the kernel stops the largest process of that user only.")
    processes: int = Field(
        512, ge=32, le=4_194_304,
        description="Processes and threads the server and everything it starts may have at once (the kernel's "
        "pids controller). A fork loop stops here instead of filling the machine's process table, which "
        "would leave the hub and everyone else unable to start anything.",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="Hub groups allowed to choose this profile; empty means everybody. Admins may use any.",
    )
    environment: str | None = Field(
        None,
        description="A named environment (section `environments`, base pangeo) that the server itself runs in: "
        "its default kernel, terminals and Dask clusters use it. Empty: the default stack.",
    )
    slurm: SlurmResources = Field(
        default_factory=SlurmResources,
        description="With target.kind slurm: partition, account, QOS, time limit, GPUs and extra sbatch options "
        "of this profile's server jobs (its cpus and memory become --cpus-per-task and --mem).",
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not PROFILE_NAME_RE.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("cpus")
    @classmethod
    def _max_cpus(cls, value: float) -> float:
        if value > MAX_CPUS:
            raise ValueError(f"at most {MAX_CPUS}, the most CPUs a Linux kernel handles (NR_CPUS); "
                             "`pangeohub up` also warns about profiles larger than the machine")
        return value

    @field_validator("memory")
    @classmethod
    def _min_memory(cls, value: int) -> int:
        if value < 64 * 1024**2:
            raise ValueError("at least 64M: a Jupyter server alone needs about that much")
        if value > MAX_MEMORY:
            raise ValueError("at most 4096T, the most memory a 64-bit machine can address (4 PiB); "
                             "`pangeohub up` also warns about profiles larger than the machine")
        return value


def default_profiles() -> list[Profile]:
    return [
        Profile(name="small", description="1 CPU, 2 GB RAM", cpus=1, memory="2G"),
        Profile(name="large", description="2 CPUs, 8 GB RAM", cpus=2, memory="8G"),
    ]


class LimitsSection(Section):
    enforce: bool = Field(
        True,
        description="Enforce each profile's CPUs and memory through Linux cgroups. `pangeohub up` refuses to "
        "start when this machine cannot enforce them; false turns limits off explicitly (profiles then "
        "only label servers).",
    )
    backend: Literal["auto", "v1", "v2"] = Field(
        "auto",
        description="Which cgroup hierarchy to use: 'auto' picks v1 when its cpu and memory controllers are "
        "mounted, else the unified v2 hierarchy.",
    )
    cgroup_name: str = Field(
        "pangeohub",
        description="Cgroup under which each user gets their own (named after their Linux account). With v1 "
        "it is made below the cgroup pangeohub itself runs in; with v2 below the hierarchy's root.",
    )

    @field_validator("cgroup_name")
    @classmethod
    def _cgroup_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+$", value) or value in (".", ".."):
            raise ValueError("one path component of letters, digits, '.', '-' or '_'")
        return value


class HomesSection(Section):
    quota: ByteSize = Field(
        "10G",
        description="Most each person may store in their home. Each home is a filesystem image of this size "
        "mounted at the home directory, so the kernel refuses writes past it. 0 turns quotas off.",
    )
    images_dir: Path | None = Field(
        None, description="Where home images are kept (default: <state_dir>/homes). Needs quota-size free "
        "space per user once they fill their homes (images are sparse until then)."
    )
    quickstart_name: str = Field("README-pangeohub.md", description="File name of the quickstart in each new home.")
    quickstart: str = Field(
        DEFAULT_QUICKSTART,
        description="Content of the quickstart file copied into each new home (Markdown). Empty: no file.",
    )

    @field_validator("quota")
    @classmethod
    def _min_quota(cls, value: int) -> int:
        if value and value < 16 * 1024**2:
            raise ValueError("at least 16M (the filesystem needs room for itself), or 0 for no quota")
        if value > MAX_QUOTA:
            raise ValueError("at most 1048576T (1 EiB), the largest ext4 filesystem, which each home image is; "
                             "`pangeohub up` also refuses a quota the images' own filesystem cannot hold")
        return value


class SharedSection(Section):
    data_dir: Path | None = Field(
        None, description="Shared data folder: everybody reads, only admins write (default: <state_dir>/shared/data)."
    )
    scratch_dir: Path | None = Field(
        None, description="Shared scratch folder: everybody reads and writes; only a file's owner may delete "
        "it (default: <state_dir>/shared/scratch). Not counted in home quotas."
    )
    data_link: str = Field("shared", description="Name of the link to the data folder in every home; empty: none.")
    scratch_link: str = Field("scratch", description="Name of the link to the scratch folder in every home; empty: none.")
    admin_group: str | None = Field(
        None, description="Linux group that may write the data folder; hub admins' accounts join it "
        "(default: <users.system_prefix>admins)."
    )

    @field_validator("data_link", "scratch_link")
    @classmethod
    def _link_name(cls, value: str) -> str:
        if value and ("/" in value or value in (".", "..")):
            raise ValueError("a plain file name such as 'shared'")
        return value

    @field_validator("data_dir", "scratch_dir")
    @classmethod
    def _abs(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

