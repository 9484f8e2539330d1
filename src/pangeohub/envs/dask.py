"""Dask clusters that run the environment of the kernel that started them.

The kernel (and a server started in a profile's environment) sets ``DASK_GATEWAY__CLUSTER__OPTIONS__ENVIRONMENT``:
dask-gateway's client sends the options of its dask config with every ``new_cluster()``, so a cluster started with
no arguments carries the kernel's environment, and ``new_cluster(environment="NAME")`` overrides it. The gateway
checks the person may use it and runs scheduler and workers with that environment's Python.
"""

from __future__ import annotations

from pangeohub.envs.layout import EnvDir

CLIENT_VARIABLE = "DASK_GATEWAY__CLUSTER__OPTIONS__ENVIRONMENT"


def allowed_names(config, groups: set[str], admin: bool) -> list[str]:
    return [spec.name for spec in config.environments if spec.allows(groups, admin)]


def commands(config, name: str, groups: set[str], admin: bool) -> dict:
    """Cluster config overrides running ``name``; {} for the default stack. Refusals say what may be used."""
    if not name or name == "default":
        return {}
    allowed = allowed_names(config, groups, admin)
    if name not in allowed:
        known = any(spec.name == name for spec in config.environments)
        why = "is limited to other groups" if known else "does not exist"
        raise ValueError(f"environment {name!r} {why}; you may use: {', '.join(['default', *allowed])}")
    envdir = EnvDir.of(config.install_dir, name)
    if envdir.current() is None:
        raise ValueError(f"environment {name!r} is not built yet; ask an administrator (`pangeohub env build {name}`)")
    has_dask = list(envdir.current_link.glob("lib/python3*/site-packages/distributed"))
    if not has_dask and not _extends_stack(config, name):
        raise ValueError(f"environment {name!r} has no Dask (base none without distributed); its administrator can "
                         "add dask, distributed and dask-gateway to its packages")
    python = str(envdir.current_link / "bin" / "python")
    return {"scheduler_cmd": [python, "-m", "dask", "scheduler"], "worker_cmd": [python, "-m", "dask", "worker"]}


def _extends_stack(config, name: str) -> bool:
    return any(spec.name == name and spec.base == "pangeo" for spec in config.environments)
