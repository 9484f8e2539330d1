"""``render(config) -> {path: text}``: the whole Kubernetes deployment, pure (no I/O, no randomness).

Secrets are not in the output: the jupyterhub chart generates the hub's (cookie secret, the gateway service's
token, which the gateway reads from the hub's Secret), and `pangeohub deploy kubernetes` makes the object
store's admin key in the cluster.
"""

from __future__ import annotations

import yaml

from pangeohub.config import Config
from pangeohub.targets.kubernetes import mapping
from pangeohub.targets.kubernetes.gatewayvalues import gateway_values
from pangeohub.targets.kubernetes.hubvalues import hub_values
from pangeohub.targets.kubernetes.manifests import manifests

JUPYTERHUB_CHART = ("jupyterhub", "4.4.0")
GATEWAY_CHART = ("dask-gateway", "2026.3.0")
HUB_VALUES = "jupyterhub-values.yaml"
GATEWAY_VALUES = "dask-gateway-values.yaml"
MANIFESTS = "manifests.yaml"
HEADER = "# Rendered by `pangeohub render kubernetes` from the pangeohub config; edit the config, not this file.\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (config code, the quickstart) as literal blocks, so that they read as written."""


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)


def render(config: Config) -> dict[str, str]:
    mapping.check(config)
    files = {
        HUB_VALUES: HEADER + f"# Chart: {'-'.join(JUPYTERHUB_CHART)}\n" + dump(hub_values(config)),
        MANIFESTS: HEADER + "".join("---\n" + dump(obj) for obj in manifests(config)),
    }
    if config.gateway.enabled:
        files[GATEWAY_VALUES] = HEADER + f"# Chart: {'-'.join(GATEWAY_CHART)}\n" + dump(gateway_values(config))
    return dict(sorted(files.items()))
