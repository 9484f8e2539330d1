"""Which config options carry over to Kubernetes, and which are refused, with the reason and the alternative.

Options that describe this machine's layout (state_dir, loopback ports, SeaweedFS's internal ports) are replaced
by the cluster's own names and Services and need no decision. Options that change what people get, and have no
equivalent in a cluster, are refused when the file sets them: silently dropping them would give a platform that
behaves differently from the one the operator described. Defaults are never refused, so that any config that
does not use them renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pangeohub.config import Config
from pangeohub.errors import PangeoError

# Where the images keep the runtime environment and where the hub pod keeps its state (the chart's hub volume).
IMAGE_PREFIX = "/opt/pangeohub"
HUB_STATE_DIR = "/srv/jupyterhub/pangeohub"
HOME = "/home/jovyan"


@dataclass(frozen=True)
class Refusal:
    field: str
    reason: str
    alternative: str

    def line(self, value) -> str:
        return f"{self.field} = {value!r} cannot be carried to Kubernetes: {self.reason}; {self.alternative}"


def unless(neutral=None) -> Callable[[object], bool]:
    """Refused at any value but ``neutral`` (None: at any value at all)."""
    return lambda value: neutral is None or value != neutral


def when(refused) -> Callable[[object], bool]:
    return lambda value: value == refused


ACME_SCHEDULE = ("the chart's autohttps pod (traefik) runs its own ACME client: it asks the CA without a DNS "
                 "check of ours and renews on its own schedule (30 days before expiry)")

# Refused when the file sets them to a value the predicate refuses.
REFUSED: list[tuple[Refusal, Callable[[object], bool]]] = [
    (Refusal("hub.fast_spawn", "each server is a pod of its own, started by the kubelet from the user image: "
             "there is no process to fork from", "remove it (image pre-pulling shortens pod starts)"),
     unless(False)),
    (Refusal("hub.fast_kernels", "kernels are forked only in servers started by fast spawn",
             "remove it"), unless(False)),
    (Refusal("hub.port", "the public Service (proxy-public) listens on port 80",
             "remove it and put a load balancer or ingress in front of the Service for another port"), unless()),
    (Refusal("users.system_prefix", "there are no Linux accounts: each person's pods run as their own uid "
             "(kubernetes.first_uid + their hub id)", "remove it"), unless()),
    (Refusal("users.home_root", f"every home is mounted at {HOME} in the person's own pod", "remove it"),
     unless()),
    (Refusal("users.shell", "the user image's shell is used", "remove it, or change the user image"), unless()),
    (Refusal("users.extra_groups", "there are no Linux accounts whose groups could be set",
             "remove it; give files group access with the volume's fsGroup instead"), unless()),
    (Refusal("users.umask", "each person's pod is theirs alone (their own uid, in its own filesystem "
             "namespace); the user image's umask applies", "remove it, or change the user image"), unless()),
    (Refusal("limits.backend", "the kubelet enforces each profile's CPUs and memory (container limits), not "
             "pangeohub's cgroups", "remove it"), unless()),
    (Refusal("limits.cgroup_name", "the kubelet places every pod in a cgroup of its own", "remove it"), unless()),
    (Refusal("homes.images_dir", "loop-mounted home images become one PersistentVolumeClaim per person "
             "(singleuser.storage, capacity homes.quota)", "remove it; choose kubernetes.storage_class"),
     unless()),
    (Refusal("homes.quota", "every home is a volume of a fixed size on Kubernetes (0 means no quota on one "
             "machine)", "set homes.quota to the size each home volume should have, e.g. 10G"), when(0)),
    (Refusal("shared.data_dir", "the shared data folder is a ReadWriteMany volume in the cluster",
             "remove it; size it with kubernetes.shared_data_size"), unless()),
    (Refusal("shared.scratch_dir", "the shared scratch folder is a ReadWriteMany volume in the cluster",
             "remove it; size it with kubernetes.shared_scratch_size"), unless()),
    (Refusal("shared.admin_group", "no Linux group exists to give admins write access to the data folder",
             "remove it; fill the data volume with `kubectl cp` into the hub pod"), unless()),
    (Refusal("gateway.stop_with_server", "the Kubernetes backend cannot watch notebook servers; clusters end "
             "after gateway.idle_timeout instead", "remove it or set false"), unless(False)),
    (Refusal("gateway.forward_env", "scheduler and worker pods get their environment from the gateway's "
             "backend config, not from the notebook server's",
             "remove it; give workers S3 credentials through storage_options in the code that writes"), unless()),
    (Refusal("hub.https.port", "the proxy-public Service serves HTTPS on port 443",
             "remove it and put a load balancer in front of the Service for another port"), unless(443)),
    (Refusal("hub.https.http_port", "the proxy-public Service answers plain HTTP (challenges, redirects) on "
             "port 80", "remove it"), unless(80)),
    (Refusal("hub.https.acme.directory_ca", "the chart's traefik trusts only publicly trusted CAs for the "
             "ACME directory", "remove it and use a public ACME CA, or give your own certificate "
             "(hub.https.mode: files)"), unless()),
    *[(Refusal(f"hub.https.acme.{name}", ACME_SCHEDULE, "remove it"), unless())
      for name in ("resolver", "renew_before", "check_every", "retry_after")],
    *[(Refusal(f"backup.{name}", "`pangeohub backup` copies one machine's state dir, homes and object store; "
               "on Kubernetes the hub database and homes are PersistentVolumes",
               "remove it; snapshot the volumes with your cluster's VolumeSnapshot class or Velero"), unless())
      for name in ("destination", "schedule", "keep", "scratch")],
    (Refusal("storage.scratch.quota", "the per-person scratch quota is checked by the one-machine S3 front "
             "(storage/runner.py), which the in-cluster object store does not have",
             "remove it or set 0; bound the object store's volume instead"), lambda value: bool(value)),
    (Refusal("catalog.sample_data", "the sample datasets are generated on one machine by `pangeohub up`",
             "remove it; publish datasets to a readable bucket (storage.readable_buckets) instead"),
     unless(False)),
    (Refusal("content", "workshop material is pulled by the hub into homes it reaches on its own machine; on "
             "Kubernetes each home is a volume mounted only in its person's pod",
             "remove it, and hand out the material with nbgitpuller links "
             "(/hub/user-redirect/git-pull?repo=...), which work in every server"), unless()),
]


def _explicit(config: Config, dotted: str) -> tuple[bool, object]:
    """(set in the file, value) for a dotted option."""
    node = config
    *parents, name = dotted.split(".")
    for part in parents:
        node = getattr(node, part, None)
        if node is None:
            return False, None
    if name not in getattr(node, "model_fields_set", ()):
        return False, None
    return True, getattr(node, name)


def refusals(config: Config) -> list[str]:
    """One line per option the file sets that cannot be carried to Kubernetes."""
    lines = []
    for refusal, refused in REFUSED:
        given, value = _explicit(config, refusal.field)
        if given and refused(value) and value not in ([], ""):
            lines.append(refusal.line(value))
    # A pod's process limit is the kubelet's (podPidsLimit), one value for every pod of the node.
    for index, profile in enumerate(config.profiles):
        if "processes" in profile.model_fields_set:
            lines.append(Refusal(f"profiles.{index}.processes", "the kubelet limits every pod's processes alike "
                                 "(its podPidsLimit setting), not per profile",
                                 "remove it; set podPidsLimit in the kubelet configuration of the nodes")
                         .line(profile.processes))
    # Environments are built into the user image (images.py) from the config alone, and servers start as the
    # image says (KubeSpawner's command, one per profileList entry).
    for index, spec in enumerate(config.environments):
        if spec.requirements is not None:
            lines.append(Refusal(f"environments.{index}.requirements", "the user image is built from the "
                                 "repository, where a requirements file of this machine is not",
                                 "list its lines in the environment's `packages`").line(spec.requirements))
    for index, profile in enumerate(config.profiles):
        if profile.environment:
            lines.append(Refusal(f"profiles.{index}.environment", "a server pod runs the user image's default "
                                 "stack", "remove it: the environment's kernel, `Python (NAME)`, is in every "
                                 "server it is open to, and Dask clusters started from it run it too")
                         .line(profile.environment))
    # 'auto' names the hub after its public address: on a cluster that is the load balancer's, known only once
    # the Service exists, so render (pure, offline) can derive it only from hub.https.public_address.
    if config.hub.domain == "auto" and not config.hub.https.public_address:
        lines.append(Refusal("hub.domain", "'auto' makes pangeo.<address>.sslip.io from the public address, and "
                             "on a cluster that is the load balancer's, unknown when rendering",
                             "reserve a static address for the proxy-public Service and set "
                             "hub.https.public_address to it, or give the DNS name").line("auto"))
    return lines


def check(config: Config) -> None:
    """Raise one PangeoError listing every option that cannot be carried over."""
    lines = refusals(config)
    if lines:
        raise PangeoError(
            "this config cannot be rendered for Kubernetes:\n" + "\n".join(f"  - {line}" for line in lines),
            "change these options (see docs/kubernetes.md, 'What carries over'), then render again",
        )
