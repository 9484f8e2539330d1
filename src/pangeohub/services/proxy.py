"""configurable-http-proxy as its own process, so that user servers stay reachable while the hub restarts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pangeohub.errors import PangeoError
from pangeohub.services.base import Service


def proxy_routes(rt) -> dict | None:
    """The proxy's routing table from its REST API (path -> target and data), or None if it does not answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{rt.config.hub.proxy_api_port}/api/routes",
                                     headers={"Authorization": f"token {rt.secret('proxy_token')}"})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


class ProxyService(Service):
    name = "proxy"
    # A new proxy starts with no routes, but the hub can put them back through its API: restarting the
    # hub, the object store and the gateway after it (the default) took 20 s and broke uploads for nothing.
    restart_dependants = False

    @property
    def port(self) -> int:
        hub = self.rt.config.hub
        return hub.https.port if hub.tls_mode != "off" else hub.port

    def command(self) -> list[str]:
        from pangeohub.tls.proxy import tls_command

        hub = self.rt.config.hub
        hub_target = f"http://{self.rt.target.service_host()}:{hub.internal_port}"
        return tls_command(self.rt, [
            str(self.rt.node_bin("configurable-http-proxy")),
            "--ip", hub.ip,
            "--port", str(self.port),
            "--api-ip", "127.0.0.1",
            "--api-port", str(hub.proxy_api_port),
            "--default-target", hub_target,
            "--error-target", f"{hub_target}/hub/error",
            "--log-level", "warn",
        ])

    def env(self) -> dict[str, str]:
        return {**super().env(), "CONFIGPROXY_AUTH_TOKEN": self.rt.secret("proxy_token")}

    def probe(self) -> bool:
        return proxy_routes(self.rt) is not None

    def after_restart(self) -> None:
        """Ask the hub to give the new proxy every route (people's servers, services): JupyterHub checks an
        external proxy's routes only at its own start."""
        from pangeohub.hubapi import HubAPI

        try:
            HubAPI(self.rt, timeout=30).request("POST", "/proxy")
        except PangeoError as exc:
            raise PangeoError(f"the hub could not give the new proxy its routes: {exc}",
                              "a hub that was down too gives them when it starts; else see "
                              "`pangeohub logs hub`") from exc
