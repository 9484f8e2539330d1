"""PangeoKubeSpawner: KubeSpawner with pangeohub's profile rules and per-person scratch credentials.

What it adds to upstream ``KubeSpawner`` (which the chart configures as usual):
- Profiles limited to groups (``allowed_groups`` in a profileList entry; KubeSpawner has no such rule): a person
  sees and may choose only the profiles open to them, by the same rule as on one machine
  (pangeohub.resources.profiles.allowed), and the first of them is their default.
- Before each start, the storage spawn hook of one machine (pangeohub.storage.hook.scratch_hook) gives the
  server its own key, limited to its prefix of the scratch bucket, and the variables s3fs/fsspec read.
"""

from __future__ import annotations

from functools import cached_property

from kubespawner import KubeSpawner
from traitlets import Dict

from pangeohub.config import Config
from pangeohub.resources.profiles import allowed
from pangeohub.storage.hook import scratch_hook
from pangeohub.targets.kubernetes import names
from pangeohub.targets.kubernetes.objectstore import KubeRuntime, StoreAddress


def kube_runtime(config: Config) -> KubeRuntime:
    rt = KubeRuntime(config=config)
    if config.storage.mode == "embedded":
        host = f"{names.OBJECTSTORE}.{config.kubernetes.namespace}"
        ports = config.storage.ports
        rt.store = StoreAddress(s3=names.objectstore_endpoint(config), host=host,
                                master_port=ports.master, master_grpc=ports.master_grpc,
                                filer_port=ports.filer, filer_grpc=ports.filer_grpc)
    return rt


class PangeoKubeSpawner(KubeSpawner):
    settings = Dict(help="pangeohub's effective config, as rendered by `pangeohub render kubernetes`.").tag(
        config=True)

    @cached_property
    def runtime(self) -> KubeRuntime:
        return kube_runtime(Config.model_validate(self.settings))

    def _groups(self) -> set[str]:
        return {group.name for group in getattr(self.user, "groups", [])}

    def _get_initialized_profile_list(self, profile_list: list):
        profile_list = super()._get_initialized_profile_list(profile_list)
        if not profile_list:
            return profile_list
        usable = {p.name for p in allowed(self.runtime.config, self._groups(), bool(self.user.admin))}
        mine = [dict(p) for p in profile_list if p["slug"] in usable or p["slug"] not in self._known()]
        if not mine:
            raise ValueError("no hardware profile is open to you (each is limited to some groups); "
                             "ask an administrator to add you to one of their groups")
        for index, profile in enumerate(mine):
            profile.pop("allowed_groups", None)
            profile["default"] = index == 0
        return mine

    def _known(self) -> set[str]:
        return {p.name for p in self.runtime.config.profiles}

    async def start(self):
        env = await scratch_hook(self, None)
        self.environment.update(env)
        return await super().start()
