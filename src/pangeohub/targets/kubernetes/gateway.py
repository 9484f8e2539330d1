"""PangeoKubeBackend: dask-gateway-server's KubeBackend with pangeohub's cluster options and per-user totals.

Runs in the gateway pod (our hub image). What it adds to upstream ``KubeBackend``:
- cluster options per user from ``gateway.options`` / ``gateway.group_options`` (the same builder as on one
  machine, pangeohub.gateway.options), with the ``environment`` option: scheduler and workers run a named
  environment's Python, from the user image where ``build-images`` built it;
- per-user totals (clusters, cores, memory) across a person's clusters, checked on create and clamped on every
  heartbeat (upstream dropped per-user limits in 0.7), with the same checks as on one machine
  (pangeohub.gateway.limits);
- isolation between people (``isolation``): a person's scheduler and workers run as that person's uid (read
  from the annotation the hub put on their home volume), and each cluster gets its own NetworkPolicy, owned by
  its DaskCluster object, admitting only its own pods, the gateway's pods and the owner's notebook;
- the operator's cluster list and stop (pangeohub.gateway.admin), for ``pangeohub --hub-url ... clusters``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.backends.kubernetes.utils import merge_json_objects
from kubernetes_asyncio import client as k8s
from traitlets import Dict, List, Unicode, default

from pangeohub.config.environments import Environment
from pangeohub.config.gateway import GatewaySection
from pangeohub.gateway import limits
from pangeohub.gateway.options import build_options
from pangeohub.targets.kubernetes import isolation
from pangeohub.targets.kubernetes.mapping import IMAGE_PREFIX


@dataclass
class _Counted:
    """What pangeohub.gateway.limits reads of a cluster: its config, the workers asked for, whether it runs."""

    name: str
    config: dict
    count: int = 0
    active: bool = True

    def is_active(self) -> bool:
        return self.active


class PangeoKubeBackend(KubeBackend):
    settings = Dict(help="pangeohub's gateway section (as rendered by pangeohub).").tag(config=True)

    @cached_property
    def gw(self) -> GatewaySection:
        return GatewaySection.model_validate(self.settings)

    environments = List(help="pangeohub's `environments` section (as rendered by pangeohub).").tag(config=True)
    install_dir = Unicode(IMAGE_PREFIX, help="Where the images hold the runtime and its envs/.").tag(config=True)

    @cached_property
    def _envs_config(self):
        """What pangeohub.envs.dask reads of the config; None (the option refused) without environments."""
        if not self.environments:
            return None
        return SimpleNamespace(environments=[Environment.model_validate(e) for e in self.environments],
                               install_dir=Path(self.install_dir))

    @default("cluster_options")
    def _default_cluster_options(self):
        return lambda user: build_options(self.gw, list(user.groups), self._envs_config)

    # Workers each cluster asked for (its DaskCluster's replicas): upstream's cluster records do not carry it.
    requested = Dict(help="Workers requested per cluster name (kept by this backend).")

    def _usage(self, clusters, exclude: str | None = None) -> limits.Usage:
        counted = [_Counted(c.name, c.config, self.requested.get(c.name, 0)) for c in clusters]
        return limits.usage(counted, exclude=exclude)

    async def _allowed(self, cluster) -> tuple[int | None, str]:
        others = self._usage(await self.list_clusters(username=cluster.username), exclude=cluster.name)
        return limits.allowed_workers(self.gw.limits, others, cluster.config)

    async def owner_uid(self, username: str, namespace: str) -> int:
        """The uid the hub gave this person, from the annotation on their home volume (only the hub writes it)."""
        claims = await self.core_client.list_namespaced_persistent_volume_claim(
            namespace, label_selector=f"component=singleuser-storage,"
                                      f"hub.jupyter.org/username={isolation.username_label(username)}")
        for claim in claims.items:
            value = (claim.metadata.annotations or {}).get(isolation.UID_ANNOTATION)
            if value and value.isdigit() and int(value) > 0:
                return int(value)
        raise PublicException(f"{username} has no uid from the hub yet: start your notebook server once, then "
                              "start the Dask cluster again")

    async def process_cluster_options(self, user, cluster_options):
        options, config = await super().process_cluster_options(user, cluster_options)
        if getattr(self, "core_client", None) is not None:  # set up: the cluster's pods run as its owner
            uid = await self.owner_uid(user.name, config.namespace)
            values = config.to_dict()
            for key, extra in {**isolation.dask_pod_config(uid), **isolation.dask_pod_labels(user.name)}.items():
                values[key] = merge_json_objects(values.get(key) or {}, extra)
            config = config.__class__(parent=self, **values)
        return options, config

    async def start_cluster(self, user, cluster_options):
        if ":" in user.name:
            raise PublicException(f"{user.name} is not a hub user: only users can start Dask clusters")
        _, config = await self.process_cluster_options(user, cluster_options)
        mine = await self.list_clusters(username=user.name)
        limits.check_new_cluster(self.gw.limits, self._usage(mine), config.to_dict())
        cluster_name = await super().start_cluster(user, cluster_options)
        namespace, name = cluster_name.split(".")
        # The API server's copy carries the uid the policy's ownerReference needs.
        cluster = await self.custom_client.get_namespaced_custom_object(
            "gateway.dask.org", self.crd_version, namespace, "daskclusters", name)
        policy = isolation.cluster_policy(cluster, self.gateway_instance, user.name)
        try:
            await self.networking_client.create_namespaced_network_policy(namespace, policy)
        except Exception:
            # Without its policy the cluster would be open to every Dask pod: it must not run.
            self.log.exception("Could not create the network policy of cluster %s; stopping it", cluster_name)
            await self.stop_cluster(cluster_name, failed=True)
            raise PublicException("the cluster could not be isolated from other people's clusters; "
                                  "ask an administrator to check the gateway's permissions") from None
        return cluster_name

    async def on_cluster_heartbeat(self, cluster_name, msg):
        cluster = self.clusters.get(cluster_name)
        if cluster is not None:
            allowed, _ = await self._allowed(cluster)
            if allowed is not None and msg.get("count", 0) > allowed:
                self.log.info("Cluster %s asked for %d workers; per-user limits allow %d",
                              cluster_name, msg["count"], allowed)
                msg = {**msg, "count": allowed}
            self.requested[cluster_name] = int(msg.get("count", 0))
        return await super().on_cluster_heartbeat(cluster_name, msg)

    async def setup(self, app):
        # The operator's API (pangeohub clusters, from the hub's machine or with --hub-url): on Kubernetes
        # only the second reaches it, through the hub's proxy, with a hub admin's token.
        from pangeohub.gateway.admin import AdminAPI

        AdminAPI(self, app)
        await super().setup(app)
        # Each cluster's NetworkPolicy (start_cluster).
        self.networking_client = k8s.NetworkingV1Api(api_client=self.api_client)

    async def forward_message_to_scheduler(self, cluster, msg):
        allowed, why = await self._allowed(cluster)
        if allowed is not None:
            if msg.get("op") == "scale" and msg["count"] > allowed:
                raise limits.scale_refusal(msg["count"], allowed, why, cluster.name)
            if msg.get("op") == "adapt":
                # Adaptive scaling asks for workers later, through heartbeats: those are clamped too.
                maximum = msg["maximum"] if msg.get("maximum") is not None else allowed
                msg = {**msg, "maximum": min(maximum, allowed), "minimum": min(msg.get("minimum") or 0, allowed)}
        await super().forward_message_to_scheduler(cluster, msg)
        if msg.get("op") == "scale":
            # Counted now, not at the next heartbeat: another cluster scaled meanwhile must see these workers.
            self.requested[cluster.name] = int(msg["count"])


def extra_config(gateway: GatewaySection, environments: list | None = None) -> str:
    """The gateway chart's ``gateway.extraConfig`` entry: runs after the chart's own config in the gateway pod."""
    settings = json.dumps(gateway.model_dump(mode="json"), sort_keys=True)
    lines = [
        'c.DaskGateway.backend_class = "pangeohub.targets.kubernetes.gateway.PangeoKubeBackend"',
        f"c.PangeoKubeBackend.settings = __import__('json').loads({settings!r})",
        f"c.KubeClusterConfig.idle_timeout = {float(gateway.idle_timeout)!r}",
    ]
    for key in ("cluster_max_workers", "cluster_max_cores", "cluster_max_memory"):
        value = getattr(gateway.limits, key)
        if value is not None:
            lines.append(f"c.KubeClusterConfig.{key} = {value!r}")
    if environments:
        envs = json.dumps([spec.model_dump(mode="json") for spec in environments], sort_keys=True)
        lines.append(f"c.PangeoKubeBackend.environments = __import__('json').loads({envs!r})")
    return "\n".join(lines) + "\n"
