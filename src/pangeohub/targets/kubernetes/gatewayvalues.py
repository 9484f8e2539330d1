"""Values of the ``dask-gateway`` chart (2026.3.0) from our config: a pure function.

Wired as ``daskhub`` wires it: JupyterHub authentication with the token the jupyterhub chart generates for the
``dask-gateway`` hub service (read from the hub's Secret), reached through the hub at /services/dask-gateway,
traefik kept inside the cluster. The gateway server runs our hub image (dask-gateway-server with its
Kubernetes backend and pangeohub's options and per-user limits); schedulers and workers run the user image, the
same environment as the notebooks.
"""

from __future__ import annotations

from pangeohub.config import Config
from pangeohub.render.gateway import SERVICE_NAME, SERVICE_PREFIX
from pangeohub.targets.kubernetes import names
from pangeohub.targets.kubernetes.gateway import extra_config
from pangeohub.targets.kubernetes.hubvalues import shared_volumes


def _resources(cores: float, memory: int) -> dict:
    # Requests only: KubeClusterConfig's limits default to the requests, so that a worker size chosen in the
    # cluster options moves both (a limit fixed here would stay below a larger request, which the API refuses).
    return {"cores": {"request": cores}, "memory": {"request": memory}}


def gateway_values(config: Config) -> dict:
    gw = config.gateway
    k8s = config.kubernetes
    worker = _resources(gw.options.worker_cores.default, gw.options.worker_memory.default)
    # Workers see the shared folders where the notebook does, and, running as the same uid, as the same owner.
    volumes, mounts = shared_volumes(config)
    worker.update({"extraPodConfig": {"volumes": volumes}, "extraContainerConfig": {"volumeMounts": mounts}})
    return {
        # Fixed names: the hub's service URL and the notebooks' DASK_GATEWAY__PROXY_ADDRESS point at them.
        "fullnameOverride": names.gateway_fullname(config),
        "gateway": {
            "prefix": SERVICE_PREFIX,
            "image": {"name": names.image_name(config, "hub"), "tag": k8s.images.tag},
            "auth": {"type": "jupyterhub", "jupyterhub": {
                "apiUrl": names.hub_api_url(config),
                "apiTokenFromSecretName": "hub",
                "apiTokenFromSecretKey": f"hub.services.{SERVICE_NAME}.apiToken",
            }},
            "backend": {
                "image": {"name": names.image_name(config, "user"), "tag": k8s.images.tag},
                "namespace": k8s.namespace,
                "scheduler": _resources(gw.scheduler_cores, gw.scheduler_memory),
                "worker": worker,
            },
            "extraConfig": {"pangeohub": extra_config(gw, config.environments)},
        },
        # Only the hub's proxy and the notebooks (inside the cluster) talk to the gateway.
        "traefik": {"service": {"type": "ClusterIP"}},
    }
