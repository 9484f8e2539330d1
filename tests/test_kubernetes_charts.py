"""The rendered deployment against the REAL upstream charts, offline: `helm template` with the charts' own
templates and values schemas, every object against the Kubernetes API schemas (strict), the chart's own hub
config run by the JupyterHub and KubeSpawner we pin, the gateway's by dask-gateway-server's Kubernetes backend,
and the network policies evaluated against the labels of the pods they govern.
"""

import json

import pytest
import yaml

from k8s_charts import DASK_GATEWAY, JUPYTERHUB, find, load_hub, needs_charts, template, template_error, validate
from pangeohub.config import parse_config
from pangeohub.targets.kubernetes.render import render
from test_kubernetes import FIXTURES

pytestmark = needs_charts

# Every feature at once: groups on profiles, group options for Dask, shared-password logins with a file from
# a Secret, an external S3 endpoint, unenforced limits, a private hub.
EVERYTHING = """
hub: {ip: 127.0.0.1, admin_users: [ada], default_url: /tree, concurrent_spawn_limit: 20}
auth: {mode: shared, shared: {password_file: /etc/pangeohub/shared-password}, admin_groups: [staff]}
profiles:
  - {name: small, cpus: 0.5, memory: 1G}
  - {name: gpu, description: GPU box, cpus: 4, memory: 32G, groups: [gpu-team]}
limits: {enforce: false}
homes: {quota: 20G, quickstart_name: START.md}
shared: {data_link: data, scratch_link: ""}
storage:
  mode: external
  external: {endpoint_url: "https://s3.example.org", credentials_file: /etc/pangeohub/s3.json, region: eu-west-1}
gateway:
  group_options: {gpu-team: {worker_cores: {min: 1, max: 8, default: 2}}}
  limits: {cluster_max_cores: 16, cluster_max_memory: 64G, user_max_clusters: 4}
kubernetes: {storage_class: fast, shared_storage_class: nfs, service_type: NodePort,
             images: {registry: ghcr.io/example, tag: v1}}
"""

CONFIGS = {
    "defaults": "",
    "everything": EVERYTHING,
    "workshop": (FIXTURES / "kubernetes-workshop.ok.yaml").read_text(),
    "research-ldap": (FIXTURES / "kubernetes-research-ldap.ok.yaml").read_text(),
    "https-acme": (FIXTURES / "kubernetes-https.ok.yaml").read_text(),
    "https-files": "hub: {domain: hub.example.org, https: {mode: files, cert_file: /c.pem, key_file: /k.pem}}",
}


def _templated(tmp_path, text: str):
    config = parse_config(text)
    files = render(config)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    ns = config.kubernetes.namespace
    hub = template(JUPYTERHUB, config.kubernetes.hub_release, ns, tmp_path / "jupyterhub-values.yaml")
    gateway = []
    if "dask-gateway-values.yaml" in files:
        gateway = template(DASK_GATEWAY, config.kubernetes.gateway_release, ns, tmp_path / "dask-gateway-values.yaml")
    ours = [doc for doc in yaml.safe_load_all(files["manifests.yaml"]) if doc]
    return config, hub, gateway, ours


@pytest.fixture(scope="module")
def research(tmp_path_factory):
    return _templated(tmp_path_factory.mktemp("research"), CONFIGS["research-ldap"])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_charts_accept_the_values_and_every_object_is_valid(tmp_path, name):
    config, hub, gateway, ours = _templated(tmp_path, CONFIGS[name])
    assert find(hub, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        config.kubernetes.images.ref("hub")
    assert validate(hub + gateway + ours) == []


def test_the_chart_schema_refuses_a_wrong_key(tmp_path):
    # The check has teeth: a misspelt key (as a renderer bug would produce) fails `helm template`.
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"singleuser": {"storrage": {"capacity": "1Gi"}}}))
    assert "storrage" in template_error(JUPYTERHUB, values)


