"""The ``kubernetes:`` config section: what only a Kubernetes deployment needs (names, images, volumes).

Everything else (profiles, homes, login, gateway, storage, culling) is read from the sections the single-machine
platform uses, so that one file describes both; ``pangeohub render kubernetes`` maps each of them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from pangeohub.config.base import Section
from pangeohub.units import ByteSize

# A Kubernetes object name (RFC 1123 label): what namespaces, releases and Services must be.
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$")
IMAGE_REF_RE = re.compile(r"^[a-z0-9]+([._/:-][a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class KubernetesImages(Section):
    """The two images `pangeohub build-images` builds from the same lock (requirements/runtime.lock)."""

    registry: str = Field(
        "", description="Registry and path the images are pushed to and pulled from, e.g. "
        "'registry.example.org/pangeo'. Empty: bare names, for a cluster whose nodes have the images already.",
    )
    user: str = Field("pangeohub-user", description="Name of the image of notebook servers, Dask schedulers "
                      "and workers (one image, so that notebook == scheduler == workers).")
    hub: str = Field("pangeohub-hub", description="Name of the image of the hub and the gateway server "
                     "(JupyterHub, KubeSpawner, dask-gateway-server and pangeohub's extensions).")
    tag: str = Field("0.1.0", description="Tag of both images. Change it with every rebuild, so that nodes pull "
                     "the new image instead of reusing a cached one.")

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not IMAGE_REF_RE.match(value):
            raise ValueError("must look like 'registry.example.org/pangeo' (lowercase, no scheme, no tag)")
        return value

    @field_validator("user", "hub")
    @classmethod
    def _name(cls, value: str) -> str:
        if not IMAGE_REF_RE.match(value) or ":" in value:
            raise ValueError("an image name without tag: lowercase letters, digits, '.', '-', '_' or '/'")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not TAG_RE.match(value):
            raise ValueError("an image tag: letters, digits, '_', '.', '-' (at most 128), e.g. '2026.12.1'")
        return value

    def ref(self, which: Literal["user", "hub"]) -> str:
        name = getattr(self, which)
        return f"{self.registry}/{name}:{self.tag}" if self.registry else f"{name}:{self.tag}"


class KubernetesSection(Section):
    """Settings used only by `pangeohub render kubernetes` and `pangeohub deploy kubernetes`."""

    namespace: str = Field("pangeohub", description="Namespace the hub, the gateway and every user pod run in.")
    hub_release: str = Field("pangeohub", description="Helm release name of the `jupyterhub` chart.")
    gateway_release: str = Field("dask-gateway", description="Helm release name of the `dask-gateway` chart.")
    images: KubernetesImages = Field(default_factory=KubernetesImages)
    storage_class: str | None = Field(
        None, description="StorageClass of the home volumes (one per person, homes.quota each) and of the hub's "
        "and object store's volumes. Null: the cluster's default class.",
    )
    shared_storage_class: str | None = Field(
        None, description="StorageClass of the shared data and shared scratch folders, which every pod mounts: "
        "it must offer ReadWriteMany (NFS, CephFS, EFS, Azure Files...). Null: the cluster's default class.",
    )
    shared_data_size: ByteSize = Field("100G", description="Size of the shared data volume.")
    shared_scratch_size: ByteSize = Field("100G", description="Size of the shared scratch volume.")
    object_store_size: ByteSize = Field(
        "100G", description="Size of the volume of the in-cluster SeaweedFS (storage.mode 'embedded').")
    guarantee: float = Field(
        1.0, gt=0, le=1,
        description="Share of each profile's CPUs and memory reserved for a server (Kubernetes requests; the "
        "profile's values are the limits). 1 reserves all of it, as on one machine; 0.5 packs twice as many "
        "servers onto nodes that are rarely all busy.",
    )
    first_uid: int = Field(
        100000, ge=10000, le=2_000_000_000,
        description="Base of the uids people's pods run as: each person gets first_uid + their hub user id the "
        "first time they start (or the next uid never given when that one was), recorded in the hub's volume "
        "and never given to anyone else. Their notebook, Dask scheduler and workers run as it, so that files in "
        "shared volumes have a real owner. Keep it above the uids of any system whose files people's pods mount.",
    )
    service_type: Literal["LoadBalancer", "NodePort", "ClusterIP"] | None = Field(
        None, description="Type of the public proxy Service. Null: LoadBalancer, or ClusterIP when hub.ip is a "
        "loopback address (a private hub, reached with `kubectl port-forward`).",
    )

    @field_validator("namespace", "hub_release", "gateway_release")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL_RE.match(value):
            raise ValueError("a Kubernetes name: lowercase letters, digits and '-', at most 53 characters, "
                             "starting and ending with a letter or digit")
        return value
