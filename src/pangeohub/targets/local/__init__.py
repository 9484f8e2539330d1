"""The local target: people's servers and Dask clusters run on this machine, each person as their own Linux
account (``users.system_prefix`` + name), in their cgroup, with their (optionally loop-mounted) home.

Servers start from the fork server when ``hub.fast_spawn`` is on (``forkserver``, ``forkchild``,
``fastspawn``), else as a fresh process (upstream's ``LocalProcessSpawner``); clusters run as local processes
(dask-gateway's ``LocalBackend``), as the person.
"""

from __future__ import annotations

from pathlib import Path

from pangeohub.targets.base import Addresses, Leftover, Target

LOOPBACK = "127.0.0.1"


class LocalTarget(Target):
    name = "local"
    spawner_class = "pangeohub.targets.local.spawner.PangeoSpawner"
    gateway_backend_class = "pangeohub.targets.local.gateway.PangeoBackend"

    def services(self, runtime) -> list:
        if not self.config.hub.fast_spawn:
            return []
        from pangeohub.targets.local.forkservice import ForkServerService

        return [ForkServerService(runtime)]  # just before the hub: see forkservice.py

    def addresses(self) -> Addresses:
        # A person's server runs on this machine: every part is on loopback.
        config = self.config
        gw = config.gateway
        # With TLS on, the public proxy speaks only HTTPS for a name that need not resolve here: kernels go
        # straight to the gateway's own proxy, which serves the same paths the hub's proxy forwards to it.
        http = f"http://{LOOPBACK}:{gw.proxy_port if config.hub.tls_mode != 'off' else config.hub.port}"
        return Addresses(
            hub_api=f"http://{LOOPBACK}:{config.hub.internal_port}/hub/api",
            s3_endpoint=self.s3_endpoint_at(LOOPBACK),
            gateway=http,
            gateway_proxy=f"gateway://{LOOPBACK}:{gw.scheduler_port}",
        )

    def gateway_config(self, paths) -> dict[str, dict]:
        return {"PangeoBackend": {"clusters_directory": str(paths.gateway_clusters)}}

    def spawn_hooks(self) -> list:
        from pangeohub.targets.local.hook import resources_hook

        # resources first: it mounts the (quota'd) home that later hooks write into, and makes the cgroup.
        return [resources_hook]

    def preflight(self, rt) -> None:
        from pangeohub.targets.local.lifecycle import preflight

        preflight(rt.config)  # every limit the config sets must be enforceable on this machine

    def prepare_person(self, user: str) -> None:
        from pangeohub.targets.local.homes import prepare_image

        prepare_image(self.config, self.account(user))

    def account(self, user: str):
        from pangeohub.targets.sysusers import ensure_account

        return ensure_account(user, self.config.users)

    def ready_home(self, user: str):
        from pangeohub.targets.local.homes import ensure_home

        entry = self.account(user)
        ensure_home(self.config, entry)  # its quota image mounted, if quotas are on
        return entry

    def release_home(self, linux: str, delete: bool) -> None:
        from pangeohub.targets.local.lifecycle import release_user

        release_user(self.config, linux, delete=delete)

    def leftovers(self, rt, accounts: set[str], unfinished: set[str]) -> list[Leftover]:
        from pangeohub.targets.local import homes
        from pangeohub.targets.local.lifecycle import runtime_root

        config, prefix, found = self.config, self.config.users.system_prefix, []
        # An image whose account is missing for another reason (a state dir restored on a new machine, before
        # its people's accounts are made again) holds someone's files and is kept; it is unmounted here, so that
        # no process of a reused uid can reach it.
        images = homes.images_dir(config)
        for point, device in sorted(homes.mounted_homes().items()):
            image = Path(homes.backing_file(device) or "/")
            if (image.parent == images and image.name.startswith(prefix) and image.stem not in accounts
                    and image.stem not in unfinished):
                found.append(Leftover("home mount", image.stem, point))
        if runtime_root(config).is_dir():
            for path in sorted(runtime_root(config).glob(f"{prefix}*")):
                if path.name not in accounts and path.name not in unfinished:
                    found.append(Leftover("runtime dir", path.name, str(path)))
        return found

    def release_leftover(self, rt, item: Leftover) -> None:
        import shutil

        from pangeohub.targets.local import homes

        if item.kind == "home mount":
            homes.release_home(self.config, Path(item.path))
        elif item.kind == "runtime dir":
            shutil.rmtree(item.path, ignore_errors=True)  # in the root-owned state dir

