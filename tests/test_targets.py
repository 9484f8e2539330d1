"""Execution targets: the config chooses one, and what it answers reaches the hub, the gateway and the servers."""

import importlib
import pwd

import pytest
from dask_gateway_server.backends.local import LocalBackend
from jupyterhub.spawner import LocalProcessSpawner

from pangeohub.config import Config
from pangeohub.errors import PangeoError
from pangeohub.gateway.backend import PangeoBackendMixin
from pangeohub.paths import StatePaths
from pangeohub.render.gateway import GatewayUrls, gateway_client_env, render_gateway_config
from pangeohub.render.hub import HubSecrets, render_hub_config
from pangeohub.services.runtime import Runtime
from pangeohub.targets import get_target
from pangeohub.targets.local import LocalTarget


def _import(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_default_target_is_local_and_rendered_configs_name_its_classes():
    config = Config()
    target = get_target(config)
    assert isinstance(target, LocalTarget) and target.name == config.target.kind == "local"
    hub = render_hub_config(config, StatePaths(config.state_dir), HubSecrets("t"))
    gateway = render_gateway_config(config, StatePaths(config.state_dir), GatewayUrls("http://h/hub/api", "http://p/"))
    spawner = _import(hub["JupyterHub"]["spawner_class"])
    backend = _import(gateway["DaskGateway"]["backend_class"])
    assert issubclass(spawner, LocalProcessSpawner)
    # The platform's gateway rules sit above upstream's local mechanics, so they see every call first.
    assert backend.__mro__.index(PangeoBackendMixin) < backend.__mro__.index(LocalBackend)
    # The section names the rendered configs use are the final classes' names.
    assert spawner.__name__ in hub and backend.__name__ in gateway


def test_a_kind_that_is_not_registered_is_one_clear_error():
    config = Config()
    object.__setattr__(config.target, "kind", "pbs")  # what a newer config file could hold
    with pytest.raises(PangeoError, match="target kind 'pbs' is not available") as err:
        get_target(config)
    assert "local" in err.value.fix


@pytest.mark.parametrize("fast_spawn", [True, False])
def test_the_local_target_runs_the_fork_server_only_with_fast_spawn(fast_spawn):
    rt = Runtime(config=Config.model_validate({"hub": {"fast_spawn": fast_spawn}}))
    names = [s.name for s in rt.services()]
    assert ("forkserver" in names) == fast_spawn
    assert names[-1] == "hub"  # target services start before the hub, which spawns into them


def test_local_addresses_are_loopback_as_a_server_on_this_machine_sees_them():
    config = Config.model_validate({"hub": {"internal_port": 8181, "port": 8100},
                                    "gateway": {"scheduler_port": 8788}, "storage": {"port": 8333}})
    addresses = get_target(config).addresses()
    assert addresses.hub_api == "http://127.0.0.1:8181/hub/api" == Runtime(config=config).hub_api
    assert addresses.s3_endpoint == "http://127.0.0.1:8333"
    env = gateway_client_env(addresses, "https://hub.example.org/")
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8100/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://127.0.0.1:8788"
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"] == "https://hub.example.org/services/dask-gateway"


def _slurm(**slurm):
    return Config.model_validate({"target": {"kind": "slurm", "slurm": {"address": "198.18.7.1", **slurm}},
                                  "hub": {"internal_port": 8181}, "gateway": {"scheduler_port": 8788,
                                                                              "proxy_port": 8789}})


def test_slurm_addresses_are_this_machines_cluster_address_never_loopback():
    addresses = get_target(_slurm()).addresses()
    assert addresses.hub_api == "http://198.18.7.1:8181/hub/api"
    assert addresses.gateway == "http://198.18.7.1:8789"
    assert addresses.gateway_proxy == "gateway://198.18.7.1:8788"
    assert addresses.s3_endpoint.startswith("http://198.18.7.1:")
    assert "127.0.0.1" not in str(addresses)


def test_slurm_site_accounts_are_never_created_and_never_system_accounts():
    target = get_target(_slurm(accounts="site"))
    with pytest.raises(PangeoError, match="'daemon' is a system account"):
        target.account("daemon")
    with pytest.raises(PangeoError, match="there is no account 'nobody-here-xyz'") as err:
        target.account("nobody-here-xyz")
    assert "not created by pangeohub" in err.value.fix
    with pytest.raises(KeyError):
        pwd.getpwnam("nobody-here-xyz")  # and none was made
