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


def test_a_cluster_runs_the_environment_its_kernel_names_from_the_image(tmp_path):
    """The kernel of a named environment fills in the `environment` option (pangeohub.envs.dask): scheduler
    and workers run that environment's Python, found where build-images built it (here: tmp_path)."""
    config = parse_config("environments: [{name: ocean, packages: [xgcm], groups: [ocean]}]")
    envs = [spec.model_dump(mode="json") for spec in config.environments]
    version = tmp_path / "envs/ocean/1"
    version.mkdir(parents=True)
    (version / "build.json").write_text("{}")
    (tmp_path / "envs/ocean/current").symlink_to("1")
    gateway = PangeoKubeBackend(settings=CONFIG.gateway.model_dump(mode="json"), environments=envs,
                                install_dir=str(tmp_path), gateway_instance="dask-gateway")
    sailor = SimpleNamespace(name="sailor", groups={"ocean"})
    _, chosen = asyncio.run(gateway.process_cluster_options(sailor, {"environment": "ocean"}))
    python = str(tmp_path / "envs/ocean/current/bin/python")
    assert chosen.scheduler_cmd == [python, "-m", "dask", "scheduler"]
    assert chosen.worker_cmd == [python, "-m", "dask", "worker"]
    _, default = asyncio.run(gateway.process_cluster_options(sailor, {}))
    assert default.worker_cmd != chosen.worker_cmd  # no environment: the image's default stack
    with pytest.raises(Exception, match="limited to other groups; you may use: default"):
        asyncio.run(gateway.process_cluster_options(ALICE, {"environment": "ocean"}))


def test_without_environments_the_option_names_none(backend):
    with pytest.raises(Exception, match="named environments are not available"):
        asyncio.run(backend.process_cluster_options(ALICE, {"environment": "ocean"}))
