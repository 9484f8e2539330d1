"""Per-user totals across all of a user's clusters (upstream dropped per-user limits in 0.7).

A cluster uses its scheduler plus its requested number of workers, each at the cores and memory chosen at
creation. The checks are pure functions of the gateway's in-memory cluster records, so that the backend can
call them between two awaits, where no other request can slip in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dask_gateway_server.backends.base import PublicException

from pangeohub.config.gateway import GatewayLimits
from pangeohub.units import format_size


@dataclass
class Usage:
    clusters: int = 0
    cores: float = 0.0
    memory: int = 0


def workers_of(cluster) -> int:
    # The requested count, as upstream's per-cluster limit uses: it is updated on every scale request and
    # heartbeat, while workers being stopped after a scale-down linger for a few seconds.
    return int(cluster.count or 0)


def footprint(config, workers: int) -> tuple[float, int]:
    """(cores, memory) of a cluster with this config running ``workers`` workers."""
    return (config["scheduler_cores"] + workers * config["worker_cores"],
            int(config["scheduler_memory"] + workers * config["worker_memory"]))


def usage(clusters, exclude: str | None = None) -> Usage:
    total = Usage()
    for cluster in clusters:
        if cluster.name == exclude or not cluster.is_active():
            continue
        cores, memory = footprint(cluster.config, workers_of(cluster))
        total.clusters += 1
        total.cores += cores
        total.memory += memory
    return total


def check_new_cluster(limits: GatewayLimits, current: Usage, config) -> None:
    """Raise a PublicException saying which per-user limit a new cluster (its scheduler) would break."""
    if limits.user_max_clusters is not None and current.clusters + 1 > limits.user_max_clusters:
        raise PublicException(
            f"cannot start another cluster: you have {current.clusters} running and the limit is "
            f"{limits.user_max_clusters} per user (gateway.limits.user_max_clusters). "
            "Fix: shut one down (gateway.list_clusters(), then cluster.shutdown()).")
    cores, memory = footprint(config, 0)
    if limits.user_max_cores is not None and current.cores + cores > limits.user_max_cores:
        raise PublicException(
            f"cannot start another cluster: its scheduler needs {cores:g} cores, your clusters already use "
            f"{current.cores:g} and the limit is {limits.user_max_cores:g} cores per user "
            "(gateway.limits.user_max_cores). Fix: scale down or shut down another cluster.")
    if limits.user_max_memory is not None and current.memory + memory > limits.user_max_memory:
        raise PublicException(
            f"cannot start another cluster: its scheduler needs {format_size(memory)}, your clusters already "
            f"use {format_size(current.memory)} and the limit is {format_size(limits.user_max_memory)} per user "
            "(gateway.limits.user_max_memory). Fix: scale down or shut down another cluster.")


def allowed_workers(limits: GatewayLimits, others: Usage, config) -> tuple[int | None, str]:
    """Most workers this cluster may have given the user's other clusters, and the limit that decides it
    (None: no per-user limit applies)."""
    best: tuple[int | None, str] = (None, "")
    base_cores, base_memory = footprint(config, 0)
    for cap, used, base, per, name, fmt in (
        (limits.user_max_cores, others.cores, base_cores, config["worker_cores"], "user_max_cores",
         lambda v: f"{v:g} cores"),
        (limits.user_max_memory, others.memory, base_memory, config["worker_memory"], "user_max_memory",
         format_size),
    ):
        if cap is None:
            continue
        fits = max(0, math.floor((cap - used - base) / per + 1e-9))
        if best[0] is None or fits < best[0]:
            best = (fits, f"the limit is {fmt(cap)} per user (gateway.limits.{name}) and your other clusters "
                          f"use {fmt(used)}")
    return best


def scale_refusal(requested: int, allowed: int, why: str, cluster_name: str) -> PublicException:
    fix = (f"scale to {allowed} or fewer, or shut down another cluster" if allowed
           else "scale down or shut down another cluster first")
    return PublicException(
        f"cannot scale cluster {cluster_name} to {requested} workers: {why}, so at most {allowed} workers fit. "
        f"Fix: {fix}.")
