"""Values of the ``jupyterhub`` chart (zero-to-jupyterhub 4.4.0) from our config: a pure function.

The hub runs our image (JupyterHub, KubeSpawner, pangeohub's authenticators and spawn hooks); our spawner is a
KubeSpawner subclass (``targets.kubernetes.spawner``) that adds the per-person scratch credentials and the
profiles' group rules. The gateway is wired as ``daskhub`` wires it: a hub service whose token the chart
generates and the gateway reads from the hub's Secret, and ``DASK_GATEWAY__*`` in every server's environment.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pangeohub.auth.render import authenticator_class, render_auth
from pangeohub.catalog import CATALOG_ENV
from pangeohub.config import DEFAULT_CONFIG_PATH, Config
from pangeohub.paths import StatePaths
from pangeohub.render.gateway import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX
from pangeohub.resources.profiles import summary
from pangeohub.targets.kubernetes import https, names
from pangeohub.targets.kubernetes.mapping import HOME, HUB_STATE_DIR, IMAGE_PREFIX

SPAWNER_CLASS = "pangeohub.targets.kubernetes.spawner.PangeoKubeSpawner"
QUICKSTART_MOUNT = "/etc/pangeohub/quickstart.md"
METRICS_SERVICE = "prometheus"  # the service the site's Prometheus scrapes /hub/metrics as


def in_cluster(config: Config) -> Config:
    """The config as the hub pod sees it: the runtime lives in the image, the state on the hub's volume."""
    return config.model_copy(update={"install_dir": Path(IMAGE_PREFIX), "state_dir": Path(HUB_STATE_DIR)})


def hub_values(config: Config) -> dict:
    k8s = config.kubernetes
    cfg = in_cluster(config)
    auth = render_auth(cfg, StatePaths(cfg.state_dir), local_gateway=False)
    # The chart builds JupyterHub.services and load_roles from hub.services / hub.loadRoles (keyed by name) and
    # drops hub.config.JupyterHub.services, so the auth sections' services move there.
    from_auth = auth.pop("JupyterHub", {})
    services = {SERVICE_NAME: {"display": False, "url": names.gateway_service_url(config)}} \
        if config.gateway.enabled else {}
    roles = _gateway_roles() if config.gateway.enabled else {}
    for service in from_auth.get("services", []):
        services[service["name"]] = {k: v for k, v in service.items() if k != "name"}
    for role in from_auth.get("load_roles", []):
        roles[role["name"]] = {k: v for k, v in role.items() if k != "name"}
    services[METRICS_SERVICE], roles[METRICS_SERVICE] = _metrics_reader()

    hub: dict = {
        "image": {"name": names.image_name(config, "hub"), "tag": k8s.images.tag},
        "concurrentSpawnLimit": config.hub.concurrent_spawn_limit,
        "config": {
            "JupyterHub": {"authenticator_class": authenticator_class(cfg), "spawner_class": SPAWNER_CLASS},
            **auth,
            "PangeoKubeSpawner": {"settings": cfg.model_dump(mode="json")},
        },
        "services": services,
        "loadRoles": roles,
        # /hub/metrics only with a token that may read it (the metrics reader's), and the hub's Service says
        # where to scrape, for a Prometheus that discovers targets by annotation.
        "authenticatePrometheus": True,
        "service": {"annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8081",
                                    "prometheus.io/path": "/hub/metrics"}},
        "extraConfig": {
            # Secrets the login mode generates on one machine at `up` (the shared password) are made on the
            # hub's own volume when it starts.
            "10-pangeohub": "from pangeohub.targets.kubernetes.hubsetup import setup\nsetup(c)\n",
        },
    }
    # The config as the hub pod sees it, where the CLI looks by default: `pangeohub exec kubernetes --
    # users add alice` manages accounts in the hub's own volume, as on one machine.
    hub["extraFiles"] = {"pangeohub-config": {
        "mountPath": str(DEFAULT_CONFIG_PATH),
        "stringData": yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)}}
    if "template_paths" in from_auth:
        hub["templatePaths"] = from_auth["template_paths"]
    if k8s.storage_class:
        hub["db"] = {"pvc": {"storageClassName": k8s.storage_class}}
    files = names.hub_files(config)
    if files:
        # Files the login mode reads (CA, search password, OAuth secret...) come from a Secret the operator
        # makes (`kubectl create secret generic pangeohub-hub-files --from-file=...`), at the configured paths.
        hub["extraVolumes"] = [{"name": "pangeohub-hub-files", "secret": {"secretName": names.HUB_FILES_SECRET}}]
        hub["extraVolumeMounts"] = [{"name": "pangeohub-hub-files", "mountPath": path, "subPath": key,
                                     "readOnly": True} for key, path in files.items()]

    for section, settings in https.hub_config(config).items():
        hub["config"].setdefault(section, {}).update(settings)
    proxy: dict = {"service": {"type": names.service_type(config)}}
    if https.https_on(config):
        proxy["https"] = https.proxy_https(config)
        if https.traefik(config):
            proxy["traefik"] = https.traefik(config)
    values = {
        "hub": hub,
        "proxy": proxy,
        "singleuser": _singleuser(config),
        "cull": _cull(config),
    }
    return values


def _metrics_reader() -> tuple[dict, dict]:
    """A hub service whose only right is to read the hub's metrics: the chart makes its token (in the hub's
    Secret, key ``hub.services.METRICS_SERVICE.apiToken``), which the site's Prometheus scrapes with."""
    return {"display": False}, {"scopes": ["read:metrics"], "services": [METRICS_SERVICE]}


