"""dask-gateway-server as its own process (its HTTP and scheduler proxy is a child it manages itself).

Started before the hub: JupyterHub waits ~30 s at start for a service with a ``url`` that does not answer.
Restarted when it dies: its cluster state is on disk, so the new process takes the running clusters back.
"""

from __future__ import annotations

import base64
import json
import os
import pwd

from pangeohub.render.gateway import GatewayUrls, render_gateway_config
from pangeohub.secrets import write_private
from pangeohub.services.base import Service, http_ok


class GatewayService(Service):
    name = "dask-gateway"
    start_timeout = 60.0
    # The hub holds nothing about it that a restart changes (same URL, same token; the proxy keeps the route).
    restart_dependants = False
    stop_timeout = 30.0  # it stops every cluster (SIGINT, then SIGTERM) before exiting

    @property
    def port(self) -> int:
        return self.rt.config.gateway.proxy_port

    @property
    def config_file(self):
        return self.rt.paths.gateway / "dask_gateway_config.json"

    @property
    def account(self) -> pwd.struct_passwd | None:
        """The account the gateway runs as when its target names one (None: root)."""
        name = self.rt.target.gateway_account()
        return pwd.getpwnam(name) if name else None

    def prepare(self) -> None:
        home = self.rt.paths.gateway
        home.mkdir(mode=0o700, exist_ok=True)
        account = self.account
        # The database holds every cluster's encrypted keys: its owner's alone, made before the gateway runs.
        db = self.rt.paths.gateway_db
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
        db.chmod(0o600)
        urls = GatewayUrls(hub_api=self.rt.hub_api, public_url=self.rt.public_url)
        rendered = render_gateway_config(self.rt.config, self.rt.paths, urls)
        write_private(self.config_file, json.dumps(rendered, indent=2, sort_keys=True) + "\n")
        if account is None:
            home.chmod(0o711)  # users traverse it to reach their own cluster directory, never list it
            clusters = self.rt.paths.gateway_clusters
            clusters.mkdir(exist_ok=True)
            clusters.chmod(0o711)
            return
        # Run as its own account: its home, database and config are that account's, and nobody else's.
        home.chmod(0o700)
        for path in [home, *home.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def command(self) -> list[str]:
        server = [str(self.rt.python_bin("dask-gateway-server")), "-f", str(self.config_file)]
        account = self.account
        if account is None:
            return server
        # setpriv execs in place (no process in between for the supervisor to signal): the gateway's own uid,
        # gid and groups. Not --no-new-privs: the gateway's one privilege is sudo, which that would disable.
        return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--",
                *server]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "JUPYTERHUB_API_TOKEN": self.rt.secret("gateway_hub_token"),
            "DASK_GATEWAY_PROXY_TOKEN": self.rt.secret("gateway_proxy_token"),
            "PANGEOHUB_GATEWAY_COOKIE_SECRET": self.rt.secret("gateway_cookie_secret"),
            "PANGEOHUB_GATEWAY_ADMIN_TOKEN": self.rt.secret("gateway_admin_token"),
            # Fernet key for the cluster keys in its database: 32 bytes, URL-safe base64.
            "DASK_GATEWAY_ENCRYPT_KEYS": base64.urlsafe_b64encode(
                bytes.fromhex(self.rt.secret("gateway_db_key"))).decode(),
            "PYTHONUNBUFFERED": "1",
        }

    def cwd(self):
        return self.rt.paths.gateway

    def probe(self) -> bool:
        # Through its own proxy: both the API server and the proxy answer.
        host = self.rt.target.service_host()
        return http_ok(f"http://{host}:{self.port}/services/dask-gateway/api/health")


