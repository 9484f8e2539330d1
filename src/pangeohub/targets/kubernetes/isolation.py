"""What keeps people's pods apart on Kubernetes beyond the charts' own policies (pure functions).

- Owners: each person's notebook, Dask scheduler and workers run as their own uid (``uids``), never root, with
  no privilege escalation. The home volume is made the person's by an init container (below), not by a pod
  ``fsGroup``: the kubelet applies a pod's fsGroup to *every* volume whose driver supports it, recursively, so a
  per-person fsGroup would hand the shared scratch volume's whole tree to whoever started last (and the chart's
  shared fsGid 100 would make every file there group-writable by everyone).
- Shared scratch: its root is a sticky-bit directory (1777, owned by root), as /tmp and the scratch folder on
  one machine are: everyone may create files, only the owner may delete or rename theirs.
- Dask: one NetworkPolicy per cluster, made by PangeoKubeBackend with the cluster and owned by its DaskCluster
  object (so Kubernetes deletes it with the cluster): its pods admit only each other, the gateway's own pods and
  their owner's notebook. A static policy cannot say "the same owner"; the cluster label can.
"""

from __future__ import annotations

UID_ANNOTATION = "pangeohub.org/uid"
CLUSTER_LABEL = "gateway.dask.org/cluster"
INSTANCE_LABEL = "gateway.dask.org/instance"
COMPONENT = "app.kubernetes.io/component"
# The dask-gateway chart's own pods (API server, controller, traefik), by their component label.
GATEWAY_COMPONENTS = ["gateway", "controller", "traefik"]
OWNER_INIT = "pangeohub-owner"
HOME_IN_INIT = "/mnt/pangeohub/home"
SCRATCH_IN_INIT = "/mnt/pangeohub/scratch"

# $1 uid, $2 home, $3 scratch root ('' without one). The home is chowned (recursively, once: a home of the
# uid-1000 era moves to its owner) only when its root is not the person's; scratch's root only when it is not
# already root-owned 1777. No braces: KubeSpawner expands {name} templates in init containers.
OWNER_SCRIPT = """set -e
if [ "$(stat -c %u "$2")" != "$1" ]; then chown -R "$1:$1" "$2"; fi
chmod 0700 "$2"
if [ -n "$3" ] && [ "$(stat -c %u:%a "$3")" != 0:1777 ]; then chown 0:0 "$3"; chmod 1777 "$3"; fi
"""


def username_label(name: str) -> str:
    """The ``hub.jupyter.org/username`` label KubeSpawner gives a person's pods and volumes."""
    # Imported here: KubeSpawner is in the hub image, not in every install that renders.
    from kubespawner.slugs import is_valid_label, safe_slug

    return safe_slug(name, is_valid=is_valid_label)


def owner_init_container(image: str, uid: int, home_volume: str, scratch_volume: str | None) -> dict:
    """Root, but only with the capabilities to change owners and modes of the two volumes it mounts."""
    mounts = [{"name": home_volume, "mountPath": HOME_IN_INIT}]
    if scratch_volume:
        mounts.append({"name": scratch_volume, "mountPath": SCRATCH_IN_INIT})
    return {
        "name": OWNER_INIT,
        "image": image,
        "command": ["sh", "-c", OWNER_SCRIPT, "sh", str(uid), HOME_IN_INIT,
                    SCRATCH_IN_INIT if scratch_volume else ""],
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_READ_SEARCH"]}},
        "volumeMounts": mounts,
    }


def nonroot(uid: int) -> dict:
    """A container's security context for a person's process."""
    return {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]}}


def dask_pod_config(uid: int) -> dict:
    """KubeClusterConfig options the gateway's controller merges into a cluster's scheduler and worker pods."""
    pod = {"securityContext": {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True}}
    container = {"securityContext": nonroot(uid)}
    return {"scheduler_extra_pod_config": pod, "worker_extra_pod_config": pod,
            "scheduler_extra_container_config": container, "worker_extra_container_config": container}


def dask_pod_labels(owner: str) -> dict:
    """KubeClusterConfig options that label a cluster's pods with their owner, as KubeSpawner labels a server's:
    kube-state-metrics' kube_pod_labels then joins the pods' cAdvisor CPU to a person (``usage report
    --prometheus``). Upstream labels Dask pods with their cluster only."""
    labels = {"hub.jupyter.org/username": username_label(owner)}
    return {"scheduler_extra_pod_labels": labels, "worker_extra_pod_labels": labels}


def cluster_policy(cluster: dict, gateway_instance: str, owner: str) -> dict:
    """The NetworkPolicy of one cluster (``cluster``: its DaskCluster object as the API server returned it)."""
    name = cluster["metadata"]["name"]
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {
            "name": f"dask-{name}", "namespace": cluster["metadata"]["namespace"],
            "labels": {INSTANCE_LABEL: gateway_instance, CLUSTER_LABEL: name,
                       "app.kubernetes.io/part-of": "pangeohub"},
            "ownerReferences": [{"apiVersion": cluster["apiVersion"], "kind": cluster["kind"], "name": name,
                                 "uid": cluster["metadata"]["uid"], "blockOwnerDeletion": True}],
        },
        "spec": {
            "podSelector": {"matchLabels": {INSTANCE_LABEL: gateway_instance, CLUSTER_LABEL: name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [
                {"podSelector": {"matchLabels": {INSTANCE_LABEL: gateway_instance, CLUSTER_LABEL: name}}},
                {"podSelector": {"matchLabels": {INSTANCE_LABEL: gateway_instance},
                                 "matchExpressions": [{"key": COMPONENT, "operator": "In",
                                                       "values": GATEWAY_COMPONENTS}]}},
                {"podSelector": {"matchLabels": {"component": "singleuser-server",
                                                 "hub.jupyter.org/username": username_label(owner)}}},
            ]}],
        },
    }