def _gateway_roles() -> dict:
    return {
        "user": {"scopes": ["self", ACCESS_SCOPE]},
        "server": {"scopes": ["users:activity!user", "access:servers!server", ACCESS_SCOPE]},
    }


def gateway_client_env(config: Config) -> dict[str, str]:
    """What `Gateway()` with no arguments reads, as daskhub sets it.

    With HTTPS on, proxy-public's port 80 only redirects to the domain, so servers reach the gateway's API
    in the cluster, past the TLS front door (daskhub uses the chart's proxy-http Service for that, which exists
    only for the letsencrypt type; the gateway's own traefik exists for every type). Dashboard links, which
    people open in their browser, carry the hub's https URL.
    """
    address = f"http://proxy-public.{config.kubernetes.namespace}{SERVICE_PREFIX}"
    if https.https_on(config):
        address = names.gateway_service_url(config) + SERVICE_PREFIX
    return {
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS":
            f"gateway://{names.gateway_traefik(config)}.{config.kubernetes.namespace}:80",
        "DASK_GATEWAY__PUBLIC_ADDRESS": https.gateway_public_address(config),
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }


def profile_list(config: Config) -> list[dict]:
    share = config.kubernetes.guarantee
    profiles = []
    for index, profile in enumerate(config.profiles):
        override = {"cpu_guarantee": round(profile.cpus * share, 3), "mem_guarantee": int(profile.memory * share)}
        if config.limits.enforce:
            override.update({"cpu_limit": profile.cpus, "mem_limit": profile.memory})
        entry = {"display_name": profile.name, "slug": profile.name,
                 "description": profile.description or summary(profile),
                 "kubespawner_override": override}
        if index == 0:
            entry["default"] = True
        if profile.groups:
            # Read by PangeoKubeSpawner (KubeSpawner has no group rule): the same rule as on one machine.
            entry["allowed_groups"] = sorted(profile.groups)
        profiles.append(entry)
    return profiles


def shared_volumes(config: Config) -> tuple[list[dict], list[dict]]:
    """The shared data (read-only) and scratch volumes and their mounts, for servers and Dask workers alike."""
    volumes, mounts = [], []
    for kind, read_only in (("data", True), ("scratch", False)):
        claim = names.shared_claim(config, kind)
        volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": claim, "mountPath": names.shared_mount(config, kind), "readOnly": read_only})
    return volumes, mounts


def _singleuser(config: Config) -> dict:
    k8s = config.kubernetes
    env = {"DASK_TEMPORARY_DIRECTORY": f"{HOME}/.cache/dask"}
    if config.gateway.enabled:
        env.update(gateway_client_env(config))
    volumes, mounts = shared_volumes(config)
    env[CATALOG_ENV] = names.shared_mount(config, "data") + "/catalog/catalog.yaml"
    storage = {
        "type": "dynamic",
        "capacity": names.quantity(config.homes.quota),
        "homeMountPath": HOME,
        "extraVolumes": volumes,
        "extraVolumeMounts": mounts,
    }
    if k8s.storage_class:
        storage["dynamic"] = {"storageClass": k8s.storage_class}
    values = {
        "image": {"name": names.image_name(config, "user"), "tag": k8s.images.tag},
        "defaultUrl": config.hub.default_url,
        "startTimeout": int(config.hub.start_timeout),
        "storage": storage,
        "profileList": profile_list(config),
        "extraEnv": env,
        # The same as on one machine: JupyterLab's default extension manager would offer pip installs into
        # the image's read-only environment; there are no language servers to look for.
        "cmd": ["jupyterhub-singleuser", "--LabApp.extension_manager=readonly",
                "--LanguageServerManager.autodetect=False"],
    }
    egress = _egress(config)
    if egress:
        values["networkPolicy"] = {"egress": egress}
    if config.homes.quickstart:
        values["extraFiles"] = {"quickstart": {"mountPath": QUICKSTART_MOUNT,
                                               "stringData": config.homes.quickstart}}
        target = f"{HOME}/{config.homes.quickstart_name}"
        marker = f"{HOME}/.cache/pangeohub-quickstart"
        # Copied once into each new home, as on one machine: a person who deletes it does not get it back.
        values["lifecycleHooks"] = {"postStart": {"exec": {"command": [
            "sh", "-c", f'test -e "{marker}" || {{ cp -n {QUICKSTART_MOUNT} "{target}"; '
                        f'mkdir -p "{HOME}/.cache" && touch "{marker}"; }}']}}}
    return values


def _egress(config: Config) -> list[dict]:
    """What a server may reach beyond the hub and the proxy (the chart denies other pods by default): the
    gateway's traefik (its Dask clients' TLS connections) and the object store's S3 port."""
    rules = []
    if config.gateway.enabled:
        rules.append({"to": [{"podSelector": {"matchLabels": {
            "gateway.dask.org/instance": names.gateway_fullname(config),
            "app.kubernetes.io/component": "traefik"}}}]})
    if config.storage.mode == "embedded":
        rules.append({"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": names.OBJECTSTORE}}}],
                      "ports": [{"port": config.storage.port, "protocol": "TCP"}]})
    return rules


def _cull(config: Config) -> dict:
    timeout = int(config.gateway.server_idle_timeout)
    if not timeout:
        return {"enabled": False}
    # The same period as on one machine (pangeohub.render.gateway.hub_services).
    return {"enabled": True, "timeout": timeout, "every": max(10, min(300, timeout // 4))}
