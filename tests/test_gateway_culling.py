"""Idle things stop by themselves: Dask clusters after gateway.idle_timeout, notebook servers after
gateway.server_idle_timeout (jupyterhub-idle-culler). Short timeouts here; the defaults are 30 min and 1 h."""

import json

import pytest

from harness import Platform
from pangeohub.hubapi import HubAPI
from test_gateway import START_PERSISTENT, cluster_names, last_json, run, wait_for

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def short():
    hub = Platform(extra={"gateway": {"idle_timeout": "20s", "server_idle_timeout": "45s",
                                      "stop_with_server_period": "2s"}})
    try:
        hub.up()
        hub.sleepy = hub.started_user()  # its idle clock runs while the first test does
        yield hub
    finally:
        hub.close()


def has_server(platform, name) -> bool:
    model = HubAPI(platform.rt).user(name)
    return bool(model and model.get("servers"))


def test_idle_cluster_shuts_down_while_its_server_keeps_running(short):
    name, token = short.started_user()
    cluster = last_json(run(short, name, token, START_PERSISTENT))["name"]
    assert cluster in cluster_names(short)
    wait_for(lambda: cluster not in cluster_names(short), timeout=45, what="idle cluster shutdown")
    assert has_server(short, name), "the cluster stopped because the server was culled, not for being idle"


def test_idle_notebook_server_is_culled(short):
    name, _ = short.sleepy
    assert json.loads(short.cli("clusters", "list", "--json").stdout) == []
    wait_for(lambda: not has_server(short, name), timeout=150, what="idle server to be culled")
    assert HubAPI(short.rt).user(name) is not None, "culling stops the server, it does not remove the user"
