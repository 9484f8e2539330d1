"""Per-user Dask limits in the gateway's Kubernetes backend (PangeoKubeBackend), with the gateway's own cluster
records (what its informer keeps of the DaskCluster objects) and no API server: a request that breaks a limit
is refused before anything would be created in the cluster."""

import asyncio
from types import SimpleNamespace

import pytest
from dask_gateway_server import models
from dask_gateway_server.backends.base import PublicException

from pangeohub.config import parse_config
from pangeohub.targets.kubernetes.gateway import PangeoKubeBackend

CONFIG = parse_config("gateway: {limits: {user_max_clusters: 2, user_max_cores: 4, user_max_memory: 8G}}")
ALICE = SimpleNamespace(name="alice", groups=set())


@pytest.fixture
def backend():
    gateway = PangeoKubeBackend(settings=CONFIG.gateway.model_dump(mode="json"), gateway_instance="dask-gateway")
    gateway.clusters, gateway.username_to_clusters = {}, {}
    return gateway


def _running(backend, name: str, workers: int = 0):
    _, config = asyncio.run(backend.process_cluster_options(ALICE, {}))
    cluster = models.Cluster(name=name, username="alice", token="", options={}, config=config.to_dict(),
                             status=models.ClusterStatus.RUNNING)
    backend.clusters[name] = cluster
    backend.username_to_clusters.setdefault("alice", {})[name] = cluster
    backend.requested[name] = workers
    return cluster


def test_a_cluster_past_the_per_user_count_is_refused(backend):
    _running(backend, "ns.one")
    _running(backend, "ns.two")
    with pytest.raises(PublicException, match="user_max_clusters"):
        asyncio.run(backend.start_cluster(ALICE, {}))


def test_scaling_past_the_per_user_cores_is_refused_with_what_fits(backend):
    first = _running(backend, "ns.one", workers=2)  # 1 scheduler core + 2 workers of 1 core
    second = _running(backend, "ns.two")
    with pytest.raises(PublicException, match=r"at most 0 workers fit"):
        asyncio.run(backend.forward_message_to_scheduler(second, {"op": "scale", "count": 1}))
    assert backend.requested[first.name] == 2


def test_heartbeats_are_clamped_to_what_the_user_may_still_use(backend):
    _running(backend, "ns.one", workers=2)
    second = _running(backend, "ns.two")
    allowed, why = asyncio.run(backend._allowed(second))
    assert allowed == 0 and "user_max_cores" in why


def test_hub_services_cannot_start_clusters(backend):
    with pytest.raises(PublicException, match="not a hub user"):
        asyncio.run(backend.start_cluster(SimpleNamespace(name="service:x", groups=set()), {}))