def test_kubernetes_validate_refuses_a_wrong_field():
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    assert validate([bad])


CASES = [
    {"id": "default", "user": "carol"},
    {"id": "standard", "user": "carol", "profile": "standard"},
    {"id": "bigmem-member", "user": "dan", "profile": "bigmem", "groups": ["bigmem-users"]},
    {"id": "bigmem-outsider", "user": "carol", "profile": "bigmem"},
    {"id": "bigmem-admin", "user": "alice", "profile": "bigmem", "admin": True},
]


@pytest.fixture(scope="module")
def hub_loaded(research, tmp_path_factory):
    _, hub, _, _ = research
    return load_hub(hub, tmp_path_factory.mktemp("hubpod"), CASES)


def test_chart_hub_config_runs_with_our_jupyterhub_and_kubespawner(hub_loaded):
    # The chart's jupyterhub_config.py and z2jh.py, our values and extraConfig: no option any class ignores.
    noise = ("Unclosed client session",)  # aiohttp, from KubeSpawner's mock mode; not configuration
    assert [w for w in hub_loaded["warnings"] if not w.startswith(noise)] == []
    assert hub_loaded["unknown_sections"] == []
    assert {"dask-gateway", "jupyterhub-idle-culler"} <= set(hub_loaded["services"])
    assert {"user", "server"} <= set(hub_loaded["roles"])


LOGIN_MODES = {
    "password": CONFIGS["workshop"],
    "shared": EVERYTHING,
    "signup": "auth: {mode: signup, signup: {max_pending: 50}}",
    "github": "auth: {mode: github, github: {client_id: abc, client_secret_file: /etc/pangeohub/github-secret, "
              "allowed_organizations: ['pangeo-data:workshop']}, admin_groups: ['pangeo-data:staff']}",
}


@pytest.mark.parametrize("mode", sorted(LOGIN_MODES))
def test_chart_hub_config_runs_for_every_login_mode(tmp_path, mode):
    # ldap: the research group above. Each mode's authenticator is made with the loaded config: a wrong type
    # or an option its class does not have fails here.
    _, hub, _, _ = _templated(tmp_path, LOGIN_MODES[mode])
    (tmp_path / "pod").mkdir()
    files = {"/etc/pangeohub/github-secret": "s3cret\n", "/etc/pangeohub/shared-password": "let-me-in\n"}
    loaded = load_hub(hub, tmp_path / "pod", [{"id": "default", "user": "carol"}], files)
    assert [w for w in loaded["warnings"] if not w.startswith("Unclosed client session")] == []
    assert loaded["unknown_sections"] == []
    assert "pod" in loaded["pods"]["default"], loaded["pods"]["default"]


