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
from pangeohub.names import site_account
from pangeohub.targets.base import Addresses, Target

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
        found = [
            "servers start as Slurm jobs: fast spawn (a local-target feature) is off",
            "home quotas and CPU/memory enforcement are the site's (Slurm's task/cgroup, the shared filesystem)",
        ]
        shared = self.config.shared
        if shared.data_dir is None or shared.scratch_dir is None:
            found.append(f"the shared data and scratch folders are in the state directory ({self.config.state_dir}"
                         "/shared): compute nodes see them only if it is on the cluster's shared filesystem; set "
                         "shared.data_dir and shared.scratch_dir to folders there")
        return found

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

    def service_host(self) -> str:
        return self.slurm.address

    def spawn_hooks(self) -> list:
        from pangeohub.targets.slurm.hook import slurm_hook

        return [slurm_hook]

    def client(self):
        from pangeohub.targets.slurm.client import SlurmClient

        return SlurmClient(self.slurm.slurm_conf, timeout=float(self.slurm.command_timeout))

    def preflight(self, rt) -> None:
        from pangeohub.targets.slurm.checks import built_environments, check_partitions, probe_runtime

        client = self.client()
        partitions = client.partitions()  # the controller answers, or a PangeoError says it does not
        named = sorted({p.slurm.partition for p in self.config.profiles if p.slurm.partition}
                       | ({self.slurm.partition} if self.slurm.partition else set()))
        check_partitions(client, named)
        probe = self.slurm.partition or next((p.name for p in partitions.values() if p.default), None)
        if probe is None:
            raise PangeoError("the Slurm cluster has no default partition to probe the compute nodes in",
                              "set target.slurm.partition")
        # Environments live under install_dir too (pangeohub.envs.layout): kernels and workers run them there.
        probe_runtime(client, probe, nodes_of(client, probe), python=str(self.config.install_dir / "bin" / "python"),
                      environments=built_environments(self.config))
        if self.slurm.accounts == "site":
            for name in self.config.hub.admin_users:
                try:
                    site_account(name)
                except PangeoError as err:
                    raise PangeoError(f"hub.admin_users: {err.what}", "with site accounts every admin is a "
                                      "person's existing account on the cluster; fix the name") from None
        if self.config.gateway.enabled:
            from pangeohub.targets.slurm.gatewaysetup import prepare_gateway

            prepare_gateway(self.config)

    def reconcile(self, rt) -> None:
        from pangeohub.targets.slurm.reconcile import cancel_orphans

        cancel_orphans(rt, self.client())

    def status(self, rt) -> dict:
        from pangeohub.targets.slurm.reconcile import cluster_status

        return cluster_status(rt, self.client())

    def server_note(self, user: str) -> str | None:
        from pangeohub.targets.slurm import ends

        entry = ends.last_end(self.config.state_dir, user)
        return ends.describe(entry) if entry else None

    def format_status(self, info: dict) -> list[str]:
        from pangeohub.targets.slurm.reconcile import format_cluster_status

        return format_cluster_status(info)

    def account(self, user: str) -> pwd.struct_passwd:
        if self.slurm.accounts == "platform":
            from pangeohub.targets.sysusers import ensure_account

            entry = ensure_account(user, self.config.users)
            if self.config.gateway.enabled:
                from pangeohub.targets.slurm.gatewaysetup import join_people_group

                join_people_group(entry.pw_name, self.slurm.gateway.people_group)
            return entry
        return site_account(user)

    def prepare_person(self, user: str) -> None:
        # The account (platform: made, and joined to the gateway's people group; site: it must exist). No home
        # image: homes are on the cluster's shared filesystem.
        self.account(user)

    def test_accounts(self) -> list[str] | None:
        # A site's accounts are the site's to make: the check uses the test accounts it names.
        return list(self.slurm.check_users) if self.slurm.accounts == "site" else None

    def existing_account(self, user: str) -> pwd.struct_passwd:
        """The account a hub user's jobs run as, as ``account`` finds it, but never made here (the gateway's
        use: it runs unprivileged and only after the person's server, which made it, has started)."""
        if self.slurm.accounts == "site":
            return site_account(user)
        from pangeohub.names import is_ours, system_name

        name = system_name(user, self.config.users.system_prefix)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PangeoError(f"user {user} has no account {name} yet") from None
        if not is_ours(entry):
            raise PangeoError(f"refusing to run as {name}: it is not an account pangeohub created")
        return entry

    # -- Dask Gateway ----------------------------------------------------------------------------------
    def release_person(self, user: str, keep_home: bool, step) -> bool:
        if self.slurm.accounts == "site":
            return False  # the site's account, home and processes are the site's; the job went with the hub user
        return super().release_person(user, keep_home, step)

    def gateway_account(self) -> str | None:
        return self.slurm.gateway.user if self.config.gateway.enabled else None

    def gateway_config(self, paths) -> dict[str, dict]:
        from pangeohub.targets.slurm.sudoers import launcher_path

        umask = f"umask {self.config.users.umask}"
        return {
            "PangeoSlurmBackend": {
                "tls_cache_dir": str(paths.gateway / "certs"),
                "dask_gateway_jobqueue_launcher": launcher_path(self.config),
            },
            # The job script's lines before the Dask process (upstream's hook): files people's Dask writes
            # get the platform's umask, as their notebook's do.
            "JobQueueClusterConfig": {"scheduler_setup": umask, "worker_setup": umask},
        }


def nodes_of(client, partition: str) -> list[str]:
    """The nodes of a partition that can take a job now (idle or partly used)."""
    out = client.run("sinfo", "--noheader", "--Node", f"--partition={partition}", "--format=%N|%t")
    usable = [line.split("|")[0] for line in out.splitlines()
              if line.count("|") == 1 and line.split("|")[1].rstrip("*~#!%$@^-") in ("idle", "mix", "alloc")]
    if not usable:
        raise PangeoError(f"Slurm partition {partition!r} has no node up to probe",
                          f"ask the site why (`sinfo -p {partition}`)")
    return sorted(set(usable))
