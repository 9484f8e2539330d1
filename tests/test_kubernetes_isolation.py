"""People kept apart on Kubernetes, evaluated on the objects the real code makes (no API server runs here):
each person's own non-root uid, stable across hub restarts and never reused; the same uid on their Dask pods
(as the gateway's own controller builds them); a sticky-bit shared scratch; and each Dask cluster's own
NetworkPolicy, evaluated against the labels of the pods it must admit or keep out."""

import asyncio
import copy
import logging
from types import SimpleNamespace

import pytest
from dask_gateway_server.backends.kubernetes.controller import KubeController
from dask_gateway_server.utils import FrozenAttrDict
from kubernetes_asyncio.client.rest import ApiException

from k8s_charts import find, load_hub, needs_charts
from pangeohub.config import parse_config
from pangeohub.errors import PangeoError
from pangeohub.targets.kubernetes import isolation, names
from pangeohub.targets.kubernetes.gateway import PangeoKubeBackend
from pangeohub.targets.kubernetes.spawner import PangeoKubeSpawner
from pangeohub.targets.kubernetes.uids import UidRegistry
from test_kubernetes_charts import CONFIGS, _templated, reachable

ALICE = [{"id": "alice", "user": "alice", "hub_id": 1}, {"id": "bob", "user": "bob", "hub_id": 2}]


def test_uids_are_stable_and_never_given_twice(tmp_path):
    path = tmp_path / "uids.json"
    first = UidRegistry(path, 100000)
    assert (first.uid("alice", 1), first.uid("bob", 2)) == (100001, 100002)
    # A restarted hub reads the record: the same uids, whatever the order.
    again = UidRegistry(path, 100000)
    assert (again.uid("bob", 2), again.uid("alice", 1)) == (100002, 100001)
    # bob deleted, and SQLite hands his hub id to carol: she must not get bob's uid (his files).
    assert again.uid("carol", 2) == 100003
    assert again.uid("dan", 3) == 100004  # 100003 is carol's
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_damaged_uid_record_stops_starts_rather_than_guessing(tmp_path):
    path = tmp_path / "uids.json"
    path.write_text("{not json")
    with pytest.raises(PangeoError, match="not a pangeohub uid record"):
        UidRegistry(path, 100000).uid("alice", 1)


@pytest.fixture(scope="module")
def research(tmp_path_factory):
    return _templated(tmp_path_factory.mktemp("research-iso"), CONFIGS["research-ldap"])


@pytest.fixture(scope="module")
def pods(research, tmp_path_factory):
    """Pods the chart's hub config builds for alice and bob, then again after a hub restart (the same volume)."""
    _, hub, _, _ = research
    root = tmp_path_factory.mktemp("hubpod-iso")
    before = load_hub(hub, root, ALICE)
    after = load_hub(hub, root, list(reversed(ALICE)))
    return before["pods"], after["pods"]


def _uid(pod: dict) -> int:
    return pod["spec"]["containers"][0]["securityContext"]["runAsUser"]


@needs_charts
def test_each_person_runs_as_their_own_non_root_uid_across_restarts(pods):
    before, after = pods
    alice, bob = before["alice"]["pod"], before["bob"]["pod"]
    assert _uid(alice) != _uid(bob) and min(_uid(alice), _uid(bob)) >= 100000
    assert (_uid(after["alice"]["pod"]), _uid(after["bob"]["pod"])) == (_uid(alice), _uid(bob))
    for pod in (alice, bob):
        ctx = pod["spec"]["containers"][0]["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["runAsGroup"] == _uid(pod)
        # No pod fsGroup: the kubelet would apply it to the shared scratch volume's whole tree.
        assert "fsGroup" not in (pod["spec"].get("securityContext") or {})
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["HOME"] == "/home/jovyan"


@needs_charts
def test_the_home_volume_becomes_its_owner_and_scratch_a_sticky_directory(pods):
    before, _ = pods
    pod = before["alice"]["pod"]
    uid = _uid(pod)
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == isolation.OWNER_INIT)
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    home = volumes[mounts[isolation.HOME_IN_INIT]]["persistentVolumeClaim"]["claimName"]
    assert home == before["alice"]["pvc"]["metadata"]["name"]  # alice's own home volume
    assert volumes[mounts[isolation.SCRATCH_IN_INIT]]["persistentVolumeClaim"]["claimName"] == \
        "pangeohub-shared-scratch"
    assert init["command"][-3:] == [str(uid), isolation.HOME_IN_INIT, isolation.SCRATCH_IN_INIT]
    # Only the capabilities to change owners and modes; nothing to escalate with.
    ctx = init["securityContext"]
    assert ctx["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_READ_SEARCH"]}
    assert ctx["allowPrivilegeEscalation"] is False
    # The hub records the uid on the home volume, for the gateway.
    assert before["alice"]["pvc"]["metadata"]["annotations"][isolation.UID_ANNOTATION] == str(uid)