@pytest.mark.parametrize("name", ["https-acme", "https-files"])
def test_https_reaches_the_charts_proxy_and_the_user_pods(tmp_path, name):
    config, hub, _, _ = _templated(tmp_path, CONFIGS[name])
    if name == "https-acme":
        # The chart's autohttps pod asks the configured CA for the domain, with the contact e-mail.
        static = yaml.safe_load(find(hub, "ConfigMap", "autohttps")["data"]["traefik.yaml"])
        acme = static["certificatesResolvers"]["default"]["acme"]
        assert acme["caServer"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
        assert acme["email"] == "ops@course.example.org"
    else:
        proxy = find(hub, "Deployment", "proxy")["spec"]["template"]["spec"]
        assert {"secretName": "pangeohub-https"} == proxy["volumes"][0]["secret"]
        assert "--ssl-cert=/etc/chp/tls/tls.crt" in proxy["containers"][0]["command"]
    (tmp_path / "pod").mkdir()
    loaded = load_hub(hub, tmp_path / "pod", [{"id": "default", "user": "carol"}])
    assert [w for w in loaded["warnings"] if not w.startswith("Unclosed client session")] == []
    env = {e["name"]: e.get("value") for e in _container(loaded, "default")["env"]}
    assert env["DASK_GATEWAY__PUBLIC_ADDRESS"] == f"https://{config.hub.domain}/services/dask-gateway/"


def _container(hub_loaded, case):
    pod = hub_loaded["pods"][case]
    assert "pod" in pod, pod.get("error")
    return pod["pod"]["spec"]["containers"][0]


def test_each_profile_reaches_the_user_pod_spec(hub_loaded):
    standard = _container(hub_loaded, "standard")["resources"]
    assert standard == {"limits": {"cpu": 2.0, "memory": 8 * 2**30}, "requests": {"cpu": 2.0, "memory": 8 * 2**30}}
    big = _container(hub_loaded, "bigmem-member")["resources"]
    assert big["limits"] == {"cpu": 8.0, "memory": 64 * 2**30}
    # The first profile open to a person is their default, as on one machine.
    assert _container(hub_loaded, "default")["resources"] == standard


def test_group_limited_profiles_follow_the_same_rule_as_on_one_machine(hub_loaded):
    assert "bigmem" in hub_loaded["pods"]["bigmem-outsider"]["error"]
    assert _container(hub_loaded, "bigmem-admin")["resources"]["limits"]["memory"] == 64 * 2**30


def test_user_pods_have_home_shared_folders_and_gateway_variables(hub_loaded):
    container = _container(hub_loaded, "standard")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/home/jovyan/shared"]["readOnly"] is True
    assert mounts["/home/jovyan/scratch"].get("readOnly") is False
    assert "/home/jovyan" in mounts
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-dask-gateway.climate:80"
    assert container["image"] == "pangeohub-user:0.1.0"


def test_user_pods_are_valid_pods(hub_loaded):
    pods = [p["pod"] for p in hub_loaded["pods"].values() if "pod" in p]
    for pod in pods:
        pod.setdefault("apiVersion", "v1")
        pod.setdefault("kind", "Pod")
    assert validate(pods) == []


def _gateway_config(gateway, tmp_path):
    path = tmp_path / "dask_gateway_config.py"
    path.write_text(find(gateway, "ConfigMap", "api-dask-gateway")["data"]["dask_gateway_config.py"])
    return path


def test_gateway_config_runs_with_the_kubernetes_backend_and_our_limits(research, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    config, _, gateway, _ = research
    cases = [{"id": "plain"}, {"id": "wide", "options": {"worker_memory": "32G"}},
             {"id": "wide-member", "groups": ["bigmem-users"], "options": {"worker_memory": "32G"}}]
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "k8s_load_gateway.py"),
                           str(_gateway_config(gateway, tmp_path)), json.dumps(cases)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["warnings"] == []
    assert loaded["backend_class"] == "pangeohub.targets.kubernetes.gateway.PangeoKubeBackend"
    # Per-user limits reach the backend; per-cluster ones upstream's cluster config.
    assert loaded["limits"] == config.gateway.limits.model_dump(mode="json")
    plain = loaded["clusters"]["plain"]["config"]
    assert plain["cluster_max_workers"] == 20
    assert plain["worker_cores"] == 2 and plain["worker_memory"] == 4 * 2**30
    assert plain["worker_memory_limit"] == plain["worker_memory"] and plain["namespace"] == "climate"
    assert plain["image"] == "pangeohub-user:0.1.0"  # the notebooks' image
    assert "worker_memory" in loaded["clusters"]["wide"]["error"]
    wide = loaded["clusters"]["wide-member"]["config"]
    assert wide["worker_memory"] == wide["worker_memory_limit"] == 32 * 2**30


# -- network policies, evaluated --------------------------------------------------------------------------


def _matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, labels: dict) -> bool:
    # Same namespace only. A peer that is an address block or another namespace could still be this pod: count
    # it as a match, so that "cannot reach" below is never a false comfort.
    if "ipBlock" in peer or peer.get("namespaceSelector"):
        return True
    return _matches(peer.get("podSelector") or {}, labels)


