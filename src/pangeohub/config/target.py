"""The ``target:`` config section: where people's servers and Dask clusters run (the execution target).

The kind picks the target; ``target.slurm`` says how to use a site's Slurm cluster when the kind is ``slurm``.
What each profile asks of Slurm (partition, account, time limit, GPUs...) is ``profiles[].slurm``
(``SlurmResources``), beside the profile's CPUs and memory.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pangeohub.config.base import LINUX_NAME_RE, Section
from pangeohub.units import Duration

# The one list of target kinds: kind -> "module:Class" of its Target, imported only when chosen (a target's
# modules may need packages others do not). The config accepts exactly these; pangeohub.targets loads them.
TARGET_KINDS = {
    "local": "pangeohub.targets.local:LocalTarget",
    "slurm": "pangeohub.targets.slurm.target:SlurmTarget",
    "kubernetes": "pangeohub.targets.kubernetes.target:KubernetesTarget",
}
AVAILABLE_KINDS = tuple(TARGET_KINDS)

# A Slurm partition, account, QOS or reservation name: what slurm.conf and sacctmgr accept, no shell syntax.
SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# A GRES request: gpu, gpu:2, gpu:a100:2 (comma-separated for several).
GRES_RE = re.compile(r"^[A-Za-z0-9_]+(:[A-Za-z0-9_.-]+)*(:\d+)?(,[A-Za-z0-9_]+(:[A-Za-z0-9_.-]+)*(:\d+)?)*$")
# `#SBATCH` options the platform sets itself: a profile's extra lines may not change them.
OWNED_OPTIONS = ("--job-name", "-J", "--output", "-o", "--error", "-e", "--chdir", "-D", "--export",
                 "--uid", "--gid", "--get-user-env", "--wrap")


def _slurm_name(value: str | None, what: str) -> str | None:
    if value is not None and not SLURM_NAME_RE.match(value):
        raise ValueError(f"'{value}' is not a Slurm {what} name (letters, digits, '_', '.', '+', '-')")
    return value


class SlurmResources(Section):
    """What one profile asks of Slurm, besides its CPUs and memory (which become --cpus-per-task and --mem).
    Unset fields fall back to ``target.slurm``'s defaults, then to the cluster's own."""

    partition: str | None = Field(None, description="Partition the server's job runs in (sbatch --partition).")
    account: str | None = Field(None, description="Slurm account the job is charged to (sbatch --account).")
    qos: str | None = Field(None, description="Quality of service of the job (sbatch --qos).")
    reservation: str | None = Field(None, description="Reservation the job runs in, e.g. a workshop's "
                                    "(sbatch --reservation).")
    time_limit: Duration | None = Field(
        None, description="Wall-clock limit of the server's job (sbatch --time), e.g. '8h'. Slurm ends the "
        "server when it passes; the hub then shows it stopped, with the reason.",
    )
    gres: str | None = Field(None, description="Generic resources, e.g. 'gpu:1' or 'gpu:a100:2' (sbatch --gres).")
    extra: list[str] = Field(
        default_factory=list,
        description="Further sbatch options, one per entry, written as `#SBATCH <entry>` lines, e.g. "
        "'--constraint=skylake'. Options the platform sets itself (job name, output, environment, user) are "
        "refused.",
    )

    @field_validator("partition", "account", "qos", "reservation")
    @classmethod
    def _names(cls, value: str | None, info) -> str | None:
        return _slurm_name(value, info.field_name)

    @field_validator("gres")
    @classmethod
    def _gres(cls, value: str | None) -> str | None:
        if value is not None and not GRES_RE.match(value):
            raise ValueError(f"'{value}' is not a GRES request; write e.g. 'gpu:1' or 'gpu:a100:2'")
        return value

    @field_validator("extra")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        for line in value:
            if "\n" in line or not line.startswith("-"):
                raise ValueError(f"'{line}' is not one sbatch option: write e.g. '--constraint=skylake'")
            option = line.split("=", 1)[0].split()[0]
            if option in OWNED_OPTIONS:
                raise ValueError(f"'{option}' is set by the platform itself and cannot be changed by a profile")
        return value


class SlurmGatewaySection(Section):
    """How Dask clusters run on Slurm: each scheduler and worker is a job of the person who asked."""

    user: str = Field(
        "pangeohub-gateway",
        description="Linux account the Dask Gateway runs as on this machine. It submits each person's "
        "scheduler and workers through sudo and dask-gateway's launcher, as that person only; "
        "`pangeohub slurm sudoers` prints the rules it needs.",
    )
    people_group: str = Field(
        "pangeohub-people",
        description="Linux group of the people the gateway may start Dask jobs as (the sudo rule names it, "
        "and no one outside it). With platform accounts the platform makes it and adds each person; with "
        "site accounts it is the site's group of the hub's people (LDAP or local), and `up` checks it exists.",
    )
    resources: SlurmResources = Field(
        default_factory=SlurmResources,
        description="Partition, account, QOS, time limit and extra options of scheduler and worker jobs "
        "(their CPUs and memory are the cluster options people choose within gateway limits).",
    )

    @field_validator("user", "people_group")
    @classmethod
    def _user(cls, value: str) -> str:
        if not LINUX_NAME_RE.match(value) or value == "root":
            raise ValueError("must be a Linux name other than root")
        return value


class SlurmSection(Section):
    """How the platform uses a Slurm cluster (``target.kind: slurm``); this machine is the login/service node."""

    slurm_conf: Path = Field(
        Path("/etc/slurm/slurm.conf"),
        description="The slurm.conf the cluster's client commands use (SLURM_CONF of every sbatch, squeue, "
        "scancel the platform runs).",
    )
    address: str | None = Field(
        None,
        description="This machine's address on the cluster network, as compute nodes reach it: the hub API, "
        "the proxy, the gateway and the object store listen there, and servers and Dask workers on the nodes "
        "connect to it. Required with kind slurm; never 0.0.0.0 or a loopback address.",
    )
    accounts: Literal["site", "platform"] = Field(
        "site",
        description="Whose Linux accounts people's jobs run as. 'site': the site's existing accounts (LDAP or "
        "local, the same on every node), hub user alice is account alice, no prefix, nothing is created, "
        "homes are wherever the site has them (on the shared filesystem); system accounts are refused. "
        "'platform': accounts the platform makes, as on one machine (users.system_prefix + name, homes under "
        "users.home_root), for a cluster whose nodes share this machine's /etc/passwd and home filesystem.",
    )
    check_users: list[str] = Field(
        default_factory=list,
        description="With site accounts `pangeohub check` and `pangeohub loadtest` cannot create people: "
        "existing test accounts they may use (their homes get a .pangeohub-check folder, removed after).",
    )
    partition: str | None = Field(None, description="Default partition of every job (servers and Dask "
                                  "clusters); a profile's slurm.partition overrides it. Unset: Slurm's default.")
    account: str | None = Field(None, description="Default Slurm account jobs are charged to.")
    qos: str | None = Field(None, description="Default quality of service of jobs.")
    command_timeout: Duration = Field(
        15, gt=0, le=300,
        description="Longest any one Slurm command (sbatch, squeue, scancel...) may take. Slurm's commands "
        "retry for a while when the controller is down; past this the platform reports the controller "
        "unreachable instead of waiting.",
    )
    poll_interval: Duration = Field(
        30, gt=0, description="How often the hub asks Slurm whether each server's job still runs.",
    )
    gateway: SlurmGatewaySection = Field(default_factory=SlurmGatewaySection)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IP address; give this machine's address on the cluster "
                             "network, e.g. 10.0.0.5") from None
        if ip.is_unspecified or ip.is_loopback:
            raise ValueError(f"{value} cannot be reached from a compute node; give this machine's address on "
                             "the cluster network, e.g. 10.0.0.5")
        return value

    @field_validator("partition", "account", "qos")
    @classmethod
    def _names(cls, value: str | None, info) -> str | None:
        return _slurm_name(value, info.field_name)

    @field_validator("check_users")
    @classmethod
    def _check_users(cls, value: list[str]) -> list[str]:
        for name in value:
            if not LINUX_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not a Linux account name")
        return value


class TargetSection(Section):
    kind: str = Field(
        "local",
        description="Where people's notebook servers and Dask clusters run. 'local': on this machine, each "
        "person as their own Linux account, with cgroup limits and their home. 'slurm': as Slurm jobs on a "
        "cluster's compute nodes (see target.slurm); this machine runs the hub, proxy, gateway and object "
        "store. 'kubernetes': a deployment of the upstream jupyterhub and dask-gateway charts, made by "
        "`pangeohub render kubernetes` and `pangeohub deploy kubernetes`; `pangeohub up` then refuses to start "
        "anything on this machine.",
    )
    slurm: SlurmSection = Field(default_factory=SlurmSection)

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in AVAILABLE_KINDS:
            return value
        raise ValueError(f"unknown target kind; known: {', '.join(AVAILABLE_KINDS)}")
