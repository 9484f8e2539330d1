"""Render dask-gateway-server's config from ours: a pure function to a traitlets dict (written as JSON).

Addresses, on loopback (the proxy's two on the target's service host, when people's work runs elsewhere):
- ``gateway.api_port``: the private API (aiohttp). Only the gateway's own proxy talks to it.
- ``gateway.proxy_port``: the gateway's HTTP proxy, registered as the hub service ``dask-gateway``, so that the
  hub's proxy serves it at ``/services/dask-gateway/`` (API for clients, dashboards for browsers).
- ``gateway.scheduler_port``: the TLS proxy that routes Dask clients to their scheduler by cluster name.
"""

from __future__ import annotations

from dataclasses import dataclass

from pangeohub.config import Config
from pangeohub.paths import StatePaths
from pangeohub.targets import get_target

SERVICE_NAME = "dask-gateway"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}"
CULLER_SERVICE = "idle-culler"
# The scope a token needs for `Gateway()` (dask-gateway's JupyterHubAuthenticator checks it).
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"


@dataclass(frozen=True)
class GatewayUrls:
    hub_api: str  # e.g. http://127.0.0.1:8081/hub/api
    public_url: str  # the hub as people reach it, ending in '/'


def render_gateway_config(config: Config, paths: StatePaths, urls: GatewayUrls) -> dict:
    gw = config.gateway
    limits = gw.limits
    bin_dir = config.install_dir / "bin"
    cluster = {
        # distributed 2026.x has no dask-scheduler/dask-worker executables (upstream's defaults).
        "scheduler_cmd": [str(bin_dir / "dask"), "scheduler"],
        "worker_cmd": [str(bin_dir / "dask"), "worker"],
        "scheduler_cores": gw.scheduler_cores,
        "scheduler_memory": gw.scheduler_memory,
        "worker_cores": gw.options.worker_cores.default,
        "worker_memory": gw.options.worker_memory.default,
        "idle_timeout": float(gw.idle_timeout),
    }
    for key in ("cluster_max_workers", "cluster_max_cores", "cluster_max_memory"):
        if getattr(limits, key) is not None:
            cluster[key] = getattr(limits, key)
    target = get_target(config)
    # People's servers and Dask processes reach the proxy (API, heartbeats) and its scheduler port here: on
    # loopback when they run on this machine, on its cluster address when they run on other hosts.
    host = target.service_host()
    rendered = {
        "DaskGateway": {
            "address": f"127.0.0.1:{gw.api_port}",
            "backend_class": target.gateway_backend_class,
            "authenticator_class": "pangeohub.gateway.auth.PangeoGatewayAuthenticator",
            "log_level": "INFO",
        },
        "JupyterHubAuthenticator": {
            "jupyterhub_api_url": urls.hub_api,
            "jupyterhub_service_name": SERVICE_NAME,
            "use_service_access_scopes": True,
        },
        "Proxy": {
            "address": f"{host}:{gw.proxy_port}",
            "tcp_address": f"{host}:{gw.scheduler_port}",
            "prefix": SERVICE_PREFIX,
            "log_level": "warn",
        },
        target.gateway_backend_class.rsplit(".", 1)[1]: {
            # Cluster state on disk (its keys encrypted, DASK_GATEWAY_ENCRYPT_KEYS): a gateway that dies and is
            # restarted takes its clusters back, whose schedulers and workers run in sessions of their own.
            # An orderly stop (`pangeohub down`) still stops them.
            "db_url": f"sqlite:///{paths.gateway_db}",
            "stop_clusters_on_shutdown": True,
            "settings": config.model_dump(mode="json"),
            "hub_api_url": urls.hub_api,
        },
        "ClusterConfig": cluster,
    }
    for section, values in target.gateway_config(paths).items():
        rendered.setdefault(section, {}).update(values)
    return rendered


def gateway_client_env(addresses, public_url: str) -> dict[str, str]:
    """What a notebook server needs for a zero-argument ``Gateway()`` (read by dask-gateway's client config).
    ``addresses``: the gateway as the server sees it (``pangeohub.targets.Addresses``)."""
    return {
        # The kernel reaches the gateway where its target says; browsers use the public URL.
        "DASK_GATEWAY__ADDRESS": f"{addresses.gateway}{SERVICE_PREFIX}",
        "DASK_GATEWAY__PUBLIC_ADDRESS": f"{public_url.rstrip('/')}{SERVICE_PREFIX}",
        "DASK_GATEWAY__PROXY_ADDRESS": addresses.gateway_proxy,
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }


def hub_services(config: Config, gateway_token: str) -> tuple[list[dict], list[dict]]:
    """(services, roles) the hub config gains: the gateway as an external service, the idle culler as a managed
    one, and the scopes that let every user's server (and the person themselves) use the gateway."""
    gw = config.gateway
    if not gw.enabled:
        services, roles = [], []
    else:
        services = [{
            "name": SERVICE_NAME,
            "url": f"http://{get_target(config).service_host()}:{gw.proxy_port}",
            "api_token": gateway_token,
            # Browsers log in to dashboards through hub OAuth; no "authorize this service?" page.
            "oauth_client_id": f"service-{SERVICE_NAME}",
            "oauth_redirect_uri": f"{SERVICE_PREFIX}/oauth_callback",
            "oauth_no_confirm": True,
        }]
        roles = [
            {"name": "user", "scopes": ["self", ACCESS_SCOPE]},
            {"name": "server", "scopes": ["users:activity!user", "access:servers!server", ACCESS_SCOPE]},
            # The gateway stops the clusters of users whose server stopped: it reads who has a server.
            {"name": "dask-gateway", "scopes": ["list:users", "read:users:name", "read:servers"],
             "services": [SERVICE_NAME]},
        ]
    if gw.server_idle_timeout:
        services.append({
            "name": CULLER_SERVICE,
            "command": [str(config.install_dir / "bin" / "python3"), "-m", "pangeohub.gateway.culler",
                        f"--timeout={int(gw.server_idle_timeout)}",
                        f"--cull-every={max(10, min(300, int(gw.server_idle_timeout) // 4))}"],
        })
        roles.append({"name": CULLER_SERVICE, "services": [CULLER_SERVICE],
                      "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})
    return services, roles
