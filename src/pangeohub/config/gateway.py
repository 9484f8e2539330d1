"""The ``gateway:`` config section: Dask Gateway options, limits and culling.

Limits are data (like dask-gateway's ``ClusterConfig``): the backend, the renderer and the admin CLI read the
same fields. Per-user totals are ours: upstream removed per-user limits in 0.7.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pangeohub.units import ByteSize, Duration, format_size


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True)


class CoresRange(_Section):
    min: int = Field(1, ge=1, description="Fewest cores a user may ask for per worker.")
    max: int = Field(2, ge=1, description="Most cores a user may ask for per worker.")
    default: int = Field(1, ge=1, description="Cores per worker when the user does not choose.")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.min <= self.default <= self.max:
            raise ValueError(f"need min <= default <= max, got min={self.min} default={self.default} max={self.max}")
        return self


class MemoryRange(_Section):
    min: ByteSize = Field("512M", description="Least memory a user may ask for per worker.")
    max: ByteSize = Field("4G", description="Most memory a user may ask for per worker.")
    default: ByteSize = Field("1G", description="Memory per worker when the user does not choose.")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.min <= self.default <= self.max:
            raise ValueError(f"need min <= default <= max, got min={format_size(self.min)} "
                             f"default={format_size(self.default)} max={format_size(self.max)}")
        if self.min < 64 * 2**20:
            raise ValueError("a Dask worker needs at least 64M")
        return self


class WorkerOptions(_Section):
    """What a user may choose for their workers (shown by ``Gateway().cluster_options()``)."""

    worker_cores: CoresRange = Field(default_factory=CoresRange)
    worker_memory: MemoryRange = Field(default_factory=MemoryRange)


class GatewayLimits(_Section):
    cluster_max_workers: int | None = Field(8, ge=0, description="Most workers in one cluster (null: no limit).")
    cluster_max_cores: float | None = Field(
        None, ge=0, description="Most cores of one cluster, scheduler included (null: no limit).")
    cluster_max_memory: ByteSize | None = Field(
        None, description="Most memory of one cluster, scheduler included (null: no limit).")
    user_max_clusters: int | None = Field(
        2, ge=0, description="Most clusters one user may run at once, across all of them (null: no limit).")
    user_max_cores: float | None = Field(
        4, ge=0, description="Most cores one user's clusters may use together, schedulers included (null: no limit).")
    user_max_memory: ByteSize | None = Field(
        "8G", description="Most memory one user's clusters may use together, schedulers included (null: no limit).")


class GatewaySection(_Section):
    enabled: bool = Field(True, description="Run Dask Gateway: `Gateway()` works in every notebook.")
    fast_start: bool = Field(
        True,
        description="On the local target, start schedulers and workers by forking a process that has already "
        "imported Dask (as fast as a LocalCluster) instead of a fresh Python each. They run as the same account "
        "with the same environment, limits and working directory; clusters in a named environment over the stack "
        "(`base: pangeo`) are forked with its packages added, those of a `base: none` or personal environment "
        "start fresh processes.",
    )
    api_port: int = Field(8002, ge=1, le=65535, description="Loopback port of the gateway's private API.")
    proxy_port: int = Field(
        8003, ge=1, le=65535,
        description="Loopback port of the gateway's HTTP proxy (reached through the hub at /services/dask-gateway/).")
    scheduler_port: int = Field(
        8786, ge=1, le=65535,
        description="Port clients connect to their schedulers through (TLS, routed by cluster name).")
    scheduler_cores: int = Field(1, ge=1, description="Cores reserved for each cluster's scheduler.")
    scheduler_memory: ByteSize = Field("1G", description="Memory reserved for each cluster's scheduler.")
    options: WorkerOptions = Field(default_factory=WorkerOptions)
    group_options: dict[str, WorkerOptions] = Field(
        default_factory=dict,
        description="Ranges for members of a hub group, e.g. {gpu-team: {worker_memory: {max: 16G}}}. "
        "A member of several groups gets the widest range of them.",
    )
    limits: GatewayLimits = Field(default_factory=GatewayLimits)
    idle_timeout: Duration = Field("30m", description="Shut a cluster down after this long without work (0: never).")
    stop_with_server: bool = Field(
        True, description="Stop a user's clusters when their notebook server stops or is culled.")
    stop_with_server_period: Duration = Field(
        "10s", description="How often the gateway checks for clusters whose notebook server has stopped.")
    server_idle_timeout: Duration = Field(
        "1h", description="jupyterhub-idle-culler stops notebook servers idle this long (0: never).")
    forward_env: list[str] = Field(
        default_factory=lambda: ["PANGEO_*", "AWS_*", "FSSPEC_*", "S3_*", "DASK_GATEWAY__*"],
        description="Environment variables of the user's notebook server copied to their scheduler and workers "
        "(names or prefixes ending in '*').",
    )

    @model_validator(mode="after")
    def _fits(self):
        limits = self.limits
        one_worker_cores = self.scheduler_cores + self.options.worker_cores.min
        one_worker_memory = self.scheduler_memory + self.options.worker_memory.min
        for name, cap, need, fmt in (
            ("limits.user_max_cores", limits.user_max_cores, one_worker_cores, str),
            ("limits.cluster_max_cores", limits.cluster_max_cores, one_worker_cores, str),
            ("limits.user_max_memory", limits.user_max_memory, one_worker_memory, format_size),
            ("limits.cluster_max_memory", limits.cluster_max_memory, one_worker_memory, format_size),
        ):
            if cap is not None and cap < need:
                raise ValueError(f"{name} is {fmt(cap)}, less than a scheduler plus one smallest worker "
                                 f"({fmt(need)}): no cluster could ever run")
        return self
