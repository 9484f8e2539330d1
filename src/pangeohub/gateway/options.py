"""Cluster options (what ``Gateway().cluster_options()`` shows) built from the config, per user.

Members of a group listed in ``gateway.group_options`` get that group's ranges; a member of several groups gets
the widest range over them and the defaults. Everyone else gets ``gateway.options``.
"""

from __future__ import annotations

from dask_gateway_server.options import Integer, Options, Select, String

from pangeohub.config.gateway import GatewaySection, WorkerOptions
from pangeohub.units import format_size

GIB = 2**30


def ranges_for(gw: GatewaySection, groups: list[str]) -> WorkerOptions:
    chosen = [gw.group_options[g] for g in sorted(groups) if g in gw.group_options]
    if not chosen:
        return gw.options
    merged = gw.options.model_copy(deep=True)
    for kind in ("worker_cores", "worker_memory"):
        ranges = [getattr(o, kind) for o in chosen]
        values = {"min": min(r.min for r in ranges), "max": max(r.max for r in ranges),
                  "default": getattr(gw.options, kind).default}
        values["default"] = min(max(values["default"], values["min"]), values["max"])
        setattr(merged, kind, type(ranges[0])(**values))
    return merged


def memory_choices(lo: int, hi: int, default: int) -> list[int]:
    """Sizes a user can pick between lo and hi: powers of two times 512M, plus the ends and the default."""
    sizes = {lo, hi, default}
    step = 512 * 2**20
    while step <= hi:
        if step >= lo:
            sizes.add(step)
        step *= 2
    return sorted(sizes)


def build_options(gw: GatewaySection, groups: list[str], config=None) -> Options:
    """Options for one user. Memory is a choice of sizes ("1G", "2G", ...) so the widget and the error
    messages speak in the units operators wrote in the config. ``environment`` (filled in by a kernel of a named
    environment, pangeohub.envs.dask) chooses the Python of scheduler and workers."""
    from pangeohub.envs.dask import commands

    ranges = ranges_for(gw, groups)
    cores, memory = ranges.worker_cores, ranges.worker_memory
    sizes = memory_choices(memory.min, memory.max, memory.default)
    labels = [format_size(s) for s in sizes]
    by_label = dict(zip(labels, sizes))

    def handler(options, user):
        chosen = {"worker_cores": options.worker_cores, "worker_memory": by_label[options.worker_memory]}
        wanted = getattr(options, "environment", "")
        if config is not None:
            chosen.update(commands(config, wanted, set(user.groups), bool(getattr(user, "admin", False))))
        elif wanted and wanted != "default":
            raise ValueError(f"environment {wanted!r}: named environments are not available on this target")
        return chosen

    return Options(
        Integer("worker_cores", default=cores.default, min=cores.min, max=cores.max, label="Worker cores"),
        Select("worker_memory", labels, default=format_size(memory.default), label="Worker memory"),
        String("environment", default="", label="Environment (empty: the default stack)"),
        handler=handler,
    )
