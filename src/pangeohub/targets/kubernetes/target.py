"""KubernetesTarget: what the platform asks of an execution target, answered for a cluster.

The same questions the local target answers (the config problems it finds, the services to supervise, the
spawner and gateway backend classes, the addresses a person's server sees); for a cluster the services are the
charts' pods, so there is nothing to start on this machine.
"""

from __future__ import annotations

from pangeohub.config import Config
from pangeohub.errors import PangeoError
from pangeohub.targets.base import Addresses, Target
from pangeohub.targets.kubernetes import mapping, names
from pangeohub.targets.kubernetes.hubvalues import SPAWNER_CLASS, gateway_client_env

GATEWAY_BACKEND_CLASS = "pangeohub.targets.kubernetes.gateway.PangeoKubeBackend"


class KubernetesTarget(Target):
    name = "kubernetes"
    spawner_class = SPAWNER_CLASS
    gateway_backend_class = GATEWAY_BACKEND_CLASS

    def problems(self) -> list[str]:
        """Options of the config that cannot be carried to a cluster, one line each."""
        return mapping.refusals(self.config)

    def services(self, runtime) -> list:
        raise PangeoError(
            "this config's target is kubernetes: nothing runs on this machine",
            "render the deployment with `pangeohub render kubernetes --out DIR` and apply it with "
            "`pangeohub deploy kubernetes` (see docs/kubernetes.md)",
        )

    def addresses(self) -> Addresses:
        """The chart's Services, as a person's pod reaches them inside the namespace."""
        env = self.client_env()
        return Addresses(
            hub_api=f"http://hub.{self.config.kubernetes.namespace}:8081/hub/api",
            s3_endpoint=env.get("AWS_ENDPOINT_URL_S3", ""),
            gateway=env.get("DASK_GATEWAY__ADDRESS", ""),
            gateway_proxy=env.get("DASK_GATEWAY__PROXY_ADDRESS", ""),
        )

    def client_env(self) -> dict[str, str]:
        """What a person's server is told: the gateway (as daskhub wires it) and the object store."""
        env = gateway_client_env(self.config) if self.config.gateway.enabled else {}
        if self.config.storage.mode == "embedded":
            env["AWS_ENDPOINT_URL_S3"] = names.objectstore_endpoint(self.config)
        return env
