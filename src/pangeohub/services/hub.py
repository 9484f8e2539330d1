"""The JupyterHub process, run from a rendered JSON config."""

from __future__ import annotations

import json
import time

from pangeohub.auth.render import prepare_auth
from pangeohub.errors import PangeoError
from pangeohub.hubapi import HubAPI
from pangeohub.render.hub import HubSecrets, render_hub_config
from pangeohub.secrets import write_private
from pangeohub.services.base import Service, http_ok
from pangeohub.services.proxy import proxy_routes


class HubService(Service):
    name = "hub"
    start_timeout = 120.0
    # It registers routes with the proxy at start, and its spawn hooks use the object store. (The fork server
    # is needed only by spawns: the hub starts beside it, and `up` waits for both.)
    needs_earlier_services = True

    @property
    def port(self) -> int:
        return self.rt.config.hub.internal_port

    @property
    def config_file(self):
        return self.rt.paths.hub / "jupyterhub_config.json"

    def secrets(self) -> HubSecrets:
        prometheus = self.rt.secret("prometheus_token") if self.rt.config.monitoring.prometheus else ""
        return HubSecrets(admin_service_token=self.rt.secret("hub_admin_token"),
                          gateway_token=self.rt.secret("gateway_hub_token"), prometheus_token=prometheus)

    def prepare(self) -> None:
        prepare_auth(self.rt.config, self.rt.paths)
        rendered = render_hub_config(self.rt.config, self.rt.paths, self.secrets(), self.rt.public_url)
        write_private(self.config_file, json.dumps(rendered, indent=2, sort_keys=True) + "\n")

    def command(self) -> list[str]:
        # JupyterHub's own command line, its database tuned first (pangeohub.hub.launch).
        return [str(self.rt.python_bin("python")), "-m", "pangeohub.hub.launch", "-f", str(self.config_file)]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "CONFIGPROXY_AUTH_TOKEN": self.rt.secret("proxy_token"),
            "JUPYTERHUB_CRYPT_KEY": self.rt.secret("crypt_key"),
        }

    def cwd(self):
        return self.rt.paths.hub

    def probe(self) -> bool:
        return (http_ok(f"http://{self.rt.target.service_host()}:{self.port}/hub/health")
                and self._service_routes_in_place())

    def _service_routes_in_place(self) -> bool:
        """JupyterHub answers /hub/health as soon as it listens, but starts its managed services one by one
        (waiting up to 10 s for each to answer) and only then gives the proxy the routes of services with a URL:
        until then /services/dask-gateway/ reached the hub's own 403 page, and a person's first cluster failed.
        The hub is ready once the proxy has every such route (kept by the proxy across a restart of the hub)."""
        services = json.loads(self.config_file.read_text())["JupyterHub"].get("services", [])
        wanted = {f"/services/{service['name']}" for service in services if service.get("url")}
        routes = proxy_routes(self.rt) if wanted else {}
        return routes is not None and wanted <= {path.rstrip("/") for path in routes}

    def after_ready(self) -> None:
        """The platform's own accounts are hub users, with their admin flag and groups, from the start; the
        temporary accounts released before the start leave the hub too (pangeohub.hubsync)."""
        from pangeohub.hubsync import sync_hub_users
        from pangeohub.leftovers import forget_hub_users

        sync_hub_users(self.rt, forget=forget_hub_users(self.rt))
        self.rt.target.reconcile(self.rt)

    def before_stop(self) -> None:
        """Stop every user server: the hub itself leaves them running (so that a hub restart is harmless)."""
        stop_all_servers(self.rt)


def stop_all_servers(rt, timeout: float = 60.0) -> None:
    api = HubAPI(rt)
    # The hub may still be starting (``down`` right after a restart): wait for it rather than leave its
    # servers running. What it cannot stop, ``down`` ends afterwards (sysusers.end_leftover_processes).
    deadline = time.monotonic() + timeout
    while True:
        try:
            active = api.request("GET", "/users?state=active") or []
            break
        except PangeoError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.5)
    # Ask for every stop first, then wait once: servers stop in parallel.
    for user in active:
        try:
            api.stop_server(user["name"], wait=False)
        except PangeoError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not api.request("GET", "/users?state=active"):
                return
        except PangeoError:
            return
        time.sleep(0.5)
