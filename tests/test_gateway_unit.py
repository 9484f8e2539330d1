"""Gateway pieces that need no running platform: the chown('/') fix, limits arithmetic, options, config, render."""

import os
import pwd
import subprocess
import types
from pathlib import Path

import pytest
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import LocalBackend

from pangeohub.config import Config
from pangeohub.config.gateway import GatewayLimits, GatewaySection
from pangeohub.gateway import limits
from pangeohub.gateway.options import build_options
from pangeohub.gateway.userenv import allowed
from pangeohub.paths import StatePaths
from pangeohub.render.gateway import ACCESS_SCOPE, GatewayUrls, render_gateway_config
from pangeohub.render.hub import HubSecrets, render_hub_config
from pangeohub.targets.local.gateway import PangeoBackend

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def _cluster(name="c0ffee"):
    return types.SimpleNamespace(name=name, username="alice", tls_cert=b"CERT", tls_key=b"KEY", state={})


@pytest.fixture
def account(tmp_path):
    """A throw-away Linux account made like pangeohub makes them (GECOS mark), removed afterwards."""
    prefix = f"gu{os.getpid() % 10000}-"
    name = prefix + "alice"
    subprocess.run(["useradd", "--no-create-home", "--comment", "pangeohub alice", name], check=True)
    try:
        yield prefix, pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


def test_upstream_local_backend_chowns_the_root_directory(tmp_path, monkeypatch):
    """The trap, recorded without harming the machine: upstream asks to chown '/' (and single characters)."""
    calls = []
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: calls.append(path))
    backend = LocalBackend(clusters_directory=str(tmp_path))
    monkeypatch.setattr("dask_gateway_server.backends.local.getpwnam",
                        lambda name: types.SimpleNamespace(pw_uid=12345, pw_gid=12345))
    backend.setup_working_directory(_cluster())
    assert "/" in calls


@needs_root
def test_working_directory_changes_owner_of_nothing_outside_it(tmp_path, account):
    prefix, entry = account
    clusters = tmp_path / "clusters"
    clusters.mkdir()
    watched = [Path("/"), tmp_path, clusters, Path.cwd()]
    before = {p: (p.stat().st_uid, p.stat().st_gid) for p in watched}
    backend = PangeoBackend(clusters_directory=str(clusters), settings={"users": {"system_prefix": prefix}})
    workdir = Path(backend.setup_working_directory(_cluster()))
    assert {p: (p.stat().st_uid, p.stat().st_gid) for p in watched} == before
    owned = [workdir, *workdir.rglob("*")]
    assert {p.name for p in owned} >= {"c0ffee", ".certs", "logs", "tmp", "dask.crt", "dask.pem"}
    for path in owned:
        assert (path.stat().st_uid, path.stat().st_gid) == (entry.pw_uid, entry.pw_gid), path
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


@needs_root
def test_working_directory_refuses_an_existing_directory(tmp_path, account):
    prefix, _ = account
    (tmp_path / "c0ffee").mkdir()
    backend = PangeoBackend(clusters_directory=str(tmp_path), settings={"users": {"system_prefix": prefix}})
    with pytest.raises(FileExistsError):
        backend.setup_working_directory(_cluster())


def test_accounts_not_made_by_pangeohub_never_run_clusters():
    backend = PangeoBackend(settings={"users": {"system_prefix": ""}})
    with pytest.raises(PublicException, match="not an account pangeohub created"):
        backend.account("root")
    with pytest.raises(PublicException, match="not a hub user"):
        backend.account("service:culler")


def _record(name, workers, cores=1, memory=2**30, active=True):
    config = {"scheduler_cores": 1, "scheduler_memory": 2**30, "worker_cores": cores, "worker_memory": memory}
    return types.SimpleNamespace(name=name, count=workers, config=config, active_workers=lambda: [],
                                 is_active=lambda: active)


def test_per_user_totals_count_every_active_cluster():
    clusters = [_record("a", 2), _record("b", 0), _record("gone", 5, active=False)]
    used = limits.usage(clusters)
    assert (used.clusters, used.cores, used.memory) == (2, 4, 4 * 2**30)
    caps = GatewayLimits(user_max_clusters=2, user_max_cores=6, user_max_memory="8G")
    with pytest.raises(PublicException, match="you have 2 running and the limit is 2 per user"):
        limits.check_new_cluster(caps, used, clusters[0].config)
    fits, why = limits.allowed_workers(caps, limits.usage(clusters, exclude="b"), clusters[1].config)
    assert fits == 2 and "6 cores per user" in why
    message = str(limits.scale_refusal(5, fits, why, "b"))
    assert "to 5 workers" in message and "at most 2 workers" in message and "gateway.limits.user_max_cores" in message


def test_memory_total_limits_when_cores_do_not():
    caps = GatewayLimits(user_max_clusters=None, user_max_cores=None, user_max_memory="3G")
    fits, why = limits.allowed_workers(caps, limits.Usage(), _record("x", 0).config)
    assert fits == 2 and "3G per user" in why