def _port_matches(rule: dict, port: int | None) -> bool:
    if port is None or not rule.get("ports"):
        return True
    # A named port ('http') stands for a container port we do not resolve: count it as a match (see above).
    return any(p.get("port") == port or isinstance(p.get("port"), str) for p in rule["ports"])


def _allowed(policies, pod: dict, peer: dict, direction: str, port: int | None) -> bool:
    kind, rules_key, peers_key = \
        ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    governing = [p for p in policies if _matches(p["spec"]["podSelector"], pod)
                 and kind in p["spec"].get("policyTypes", ["Ingress"])]
    if not governing:
        return True
    for policy in governing:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, peer) for p in peers)) and _port_matches(rule, port):
                return True
    return False


def reachable(policies, source: dict, target: dict, port: int | None = None) -> bool:
    return _allowed(policies, source, target, "out", port) and _allowed(policies, target, source, "in", port)


def test_network_policies_keep_people_apart(research, hub_loaded):
    from dask_gateway_server.backends.kubernetes.controller import KubeController

    config, hub, gateway, ours = research
    policies = [o for o in hub + gateway + ours if o["kind"] == "NetworkPolicy"]
    alice = hub_loaded["pods"]["standard"]["pod"]["metadata"]["labels"]
    bob = hub_loaded["pods"]["bigmem-member"]["pod"]["metadata"]["labels"]
    assert alice["hub.jupyter.org/username"] != bob["hub.jupyter.org/username"]
    hub_pod = find(hub, "Deployment", "hub")["spec"]["template"]["metadata"]["labels"]
    proxy_pod = find(hub, "Deployment", "proxy")["spec"]["template"]["metadata"]["labels"]
    traefik = find(gateway, "Deployment", "traefik-dask-gateway")["spec"]["template"]["metadata"]["labels"]
    gateway_api = find(gateway, "Deployment", "api-dask-gateway")["spec"]["template"]["metadata"]["labels"]
    # Labels the gateway's controller gives a cluster's pods (its own code, with the rendered instance name).
    controller = KubeController(gateway_instance="dask-gateway")
    scheduler = controller.get_labels("bobs-cluster", "dask-scheduler")
    worker = controller.get_labels("bobs-cluster", "dask-worker")
    store = next(o for o in ours if o["kind"] == "StatefulSet")["spec"]["template"]["metadata"]["labels"]

    assert not reachable(policies, alice, bob), "a user pod reaches another person's server"
    assert not reachable(policies, alice, scheduler), "a user pod reaches another person's Dask scheduler"
    assert not reachable(policies, alice, worker), "a user pod reaches another person's Dask worker"
    # What must keep working:
    assert reachable(policies, proxy_pod, alice) and reachable(policies, hub_pod, alice)
    assert reachable(policies, alice, traefik), "notebooks reach their schedulers through the gateway's traefik"
    assert reachable(policies, traefik, scheduler)
    # Dask pods reach each other only through their cluster's own policy, made with the cluster by the gateway
    # (test_kubernetes_isolation): the static ones must not let another cluster's worker in.
    assert not reachable(policies, controller.get_labels("alices-cluster", "dask-worker"), scheduler)
    ports = config.storage.ports
    assert reachable(policies, alice, store, config.storage.port)  # S3, with signed requests
    for port in (ports.master, ports.master_grpc, ports.filer, ports.filer_grpc):
        assert not reachable(policies, alice, store, port), f"a user pod reaches the store's identities ({port})"
        assert reachable(policies, hub_pod, store, port)  # the hub makes each person's key
    assert reachable(policies, gateway_api, hub_pod, 8081)  # the gateway checks tokens with the hub
    assert reachable(policies, proxy_pod, traefik)  # /services/dask-gateway/ through the hub's proxy