def test_the_owner_script_makes_the_home_private_and_scratch_sticky(tmp_path):
    # The init container's script, run for real as this (root) test process on a directory tree.
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("chown to another uid needs root")
    home, scratch = tmp_path / "home", tmp_path / "scratch"
    (home / "old").mkdir(parents=True)
    (home / "old" / "notes.txt").write_text("x")
    os.chown(home, 1000, 100)
    scratch.mkdir(mode=0o777)
    os.chown(scratch, 1000, 100)
    subprocess.run(["sh", "-c", isolation.OWNER_SCRIPT, "sh", "100007", str(home), str(scratch)], check=True)
    assert (home.stat().st_uid, (home / "old" / "notes.txt").stat().st_uid) == (100007, 100007)
    assert home.stat().st_mode & 0o777 == 0o700
    assert (scratch.stat().st_uid, oct(scratch.stat().st_mode & 0o7777)) == (0, "0o1777")


# -- the gateway: Dask pods as their owner, and one policy per cluster ------------------------------------


class _Api:
    """What PangeoKubeBackend asks of the API server, answered from the objects the hub's spawner made."""

    def __init__(self, claims):
        self.claims, self.created, self.policies, self.patched = claims, [], [], []

    async def create_namespaced_network_policy(self, namespace, body):
        self.policies.append(body)

    async def list_namespaced_persistent_volume_claim(self, namespace, label_selector):
        wanted = dict(pair.split("=") for pair in label_selector.split(","))
        items = [SimpleNamespace(metadata=SimpleNamespace(annotations=c["metadata"].get("annotations")))
                 for c in self.claims if all(c["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return SimpleNamespace(items=items)

    async def create_namespaced_custom_object(self, group, version, namespace, plural, obj):
        self.created.append({**obj, "metadata": {**obj["metadata"], "namespace": namespace, "uid": "u-1"}})

    async def patch_namespaced_custom_object(self, group, version, namespace, plural, name, patch):
        self.patched.append((name, patch))

    async def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return next(o for o in self.created if o["metadata"]["name"] == name)


def _backend(pods, gateway_objects=None, tmp_path=None):
    before, _ = pods
    config = parse_config(CONFIGS["research-ldap"])
    if gateway_objects is None:
        backend = PangeoKubeBackend(settings=config.gateway.model_dump(mode="json"),
                                    gateway_instance="dask-gateway")
    else:
        # The dask-gateway chart's own config (its ConfigMap), as the gateway pod loads it.
        from traitlets.config.loader import PyFileConfigLoader

        path = tmp_path / "dask_gateway_config.py"
        path.write_text(find(gateway_objects, "ConfigMap", "api-dask-gateway")["data"]["dask_gateway_config.py"])
        loaded = PyFileConfigLoader(path.name, path=str(tmp_path)).load_config()
        backend = PangeoKubeBackend(config=loaded, gateway_instance="dask-gateway")
    backend.clusters, backend.username_to_clusters = {}, {}
    api = _Api([before[p]["pvc"] for p in ("alice", "bob")])
    backend.core_client = backend.custom_client = backend.networking_client = api
    return backend, api


@needs_charts
def test_a_persons_dask_pods_run_as_their_uid(pods):
    backend, _ = _backend(pods)
    _, config = asyncio.run(backend.process_cluster_options(SimpleNamespace(name="bob", groups=set()), {}))
    controller = KubeController(gateway_instance="dask-gateway")
    for worker in (False, True):
        pod = controller.make_pod("climate", "c1", FrozenAttrDict(config.to_dict()), is_worker=worker)
        ctx = pod["spec"]["containers"][0]["securityContext"]
        assert ctx["runAsUser"] == _uid(pods[0]["bob"]["pod"]) and ctx["runAsNonRoot"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert pod["spec"]["securityContext"]["runAsUser"] == ctx["runAsUser"]
        # Labelled with their owner as the server's pod is: `usage report --prometheus` joins on it.
        assert pod["metadata"]["labels"]["hub.jupyter.org/username"] == "bob"
        assert pod["metadata"]["labels"]["gateway.dask.org/cluster"] == "c1"


@needs_charts
def test_workers_see_the_shared_folders_where_the_notebook_does_as_the_same_owner(research, pods, tmp_path):
    _, _, gateway, _ = research
    backend, _ = _backend(pods, gateway, tmp_path)
    _, config = asyncio.run(backend.process_cluster_options(SimpleNamespace(name="bob", groups=set()), {}))
    worker = KubeController(gateway_instance="dask-gateway").make_pod(
        "climate", "c1", FrozenAttrDict(config.to_dict()), is_worker=True)
    notebook = pods[0]["bob"]["pod"]

    def shared(pod):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                  if "persistentVolumeClaim" in v}
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        return {m["mountPath"]: (claims[m["name"]], bool(m.get("readOnly")))
                for m in mounts if claims.get(m["name"], "").startswith("pangeohub-")}

    assert shared(worker) == shared(notebook) and len(shared(worker)) == 2
    assert worker["spec"]["containers"][0]["securityContext"]["runAsUser"] == _uid(notebook)
    # The controller's own credentials volume is kept beside ours.
    assert "dask-credentials" in {v["name"] for v in worker["spec"]["volumes"]}


@needs_charts
def test_no_cluster_without_a_uid_from_the_hub(pods):
    backend, _ = _backend(pods)
    with pytest.raises(Exception, match="start your notebook server once"):
        asyncio.run(backend.process_cluster_options(SimpleNamespace(name="eve", groups=set()), {}))


@needs_charts
def test_each_cluster_admits_only_its_own_pods_the_gateway_and_its_owner(research, pods):
    config, hub, gateway, ours = research
    before, _ = pods
    backend, api = _backend(pods)

    async def start(name):
        cluster = await backend.start_cluster(SimpleNamespace(name=name, groups=set()), {})
        return cluster.split(".")[1], api.policies[-1]

    bob_cluster, bob_policy = asyncio.run(start("bob"))
    alice_cluster, alice_policy = asyncio.run(start("alice"))
    owner = bob_policy["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("DaskCluster", bob_cluster, "u-1")

    policies = [o for o in hub + gateway + ours if o["kind"] == "NetworkPolicy"] + [bob_policy, alice_policy]
    controller = KubeController(gateway_instance="dask-gateway")
    bob_sched = controller.get_labels(bob_cluster, "dask-scheduler")
    bob_worker = controller.get_labels(bob_cluster, "dask-worker")
    alice_worker = controller.get_labels(alice_cluster, "dask-worker")
    alice_sched = controller.get_labels(alice_cluster, "dask-scheduler")
    bob_nb = before["bob"]["pod"]["metadata"]["labels"]
    alice_nb = before["alice"]["pod"]["metadata"]["labels"]
    traefik = find(gateway, "Deployment", "traefik-dask-gateway")["spec"]["template"]["metadata"]["labels"]
    api_pod = find(gateway, "Deployment", "api-dask-gateway")["spec"]["template"]["metadata"]["labels"]

    # The attacks: another person's Dask pods and notebook.
    assert not reachable(policies, alice_worker, bob_sched), "alice's worker reaches bob's scheduler"
    assert not reachable(policies, alice_sched, bob_worker), "alice's scheduler reaches bob's worker"
    assert not reachable(policies, alice_nb, bob_sched), "alice's notebook reaches bob's scheduler"
    # What must keep working: the cluster's own pods, the gateway, and the owner (policy side).
    assert reachable(policies, bob_worker, bob_sched) and reachable(policies, bob_sched, bob_worker)
    assert reachable(policies, traefik, bob_sched) and reachable(policies, api_pod, bob_sched)
    ingress = [p for p in policies if p["spec"]["podSelector"].get("matchLabels", {}).get(
        isolation.CLUSTER_LABEL) == bob_cluster]
    from test_kubernetes_charts import _allowed
    assert _allowed(ingress, bob_sched, bob_nb, "in", None)
    assert not _allowed(ingress, bob_sched, alice_nb, "in", None)


def test_the_gateway_may_make_policies_and_read_uids_in_its_namespace_only():
    from pangeohub.targets.kubernetes.manifests import manifests

    config = parse_config("kubernetes: {namespace: climate}")
    objects = manifests(config)
    role, binding = find(objects, "Role", "pangeohub-dask-isolation"), find(objects, "RoleBinding",
                                                                            "pangeohub-dask-isolation")
    assert role["metadata"]["namespace"] == "climate"
    rules = {r["resources"][0]: set(r["verbs"]) for r in role["rules"]}
    assert rules == {"networkpolicies": {"get", "create", "delete"}, "persistentvolumeclaims": {"list"}}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "api-dask-gateway", "namespace": "climate"}]


# -- a home volume made before the uid annotation (an older render, a stock deployment moved here) -----------


@needs_charts
def test_the_hub_may_annotate_home_volumes_and_nothing_more(research):
    config, hub, _, ours = research
    role, binding = find(ours, "Role", names.HOME_OWNER_ROLE), find(ours, "RoleBinding", names.HOME_OWNER_ROLE)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["patch"]}]
    # Bound to the account the chart's hub pod runs as, in its namespace.
    account = binding["subjects"][0]
    hub_pod = find(hub, "Deployment", "hub")["spec"]["template"]["spec"]
    assert account["name"] == hub_pod["serviceAccountName"] == find(hub, "ServiceAccount", account["name"])[
        "metadata"]["name"]
    assert account["namespace"] == role["metadata"]["namespace"] == config.kubernetes.namespace  # helm's --namespace