def test_group_ranges_widen_options_for_members():
    gw = GatewaySection(group_options={"big": {"worker_cores": {"max": 4}, "worker_memory": {"max": "8G"}}})
    plain = {f.field: f for f in build_options(gw, []).fields}
    big = {f.field: f for f in build_options(gw, ["big", "other"]).fields}
    assert plain["worker_cores"].max == 2 and big["worker_cores"].max == 4
    assert "8G" in big["worker_memory"].options and "8G" not in plain["worker_memory"].options
    config = build_options(gw, []).get_configuration({"worker_cores": 2, "worker_memory": "2G"}, None)
    assert config == {"worker_cores": 2, "worker_memory": 2 * 2**30}


@pytest.mark.parametrize("section, words", [
    ({"options": {"worker_cores": {"min": 2, "default": 1}}}, "min <= default <= max"),
    ({"limits": {"user_max_cores": 1}}, "no cluster could ever run"),
    ({"limits": {"user_max_memory": "1G"}}, "user_max_memory is 1G"),
    ({"idle_timeout": "soon"}, "not a duration"),
    ({"api_port": 8000}, "both 8000"),
])
def test_bad_gateway_config_is_refused_with_the_reason(section, words):
    with pytest.raises(ValueError, match=words):
        Config.model_validate({"gateway": section})


def test_forwarded_environment_is_allow_listed():
    patterns = GatewaySection().forward_env
    assert allowed("PANGEO_SCRATCH", patterns) and allowed("AWS_SECRET_ACCESS_KEY", patterns)
    assert not allowed("LD_PRELOAD", patterns) and not allowed("PYTHONPATH", patterns)


def test_hub_gets_the_gateway_service_scopes_and_culler():
    config = Config.model_validate({"gateway": {"server_idle_timeout": "1h"}})
    hub = render_hub_config(config, StatePaths(Path("/s")), HubSecrets("admin", gateway_token="gw"))["JupyterHub"]
    services = {s["name"]: s for s in hub["services"]}
    assert services["dask-gateway"]["url"] == "http://127.0.0.1:8003"
    assert services["dask-gateway"]["api_token"] == "gw"
    assert "--timeout=3600" in services["idle-culler"]["command"]
    roles = {r["name"]: r for r in hub["load_roles"]}
    assert ACCESS_SCOPE in roles["server"]["scopes"] and ACCESS_SCOPE in roles["user"]["scopes"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]


def test_disabled_gateway_renders_no_service():
    config = Config.model_validate({"gateway": {"enabled": False, "server_idle_timeout": 0}})
    hub = render_hub_config(config, StatePaths(Path("/s")), HubSecrets("admin"))["JupyterHub"]
    names = [s["name"] for s in hub["services"]]
    assert "dask-gateway" not in names and "idle-culler" not in names


def test_gateway_config_uses_dask_subcommands_and_limits():
    config = Config.model_validate({"install_dir": "/opt/x", "gateway": {"limits": {"cluster_max_cores": 5}}})
    rendered = render_gateway_config(config, StatePaths(Path("/s")), GatewayUrls("http://h/hub/api", "http://p/"))
    cluster = rendered["ClusterConfig"]
    assert cluster["scheduler_cmd"] == ["/opt/x/bin/dask", "scheduler"]
    assert cluster["worker_cmd"] == ["/opt/x/bin/dask", "worker"]
    assert cluster["idle_timeout"] == 1800 and cluster["cluster_max_cores"] == 5
    assert rendered["PangeoBackend"]["clusters_directory"] == "/s/gateway/clusters"


def test_config_validate_names_the_bad_gateway_field(tmp_path):
    from harness import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway:\n  options:\n    worker_memory: {min: 2G, default: 1G}\n")
    proc = cli("config", "validate", config=bad, check=False)
    assert proc.returncode == 2
    assert "gateway.options.worker_memory" in proc.stderr and "min=2G default=1G max=4G" in proc.stderr
    good = tmp_path / "good.yaml"
    good.write_text("gateway:\n  idle_timeout: 45m\n  group_options: {big: {worker_cores: {max: 4}}}\n")
    assert cli("config", "validate", config=good).returncode == 0


def test_idle_culler_dies_with_the_hub_that_started_it():
    """A hub killed with SIGKILL must not leave its managed culler polling a dead API forever."""
    import signal
    import sys
    import time

    import psutil

    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, '-m', "
         "'pangeohub.gateway.culler', '--timeout=60', '--cull-every=5']); time.sleep(600)"],
        env={**os.environ, "JUPYTERHUB_API_TOKEN": "x", "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"})
    children = []
    try:
        deadline = time.monotonic() + 30
        while not children and time.monotonic() < deadline:
            children = psutil.Process(parent.pid).children()
            time.sleep(0.2)
        assert children, "the culler did not start"
        culler = children[0]
        time.sleep(2)  # let it get past start-up and into its polling loop
        assert culler.is_running()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone, alive = psutil.wait_procs([culler], timeout=20)
        assert gone and not alive, "the culler outlived its hub"
    finally:
        parent.kill()
        for child in children:
            if child.is_running():
                child.kill()
