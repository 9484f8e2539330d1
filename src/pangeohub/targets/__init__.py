"""Execution targets: where people's servers and Dask clusters run. ``get_target(config)`` picks the one
``config.target.kind`` names; ``base.Target`` says what a target answers."""

from __future__ import annotations

from importlib import import_module

from pangeohub.config.target import TARGET_KINDS
from pangeohub.errors import PangeoError
from pangeohub.targets.base import Addresses, Target

__all__ = ["Addresses", "Target", "checked_target", "get_target"]

REGISTRY = TARGET_KINDS  # kind -> "module:Class" (pangeohub.config.target: the one list of kinds)


def get_target(config) -> Target:
    kind = config.target.kind
    if kind not in REGISTRY:
        raise PangeoError(f"target kind {kind!r} is not available in this version",
                          f"set target.kind to one of: {', '.join(REGISTRY)}")
    module, _, cls = REGISTRY[kind].partition(":")
    return getattr(import_module(module), cls)(config)


def checked_target(config) -> Target:
    """The config's target, refusing (one error listing every line) what it finds it cannot honour."""
    target = get_target(config)
    found = target.problems()
    if found:
        raise PangeoError(f"target.kind {config.target.kind} cannot run this config:\n  - " + "\n  - ".join(found),
                          "change the options named above (docs/config-reference.md says what each does)")
    return target
