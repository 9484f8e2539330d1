"""The usage service's entry in JupyterHub's services (pure: no I/O).

One hub-managed process samples each person's use (sampler.py) and answers, behind the hub's proxy, at
``/services/usage/``: the admin page and the Prometheus metrics endpoint (web.py). With
``monitoring.prometheus`` the platform's Prometheus gets a service token of its own that may read metrics
and nothing else.
"""

from __future__ import annotations

import json

from pangeohub.config import Config

SERVICE = "usage"
PROMETHEUS_SERVICE = "pangeohub-prometheus"
# Read only: who runs what since when, their groups, and the hub's own metrics (passed through at /metrics);
# the service changes nothing in the hub.
SCOPES = ["list:users", "read:users", "read:servers", "read:groups", "read:metrics"]
# What the hub's own /hub/metrics asks for, and entry to this service: nothing about people beyond the metrics.
PROMETHEUS_SCOPES = ["read:metrics", f"access:services!service={SERVICE}"]


def service_url(config: Config) -> str:
    return f"http://127.0.0.1:{config.usage.port}"


def metrics_path() -> str:
    return f"/services/{SERVICE}/metrics"


def usage_services(config: Config, prometheus_token: str = "") -> tuple[list[dict], list[dict]]:
    """(services, roles) to add to the hub's config; none when accounting is off or the hub runs elsewhere."""
    if not config.usage.enabled or config.target.kind == "kubernetes":
        return [], []
    service = {
        "name": SERVICE,
        "url": service_url(config),
        "command": [str(config.install_dir / "bin" / "python"), "-m", "pangeohub.usage.sampler"],
        # The settings travel with the service, as the spawner gets them: nothing else to read or keep in step.
        "environment": {"PANGEOHUB_SETTINGS": json.dumps(config.model_dump(mode="json"), sort_keys=True)},
        # Admins log in to the page with the hub's OAuth; a consent page for the platform's own page adds nothing.
        "oauth_no_confirm": True,
        # Not in people's Services menu: the page is for admins only (everyone else gets 403).
        "display": False,
    }
    services, roles = [service], [{"name": SERVICE, "scopes": SCOPES, "services": [SERVICE]}]
    if config.monitoring.prometheus and prometheus_token:
        services.append({"name": PROMETHEUS_SERVICE, "api_token": prometheus_token, "display": False})
        roles.append({"name": PROMETHEUS_SERVICE, "scopes": PROMETHEUS_SCOPES, "services": [PROMETHEUS_SERVICE]})
    return services, roles