class _Claims:
    """What the hub's spawner asks of the API server about home volumes (none can run here)."""

    def __init__(self, claims, refuse: bool = False):
        self.claims, self.refuse = {c["metadata"]["name"]: c for c in claims}, refuse

    async def patch_namespaced_persistent_volume_claim(self, name, namespace, body):
        if self.refuse:
            raise ApiException(status=403, reason="Forbidden")
        self.claims[name]["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])


def _spawner_of(pods, name: str, api, log):
    pod, pvc = pods[0][name]["pod"], pods[0][name]["pvc"]
    return SimpleNamespace(storage_pvc_ensure=True, uid=_uid(pod), pvc_name=pvc["metadata"]["name"],
                           namespace="climate", api=api, k8s_api_request_timeout=3, log=log,
                           user=SimpleNamespace(name=name))


@needs_charts
def test_a_home_volume_made_without_the_uid_gets_it_at_the_next_start(pods):
    old = copy.deepcopy(pods[0]["bob"]["pvc"])
    old["metadata"]["annotations"].pop(isolation.UID_ANNOTATION)
    backend, api = _backend(pods)
    api.claims = [old]
    person = SimpleNamespace(name="bob", groups=set())
    with pytest.raises(Exception, match="start your notebook server once"):
        asyncio.run(backend.process_cluster_options(person, {}))
    # bob starts his server: upstream finds the volume there and leaves it as it was; ours annotates it.
    asyncio.run(PangeoKubeSpawner._annotate_home(_spawner_of(pods, "bob", _Claims([old]), logging.getLogger())))
    _, config = asyncio.run(backend.process_cluster_options(person, {}))
    assert config.to_dict()["scheduler_extra_pod_config"]["securityContext"]["runAsUser"] == \
        _uid(pods[0]["bob"]["pod"])


@needs_charts
def test_a_hub_that_may_not_annotate_says_what_it_needs_and_the_server_starts(pods, caplog):
    log = logging.getLogger("hub-spawner")
    with caplog.at_level(logging.ERROR, "hub-spawner"):
        asyncio.run(PangeoKubeSpawner._annotate_home(_spawner_of(pods, "bob", _Claims([], refuse=True), log)))
    assert "Dask clusters will be refused" in caplog.text and names.HOME_OWNER_ROLE in caplog.text


@needs_charts
def test_a_cluster_whose_policy_cannot_be_made_is_stopped(pods):
    from dask_gateway_server.backends.base import PublicException

    backend, api = _backend(pods)

    async def refused(namespace, body):
        raise RuntimeError("403 Forbidden: networkpolicies")

    api.create_namespaced_network_policy = refused
    with pytest.raises(PublicException, match="could not be isolated"):
        asyncio.run(backend.start_cluster(SimpleNamespace(name="bob", groups=set()), {}))
    assert api.patched == [(api.created[0]["metadata"]["name"], [{"op": "add", "path": "/spec/active",
                                                                  "value": False}])]
