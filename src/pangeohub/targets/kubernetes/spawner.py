"""PangeoKubeSpawner: KubeSpawner with pangeohub's profile rules and per-person scratch credentials.

What it adds to upstream ``KubeSpawner`` (which the chart configures as usual):
- Profiles limited to groups (``allowed_groups`` in a profileList entry; KubeSpawner has no such rule): a person
  sees and may choose only the profiles open to them, by the same rule as on one machine
  (pangeohub.resources.profiles.allowed), and the first of them is their default.
- Before each start, the storage spawn hook of one machine (pangeohub.storage.hook.scratch_hook) gives the
  server its own key, limited to its prefix of the scratch bucket, and the variables s3fs/fsspec read; and the
  named environments the person may use (built into the user image) as kernels, on ``JUPYTER_PATH``.
- Each person's own uid (``uids``; the chart runs every server as uid 1000): the server runs as it, not root,
  without privilege escalation; an init container makes the home volume theirs and the shared scratch root a
  sticky-bit directory (``isolation``); the home volume carries the uid as an annotation, where the gateway
  reads it to run the person's Dask pods as the same uid. What it fixes in upstream: KubeSpawner leaves a home
  volume that already exists as it is, so one made before (by an older render, or by a stock deployment moved
  here) would never get the annotation and its person could never start a Dask cluster: it is annotated at
  start.
"""

from __future__ import annotations

import asyncio
from functools import cached_property
from pathlib import Path

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Dict

from pangeohub.config import Config
from pangeohub.envs.kernels import kernel_path
from pangeohub.resources.profiles import allowed
from pangeohub.storage.hook import scratch_hook
from pangeohub.targets.kubernetes import isolation, names
from pangeohub.targets.kubernetes.mapping import HOME
from pangeohub.targets.kubernetes.objectstore import KubeRuntime, StoreAddress
from pangeohub.targets.kubernetes.uids import FILE, UidRegistry



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

    def _own_uid(self) -> int:
        config = self.runtime.config
        uid = UidRegistry(Path(config.state_dir) / FILE, config.kubernetes.first_uid).uid(self.user.name,
                                                                                          self.user.id)
        self.uid = self.gid = uid
        # No pod fsGroup (see isolation): the init container gives the home to its owner instead.
        self.fs_gid = None
        self.supplemental_gids = []
        self.container_security_context = isolation.nonroot(uid)
        self.storage_extra_annotations = {**self.storage_extra_annotations, isolation.UID_ANNOTATION: str(uid)}
        volumes = self.volumes.values() if isinstance(self.volumes, dict) else self.volumes
        claim = names.shared_claim(config, "scratch")
        scratch = claim if any(v.get("name") == claim for v in volumes) else None
        # The chart names the home volume from singleuser.storage.dynamic.volumeNameTemplate, a template that
        # KubeSpawner expands in init containers as in volumes.
        home = next((v["name"] for v in volumes
                     if v.get("persistentVolumeClaim", {}).get("claimName") == "{pvc_name}"), "home")
        self.init_containers = [isolation.owner_init_container(self.image, uid, home, scratch)]
        # The image has no passwd entry for this uid: the runtime would give HOME=/.
        self.environment.update({"HOME": HOME, "USER": self.user.name})
        return uid

    async def get_pod_manifest(self):
        self._own_uid()
        return await super().get_pod_manifest()

    async def start(self):
        # Before upstream's start creates the home volume, so that it carries the uid annotation.
        self._own_uid()
        env = await scratch_hook(self, None)
        # The environments are in the image, the hub's (built FROM the user image) too: the hub sees which are built.
        env.update(kernel_path(self.runtime.config, self._groups(), bool(self.user.admin)))
        self.environment.update(env)
        url = await super().start()
        await self._annotate_home()
        return url

    async def _annotate_home(self) -> None:
        """Put the uid on the home volume upstream's start found or made (by then under its final name:
        upstream may switch to a legacy-named one). Failing leaves the server running: only Dask clusters need
        it."""
        if not self.storage_pvc_ensure:
            return
        body = {"metadata": {"annotations": {isolation.UID_ANNOTATION: str(self.uid)}}}
        try:
            await asyncio.wait_for(self.api.patch_namespaced_persistent_volume_claim(
                name=self.pvc_name, namespace=self.namespace, body=body), self.k8s_api_request_timeout)
        except (ApiException, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            self.log.error("could not put the uid annotation on %s's home volume %s (%s): their Dask "
                           "clusters will be refused; the hub needs the Role %s of manifests.yaml",
                           self.user.name, self.pvc_name, reason, names.HOME_OWNER_ROLE)
