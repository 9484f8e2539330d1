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


class HubService(Service):
    name = "hub"
    start_timeout = 120.0
    # It registers routes with the proxy at start, and spawns through the fork server and the object store.
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
        return [str(self.rt.python_bin("jupyterhub")), "-f", str(self.config_file)]

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "CONFIGPROXY_AUTH_TOKEN": self.rt.secret("proxy_token"),
            "JUPYTERHUB_CRYPT_KEY": self.rt.secret("crypt_key"),
        }

    def cwd(self):
        return self.rt.paths.hub

    def probe(self) -> bool:
        return http_ok(f"http://{self.rt.target.service_host()}:{self.port}/hub/health")

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
