"""PangeoBackend: dask-gateway-server's LocalBackend, running each cluster as its owner's Linux account.

What it fixes or adds to upstream ``LocalBackend``:
- ``setup_working_directory`` does ``paths.extend(path)`` on a string, so as root it calls ``os.chown('/')``
  (and on every other character of the path). Here exactly the cluster's own files change owner.
- Processes run as ``<users.system_prefix><name>`` (the account the hub spawns servers as), not as an account
  named like the hub user, and only if pangeohub made that account.
- Per-user totals across clusters (clusters, cores, memory), checked on create and on every scale/adapt/heartbeat.
- The dashboard is served only to its owner (see dashboard.py); upstream publishes it to anyone.
- Each cluster gets a private working directory, its own DASK_TEMPORARY_DIRECTORY, the user's home, their
  ``pip install --user`` packages and the storage variables of their notebook server.
- Clusters stop when their owner's notebook server stops (see watcher.py).
"""

from __future__ import annotations

import os
import pwd
from functools import cached_property

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import LocalBackend
from traitlets import Dict, Unicode, default

from pangeohub.config import Config
from pangeohub.gateway import limits
from pangeohub.gateway.options import build_options
from pangeohub.gateway.userenv import forwarded_env, usersite_pythonpath
from pangeohub.names import is_ours, system_name
from pangeohub.resources.cgroups import enter_user_cgroup


class PangeoBackend(LocalBackend):
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
        return lambda user: build_options(self.gw, list(user.groups))

    # -- whose account ---------------------------------------------------------------------------------
    def account(self, username: str) -> pwd.struct_passwd:
        """The Linux account a hub user's clusters run as; only accounts pangeohub created qualify."""
        if ":" in username:  # dask-gateway names hub services "service:<name>": they have no account
            raise PublicException(f"{username} is not a hub user: only users can start Dask clusters")
        name = system_name(username, self.pconfig.users.system_prefix)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PublicException(
                f"user {username} has no Linux account yet: start your notebook server once, then retry") from None
        if not is_ours(entry):
            raise PublicException(f"refusing to run as {name}: it is not an account pangeohub created")
        return entry

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
        config_dict = config.to_dict()
        # No await between the check and the record: concurrent requests cannot both pass the same check.
        limits.check_new_cluster(self.gw.limits, limits.usage(self.db.list_clusters(username=user.name)), config_dict)
        cluster = self.db.create_cluster(user.name, options, config_dict)
        self.log.info("Created cluster %s for user %s", cluster.name, user.name)
        self.queue.put(cluster)
        return cluster.name

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

    # -- running as the user ---------------------------------------------------------------------------
    def cgroup_for(self, cluster):
        """The user's cgroup (the one their notebook server is in, with its profile's limits), or None when
        limits are off. Every scheduler and worker joins it from the child before exec, so there is no window
        in which a Dask process runs unlimited, and the profile's memory covers notebook and Dask together."""
        from pangeohub.resources.cgroups import user_cgroup

        return user_cgroup(self.pconfig, self.account(cluster.username).pw_name)

    def set_file_permissions(self, paths, username):
        entry = self.account(username)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def make_preexec_fn(self, cluster):  # pragma: no cover - runs in the child
        entry = self.account(cluster.username)
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        workdir = cluster.state["workdir"]
        cgroup = self.cgroup_for(cluster)
        umask = int(self.pconfig.users.umask, 8)

        def preexec():
            enter_user_cgroup(cgroup)  # while still root: after the uid change cgroup.procs is not writable
            os.setgid(entry.pw_gid)
            os.setgroups(groups)
            os.setuid(entry.pw_uid)
            os.umask(umask)
            os.chdir(workdir)

        return preexec

    def setup_working_directory(self, cluster):
        """Upstream's, minus its ``paths.extend(path)`` (which chowns '/'): a private directory per cluster."""
        if not self.clusters_directory:
            raise PublicException("the gateway has no clusters_directory configured")
        workdir = os.path.join(self.clusters_directory, cluster.name)
        certsdir = self.get_certs_directory(workdir)
        logsdir = self.get_logs_directory(workdir)
        tmpdir = self.get_temporary_directory(workdir)
        os.mkdir(workdir, 0o700)  # fails if it exists: never adopt a directory somebody else prepared
        for path in (certsdir, logsdir, tmpdir):
            os.mkdir(path, 0o700)
        cert_path, key_path = self._get_tls_paths(workdir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        for path, data in ((cert_path, cluster.tls_cert), (key_path, cluster.tls_key)):
            with os.fdopen(os.open(path, flags, 0o600), "wb") as handle:
                handle.write(data)
        # Children before the directory: until the end, root owns everything and the user cannot interfere.
        self.set_file_permissions([cert_path, key_path, certsdir, logsdir, tmpdir, workdir], cluster.username)
        self.log.debug("Working directory %s for cluster %s created", workdir, cluster.name)
        return workdir

    def get_temporary_directory(self, workdir: str) -> str:
        return os.path.join(workdir, "tmp")

    def get_env(self, cluster):
        entry = self.account(cluster.username)
        workdir = cluster.state["workdir"]
        env = forwarded_env(self.pconfig.state_dir, cluster.username, self.gw.forward_env)
        env.update(super().get_env(cluster))  # the gateway's own variables win over forwarded ones
        env.update({
            "USER": entry.pw_name, "LOGNAME": entry.pw_name, "HOME": entry.pw_dir, "SHELL": entry.pw_shell,
            "PATH": os.pathsep.join([str(self.pconfig.install_dir / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
            "LANG": env.get("LANG", "C.UTF-8"),
            "DASK_TEMPORARY_DIRECTORY": self.get_temporary_directory(workdir),
            # Private like the rest of the cluster's working directory, not the machine's shared /tmp.
            "TMPDIR": self.get_temporary_directory(workdir),
            "PYTHONPATH": usersite_pythonpath(),
        })
        return env

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
