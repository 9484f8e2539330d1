"""SlurmTarget: people's servers and Dask clusters run as Slurm jobs on a cluster's compute nodes.

This machine is the cluster's login/service node: it runs the proxy, the hub, the object store and the
gateway, listening on its cluster-network address (``target.slurm.address``) so that servers and workers on
the nodes reach them. Jobs run as the person: a site's own account (``accounts: site``, the default on a
real cluster) or one the platform makes (``accounts: platform``, when the nodes share this machine's
accounts and homes).
"""

from __future__ import annotations

import pwd

from pangeohub.errors import PangeoError
from pangeohub.targets.base import Addresses, Target

# Accounts below this uid are the system's (Debian's UID_MIN): never a person a job may run as.
FIRST_PERSON_UID = 1000
# Login modes in which people choose their own hub name. With site accounts a hub name is a Linux account
# on the cluster, so these would let anyone run jobs as any site user whose name they type.
SELF_NAMED_MODES = ("github", "signup", "shared")


class SlurmTarget(Target):
    name = "slurm"
    spawner_class = "pangeohub.targets.slurm.spawner.PangeoSlurmSpawner"
    gateway_backend_class = "pangeohub.targets.slurm.gateway.PangeoSlurmBackend"

    @property
    def slurm(self):
        return self.config.target.slurm

    def problems(self) -> list[str]:
        """Options that mean nothing on Slurm when set explicitly, and settings that would be unsafe there."""
        config = self.config
        found = []
        if "fast_spawn" in config.hub.model_fields_set and config.hub.fast_spawn:
            found.append("hub.fast_spawn: servers start as Slurm jobs on the compute nodes, not from this "
                         "machine's fork server; remove it (fast spawn is a local-target feature)")
        if "images_dir" in config.homes.model_fields_set or (
                "quota" in config.homes.model_fields_set and config.homes.quota):
            found.append("homes.quota/homes.images_dir: loop-mounted home images live on this machine and are "
                         "not seen by the compute nodes; homes are on the cluster's shared filesystem, whose "
                         "quotas are the site's; remove them")
        if "enforce" in config.limits.model_fields_set and config.limits.enforce:
            found.append("limits.enforce: on Slurm the profile's CPUs and memory are the job's request and Slurm "
                         "enforces them (task/cgroup); remove limits.enforce")
        for profile in config.profiles:
            if profile.cpus != int(profile.cpus):
                found.append(f"profiles '{profile.name}': cpus {profile.cpus} is not a whole number; Slurm "
                             "allocates whole CPUs (--cpus-per-task), write e.g. 1 or 2")
        if self.slurm.accounts == "site":
            if config.auth.mode in SELF_NAMED_MODES:
                found.append(f"auth.mode {config.auth.mode} with target.slurm.accounts site: people choose their "
                             "own hub name in that mode, and a hub name is a cluster account here, so anyone "
                             "could run jobs as another site user; use auth.mode ldap (the site's directory) "
                             "or password, or accounts: platform")
            if "system_prefix" in config.users.model_fields_set and config.users.system_prefix:
                found.append("users.system_prefix with target.slurm.accounts site: site accounts are used by "
                             "their own name; remove users.system_prefix or use accounts: platform")
        return found

    def notes(self) -> list[str]:
        """What differs on Slurm from the defaults a reader might expect, said once at `up`."""
        return [
            "servers start as Slurm jobs: fast spawn (a local-target feature) is off",
            "home quotas and CPU/memory enforcement are the site's (Slurm's task/cgroup, the shared filesystem)",
        ]

    def addresses(self) -> Addresses:
        # Servers and workers run on other hosts: every part is reached on this machine's cluster address.
        config = self.config
        here = self.slurm.address
        gw = config.gateway
        return Addresses(
            hub_api=f"http://{here}:{config.hub.internal_port}/hub/api",
            s3_endpoint=self.s3_endpoint_at(here),
            gateway=f"http://{here}:{gw.proxy_port}",
            gateway_proxy=f"gateway://{here}:{gw.scheduler_port}",
        )

    def account(self, user: str) -> pwd.struct_passwd:
        if self.slurm.accounts == "platform":
            from pangeohub.sysusers import ensure_account

            return ensure_account(user, self.config.users)
        return site_account(user)


def site_account(name: str) -> pwd.struct_passwd:
    """A site's existing account for hub user ``name``: it must exist (nothing is created) and be a person's."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PangeoError(f"there is no account {name!r} on this cluster",
                          "site accounts are not created by pangeohub: ask the site to create it, or log in "
                          "with your cluster username") from None
    if entry.pw_uid < FIRST_PERSON_UID:
        raise PangeoError(f"{name!r} is a system account (uid {entry.pw_uid}): jobs never run as one",
                          "log in with a person's account")
    return entry
