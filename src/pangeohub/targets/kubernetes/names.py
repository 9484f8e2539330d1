"""Names of everything the deployment creates, derived from the config in one place (pure)."""

from __future__ import annotations

from typing import Literal

from pangeohub.config import Config
from pangeohub.targets.kubernetes.mapping import HOME

HUB_FILES_SECRET = "pangeohub-hub-files"
OBJECTSTORE = "pangeohub-objectstore"
OBJECTSTORE_SECRET = "pangeohub-objectstore-admin"
GATEWAY_CHART = "dask-gateway"
HOME_OWNER_ROLE = "pangeohub-home-owner"  # lets the hub annotate home volumes (manifests.hub_rbac)


def image_name(config: Config, which: Literal["user", "hub"]) -> str:
    images = config.kubernetes.images
    name = getattr(images, which)
    return f"{images.registry}/{name}" if images.registry else name


def gateway_fullname(config: Config) -> str:
    """The chart's ``dask-gateway.fullname`` helper: the release name when it contains the chart's name."""
    release = config.kubernetes.gateway_release
    name = release if GATEWAY_CHART in release else f"{release}-{GATEWAY_CHART}"
    return name[:63].rstrip("-")


def gateway_traefik(config: Config) -> str:
    return f"traefik-{gateway_fullname(config)}"[:63].rstrip("-")


def gateway_api(config: Config) -> str:
    return f"api-{gateway_fullname(config)}"[:63].rstrip("-")


def gateway_service_url(config: Config) -> str:
    """Where the hub's proxy sends /services/dask-gateway/: the gateway's traefik (as daskhub does)."""
    return f"http://{gateway_traefik(config)}.{config.kubernetes.namespace}"


def hub_service_account(config: Config) -> str:
    """The chart's ``jupyterhub.hub-serviceaccount.fullname`` with its default values (no fullname prefix)."""
    return "hub"


def hub_api_url(config: Config) -> str:
    return f"http://hub.{config.kubernetes.namespace}:8081/hub/api"


def shared_claim(config: Config, kind: Literal["data", "scratch"]) -> str:
    return f"pangeohub-shared-{kind}"


def shared_mount(config: Config, kind: Literal["data", "scratch"]) -> str:
    """The folder in every home, named as on one machine; a folder outside the home when no link is wanted."""
    link = config.shared.data_link if kind == "data" else config.shared.scratch_link
    return f"{HOME}/{link}" if link else f"/srv/shared/{kind}"


def objectstore_endpoint(config: Config) -> str:
    return f"http://{OBJECTSTORE}.{config.kubernetes.namespace}:{config.storage.port}"


def quantity(nbytes: int) -> str:
    """A Kubernetes quantity in binary units ('10Gi'), exact where possible."""
    for suffix, factor in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if nbytes and nbytes % factor == 0:
            return f"{nbytes // factor}{suffix}"
    return str(nbytes)


def service_type(config: Config) -> str:
    if config.kubernetes.service_type:
        return config.kubernetes.service_type
    return "ClusterIP" if config.hub.ip in ("127.0.0.1", "::1") else "LoadBalancer"


def hub_files(config: Config) -> dict[str, str]:
    """{key in the hub-files Secret: path in the hub pod} for each file the login mode or storage reads."""
    auth, files = config.auth, {}
    if auth.mode == "ldap":
        if auth.ldap.ca_file:
            files["ldap-ca"] = str(auth.ldap.ca_file)
        if auth.ldap.search_password_file:
            files["ldap-search-password"] = str(auth.ldap.search_password_file)
    if auth.mode == "github" and auth.github.client_secret_file:
        files["github-client-secret"] = str(auth.github.client_secret_file)
    if auth.mode == "shared" and auth.shared.password_file:
        files["shared-password"] = str(auth.shared.password_file)
    if config.storage.mode == "external" and config.storage.external is not None:
        files["s3-credentials"] = str(config.storage.external.credentials_file)
    return files
