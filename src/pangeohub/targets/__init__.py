"""Execution targets: where people's servers and Dask clusters run. ``get_target(config)`` picks the one
``config.target.kind`` names; ``base.Target`` says what a target answers."""

from __future__ import annotations

from importlib import import_module

from pangeohub.errors import PangeoError
from pangeohub.targets.base import Addresses, Target

__all__ = ["Addresses", "Target", "get_target"]

# kind -> "module:Class", imported only when chosen: a target's modules may need packages others do not.
REGISTRY = {
    "local": "pangeohub.targets.local:LocalTarget",
    "kubernetes": "pangeohub.targets.kubernetes.target:KubernetesTarget",
}


def get_target(config) -> Target:
    kind = config.target.kind
    if kind not in REGISTRY:
        raise PangeoError(f"target kind {kind!r} is not available in this version",
                          f"set target.kind to one of: {', '.join(REGISTRY)}")
    module, _, cls = REGISTRY[kind].partition(":")
    return getattr(import_module(module), cls)(config)
