"""PangeoKubeBackend: dask-gateway-server's KubeBackend with pangeohub's cluster options and per-user totals.

Runs in the gateway pod (our hub image). What it adds to upstream ``KubeBackend``:
- cluster options per user from ``gateway.options`` / ``gateway.group_options`` (the same builder as on one
  machine, pangeohub.gateway.options);
- per-user totals (clusters, cores, memory) across a person's clusters, checked on create and clamped on every
  heartbeat (upstream dropped per-user limits in 0.7), with the same checks as on one machine
  (pangeohub.gateway.limits);
- the operator's cluster list and stop (pangeohub.gateway.admin), for ``pangeohub --hub-url ... clusters``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.kubernetes import KubeBackend
from traitlets import Dict, default

from pangeohub.config.gateway import GatewaySection
from pangeohub.gateway import limits
from pangeohub.gateway.options import build_options


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

    @default("cluster_options")
    def _default_cluster_options(self):
        return lambda user: build_options(self.gw, list(user.groups))

    # Workers each cluster asked for (its DaskCluster's replicas): upstream's cluster records do not carry it.
    requested = Dict(help="Workers requested per cluster name (kept by this backend).")

    def _usage(self, clusters, exclude: str | None = None) -> limits.Usage:
        counted = [_Counted(c.name, c.config, self.requested.get(c.name, 0)) for c in clusters]
        return limits.usage(counted, exclude=exclude)

    async def _allowed(self, cluster) -> tuple[int | None, str]:
        others = self._usage(await self.list_clusters(username=cluster.username), exclude=cluster.name)
        return limits.allowed_workers(self.gw.limits, others, cluster.config)

    async def start_cluster(self, user, cluster_options):
        if ":" in user.name:
            raise PublicException(f"{user.name} is not a hub user: only users can start Dask clusters")
        _, config = await self.process_cluster_options(user, cluster_options)
        mine = await self.list_clusters(username=user.name)
        limits.check_new_cluster(self.gw.limits, self._usage(mine), config.to_dict())
        return await super().start_cluster(user, cluster_options)

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


def extra_config(gateway: GatewaySection) -> str:
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
    return "\n".join(lines) + "\n"
