"""PangeoBackendMixin: the gateway's rules that hold wherever clusters run, over any database-backed backend.

What it adds to upstream's backends (``DBBackendBase`` and its local, jobqueue and other subclasses); a
target's backend puts it first in its bases (``pangeohub.targets.local.gateway.PangeoBackend``) and supplies
``account(username)`` (the account a hub user's clusters run as, refusing users who have none):
- Per-user totals across clusters (clusters, cores, memory), checked on create and on every scale/adapt/heartbeat.
- The dashboard is served only to its owner (see dashboard.py); upstream publishes it to anyone.
- Clusters stop when their owner's notebook server stops (see watcher.py).
- New clusters are refused while a monthly budget of their owner is used up (pangeohub.budgets).
"""

from __future__ import annotations

import asyncio
from functools import cached_property

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.db_base import DBBackendBase
from traitlets import Dict, Unicode, default

from pangeohub.config import Config
from pangeohub.gateway import limits
from pangeohub.gateway.options import build_options


class PangeoBackendMixin(DBBackendBase):  # a traitlets class, so that its traits and @default handlers register
    settings = Dict(help="pangeohub's effective config (all sections), as rendered by pangeohub.").tag(config=True)
    hub_api_url = Unicode(help="The hub's REST API, for the stop-with-server watcher.").tag(config=True)

    @cached_property
    def pconfig(self) -> Config:
        return Config.model_validate(self.settings)

    @property
    def gw(self):
        return self.pconfig.gateway

    @default("cluster_options")
    def _default_cluster_options(self):
        return lambda user: build_options(self.gw, list(user.groups), self.pconfig)

    # -- creating clusters: options and per-user totals ------------------------------------------------
    async def process_cluster_options(self, user, request):
        try:
            return await super().process_cluster_options(user, request)
        except PublicException as exc:
            raise PublicException(
                f"cluster options refused: {exc} (allowed ranges: Gateway().cluster_options(); "
                "set by the administrator in gateway.options)") from None

    async def start_cluster(self, user, cluster_options):
        self.account(user.name)
        options, config = await self.process_cluster_options(user, cluster_options)
        await self.check_budget(user)
        config_dict = config.to_dict()
        # No await between the check and the record: concurrent requests cannot both pass the same check.
        limits.check_new_cluster(self.gw.limits, limits.usage(self.db.list_clusters(username=user.name)), config_dict)
        cluster = self.db.create_cluster(user.name, options, config_dict)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.queue.put(cluster)
        return cluster.name

    async def check_budget(self, user) -> None:
        """A used-up monthly budget refuses new clusters (pangeohub.budgets); running ones are left alone."""
        from pangeohub.budgets.enforce import cluster_refusal

        refusal = await asyncio.get_running_loop().run_in_executor(
            None, cluster_refusal, self.pconfig, user.name, list(user.groups), self.log)
        if refusal:
            self.log.warning("Budget: %s: %s", user.name, refusal)
            raise PublicException(refusal)

    def allowed_workers(self, cluster_name: str) -> tuple[int | None, str]:
        cluster = self.db.get_cluster(cluster_name)
        others = limits.usage(self.db.list_clusters(username=cluster.username), exclude=cluster.name)
        return limits.allowed_workers(self.gw.limits, others, cluster.config)

    async def forward_message_to_scheduler(self, cluster, msg):
        allowed, why = self.allowed_workers(cluster.name)
        if allowed is not None:
            if msg.get("op") == "scale" and msg["count"] > allowed:
                raise limits.scale_refusal(msg["count"], allowed, why, cluster.name)
            if msg.get("op") == "adapt":
                # Adaptive scaling asks for workers later, through heartbeats: those are clamped too.
                msg = {**msg, "maximum": min(msg["maximum"] if msg.get("maximum") is not None else allowed, allowed),
                       "minimum": min(msg.get("minimum") or 0, allowed)}
        await super().forward_message_to_scheduler(cluster, msg)
        if msg.get("op") == "scale":
            # Count the request now, not at the scheduler's next heartbeat: a second cluster scaled meanwhile
            # must see this one's workers in the user's totals.
            record = self.db.get_cluster(cluster.name)
            if record is not None and record.is_active():
                self.db.update_cluster(record, count=msg["count"])
                self.queue.put(record)  # what the heartbeat would have done on seeing the new count

    async def on_cluster_heartbeat(self, cluster_name, msg):
        cluster = self.db.get_cluster(cluster_name)
        if cluster is not None and cluster.is_active():
            allowed, _ = self.allowed_workers(cluster_name)
            if allowed is not None and msg.get("count", 0) > allowed:
                self.log.info("Cluster %s asked for %d workers; per-user limits allow %d",
                              cluster_name, msg["count"], allowed)
                msg = {**msg, "count": allowed}
        return await super().on_cluster_heartbeat(cluster_name, msg)

    def get_scheduler_env(self, cluster):
        env = super().get_scheduler_env(cluster)
        cert, key = self.get_tls_paths(cluster)
        # The dashboard speaks TLS and demands the cluster's certificate (scheduler_preload.py): other accounts
        # on this machine cannot read it over loopback; the gateway proxies it to the owner only.
        env.update({
            "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT": cert,
            "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY": key,
            "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CA_FILE": cert,
        })
        return env

    def dashboard_tls_paths(self, cluster) -> tuple[str, str]:
        """The cluster's certificate and key as files the gateway can read, for the dashboard proxy."""
        return self.get_tls_paths(cluster)

    def get_scheduler_command(self, cluster):
        return super().get_scheduler_command(cluster) + ["--preload", "pangeohub.gateway.scheduler_preload"]

    def get_worker_command(self, cluster, worker_name, scheduler_address=None):
        # Worker dashboards would listen unauthenticated on loopback; the scheduler's dashboard covers workers.
        # Upstream gives the scheduler `--host default_host` but workers and nannies no host, so they listen on
        # 0.0.0.0 and [::]. `default_host` is the backend's own address knob (loopback for the local backend; a
        # backend on compute nodes sets the cluster network's address there).
        return super().get_worker_command(cluster, worker_name, scheduler_address) + [
            "--host", self.default_host, "--no-dashboard"]

    # -- proxying and background work ------------------------------------------------------------------
    async def _check_cluster_proxied(self, cluster):
        """Upstream publishes ``/clusters/<name>/`` (the dashboard) on its proxy with no authentication. Only
        the scheduler route is added here; dashboards are served by the authenticated handler instead."""
        if not cluster.added_to_proxies:
            await self.proxy.add_route(kind="SNI", sni=cluster.name, target=cluster.scheduler_address)
            cluster.added_to_proxies = True

    async def setup(self, app):
        from pangeohub.gateway import notfound
        from pangeohub.gateway.admin import AdminAPI
        from pangeohub.gateway.dashboard import DashboardProxy
        from pangeohub.gateway.watcher import stop_with_server_loop

        notfound.install(app)
        self.dashboards = DashboardProxy(self, app)
        AdminAPI(self, app)
        await super().setup(app)
        if self.gw.stop_with_server:
            self.task_pool.spawn(stop_with_server_loop(self))

    async def cleanup(self):
        if hasattr(self, "dashboards"):
            await self.dashboards.close()
        await super().cleanup()
