"""Plain manifests for what the two charts do not cover (pure): shared folders, the in-cluster object store, the
network policy that keeps people's pods away from Dask schedulers and workers, and the gateway's permission to
give each cluster a policy of its own (PangeoKubeBackend, see ``isolation``).

The jupyterhub chart's own policies already keep a user pod from reaching another's server (only the hub and
the proxy may); the dask-gateway chart has none, so any pod could otherwise reach any scheduler's dashboard.
"""

from __future__ import annotations

import json

from pangeohub.config import Config
from pangeohub.targets.kubernetes import isolation, names
from pangeohub.targets.kubernetes.hubvalues import in_cluster
from pangeohub.targets.kubernetes.objectstore import ADMIN_KEY_ENV, ADMIN_SECRET_ENV, DATA
from pangeohub.targets.kubernetes.mapping import IMAGE_PREFIX

LABEL = "app.kubernetes.io/name"


def _meta(config: Config, name: str, **labels: str) -> dict:
    return {"name": name, "namespace": config.kubernetes.namespace,
            "labels": {"app.kubernetes.io/part-of": "pangeohub", **labels}}


def hub_pod_selector(config: Config) -> dict:
    """The hub pod, by the labels the jupyterhub chart gives it."""
    return {"matchLabels": {"app.kubernetes.io/component": "hub",
                            "app.kubernetes.io/instance": config.kubernetes.hub_release}}


def shared_volumes(config: Config) -> list[dict]:
    k8s = config.kubernetes
    claims = []
    for kind, size in (("data", k8s.shared_data_size), ("scratch", k8s.shared_scratch_size)):
        spec = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": names.quantity(size)}}}
        if k8s.shared_storage_class:
            spec["storageClassName"] = k8s.shared_storage_class
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                       "metadata": _meta(config, names.shared_claim(config, kind)), "spec": spec})
    return claims


def dask_policy(config: Config) -> dict:
    """Scheduler and worker pods accept connections only from the gateway's own pods (traefik, which routes
    clients and dashboards by cluster, the API server and controller). Pods of the same cluster (and its owner's
    notebook) are admitted by the cluster's own policy, which the gateway makes with it: NetworkPolicies add
    up, so this one must not admit other Dask pods."""
    instance = {"gateway.dask.org/instance": names.gateway_fullname(config)}
    gateway_pods = {"matchLabels": dict(instance), "matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": isolation.GATEWAY_COMPONENTS}]}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": _meta(config, "pangeohub-dask-clusters"),
        "spec": {
            "podSelector": {"matchLabels": dict(instance), "matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In",
                 "values": ["dask-scheduler", "dask-worker"]}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": gateway_pods}]}],
        },
    }


def _role(config: Config, name: str, account: str, rules: list[dict]) -> list[dict]:
    """A Role in the deployment's namespace and its binding to one service account."""
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(config, name),
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(config, name),
         "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": config.kubernetes.namespace}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}},
    ]


def gateway_rbac(config: Config) -> list[dict]:
    """The gateway's API server (the chart's ClusterRole gives it only DaskClusters and Secrets) may, in this
    namespace, make and remove clusters' NetworkPolicies and read the home volumes' uid annotation."""
    return _role(config, "pangeohub-dask-isolation", names.gateway_api(config), [
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
         "verbs": ["get", "create", "delete"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["list"]}])


def hub_rbac(config: Config) -> list[dict]:
    """The hub (the chart's Role lets it create and delete volume claims, not change them) may put the uid
    annotation on a person's home volume that was made without it (see PangeoKubeSpawner)."""
    return _role(config, names.HOME_OWNER_ROLE, names.hub_service_account(config), [
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["patch"]}])


def objectstore(config: Config) -> list[dict]:
    storage = config.storage
    k8s = config.kubernetes
    p = storage.ports
    labels = {LABEL: names.OBJECTSTORE}
    admin_env = [{"name": env, "valueFrom": {"secretKeyRef": {"name": names.OBJECTSTORE_SECRET, "key": key}}}
                 for env, key in ((ADMIN_KEY_ENV, "key"), (ADMIN_SECRET_ENV, "secret"))]
    env = [
        {"name": "PANGEOHUB_STORAGE", "value": json.dumps(in_cluster(config).storage.model_dump(mode="json"),
                                                          sort_keys=True)},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "GOMEMLIMIT", "value": f"{storage.memory_limit // 2**20}MiB"},
        *admin_env,
    ]
    claim = {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": names.quantity(k8s.object_store_size)}},
        **({"storageClassName": k8s.storage_class} if k8s.storage_class else {})}}
    container = {
        "name": "seaweedfs",
        "image": config.kubernetes.images.ref("hub"),
        "command": [f"{IMAGE_PREFIX}/bin/python", "-m", "pangeohub.targets.kubernetes.objectstore"],
        "env": env,
        "ports": [{"name": "s3", "containerPort": storage.port}],
        "volumeMounts": [{"name": "data", "mountPath": str(DATA)}],
        "resources": {"requests": {"memory": names.quantity(storage.memory_limit)},
                      "limits": {"memory": names.quantity(2 * storage.memory_limit)}},
        "readinessProbe": {"tcpSocket": {"port": storage.port}, "periodSeconds": 5},
    }
    internal = [("master", p.master), ("master-grpc", p.master_grpc), ("filer", p.filer),
                ("filer-grpc", p.filer_grpc)]
    return [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(config, names.OBJECTSTORE, **labels),
         "spec": {"serviceName": names.OBJECTSTORE, "replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                          "runAsNonRoot": True},
                      "containers": [container]}},
                  "volumeClaimTemplates": [claim]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(config, names.OBJECTSTORE, **labels),
         "spec": {"selector": labels, "ports": [
             {"name": "s3", "port": storage.port, "targetPort": storage.port},
             *({"name": name, "port": port, "targetPort": port} for name, port in internal)]}},
        # Signed S3 requests from anywhere in the namespace; identities (master, filer) only from the hub.
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": _meta(config, names.OBJECTSTORE),
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress"], "ingress": [
             {"ports": [{"port": storage.port, "protocol": "TCP"}]},
             {"from": [{"podSelector": hub_pod_selector(config)}],
              "ports": [{"port": port, "protocol": "TCP"} for _, port in internal]},
         ]}},
    ]


def manifests(config: Config) -> list[dict]:
    objects = shared_volumes(config)
    if config.gateway.enabled:
        objects.append(dask_policy(config))
        objects += gateway_rbac(config) + hub_rbac(config)
    if config.storage.mode == "embedded":
        objects += objectstore(config)
    return objects
