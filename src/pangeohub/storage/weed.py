"""SeaweedFS command lines and file layout: pure functions of the config and the state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pangeohub.config.model import StorageSection
from pangeohub.storage.ttl import seaweed_ttl

LOOPBACK = "127.0.0.1"
# Volumes are allocated lazily in this size; SeaweedFS's default (30 GB) is meant for dedicated disks.
VOLUME_SIZE_MB = 1024


@dataclass(frozen=True)
class StoreLayout:
    """Files of the object store, all under ``<state_dir>/objectstore`` (0700, root only)."""

    root: Path

    @classmethod
    def under(cls, state_dir: Path) -> "StoreLayout":
        return cls(state_dir / "objectstore")

    @property
    def data(self) -> Path:
        """Volumes, master metadata and the filer's database (which holds the per-user identities)."""
        return self.root / "data"

    @property
    def s3_config(self) -> Path:
        return self.root / "s3.json"

    @property
    def s3_socket(self) -> Path:
        """The S3 gateway's Unix socket: the only way in from outside its network namespace."""
        return self.root / "s3.sock"

    @property
    def metrics_socket(self) -> Path:
        """SeaweedFS's metrics, relayed from inside its namespace by the runner (root-only, like the S3 socket)."""
        return self.root / "metrics.sock"

    @property
    def plan(self) -> Path:
        return self.root / "runner.json"

    @property
    def weed_pid(self) -> Path:
        return self.root / "weed.pid"


def server_command(weed: Path, storage: StorageSection, layout: StoreLayout) -> list[str]:
    """``weed server`` with master, volume, filer and S3 gateway in one process, every port explicit.

    Without explicit ports SeaweedFS derives gRPC ports (port + 10000), starts an Iceberg catalog (8181) and a
    Lance namespace (9101), and phones home (telemetry); none of that is wanted on a shared machine.
    """
    p = storage.ports
    return [
        str(weed), "server",
        f"-dir={layout.data}",
        f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
        f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}",
        # A single master elects itself after this timeout: the default 10s makes every start take ~18s.
        "-master.electionTimeout=1s",
        "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}",
        f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}",
        "-volume.max=0",  # as many volumes as the disk holds
        "-volume.preStopSeconds=0",  # default 10s of waiting on stop, for load balancers we do not have
        "-filer", f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
        f"-filer.localSocket={layout.root / 'filer.sock'}",
        "-s3", f"-s3.port={p.s3_internal}", f"-s3.port.grpc={p.s3_grpc}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={layout.s3_config}",
        f"-s3.localSocket={layout.s3_socket}",
        # Prometheus metrics of master, volume, filer and S3, inside the namespace: the runner relays them.
        f"-metricsPort={p.metrics}", f"-metricsIp={LOOPBACK}",
    ]


def setup_commands(storage: StorageSection) -> str:
    """``weed shell`` input run at every start: buckets exist, and scratch objects expire.

    The TTL is recorded per path in the filer's configuration and stamped on each object when written.
    """
    scratch = storage.scratch
    lines = [f"s3.bucket.create -name {bucket}" for bucket in [scratch.bucket, *storage.readable_buckets]]
    ttl = seaweed_ttl(scratch.expiry)
    lines.append(f"fs.configure -locationPrefix=/buckets/{scratch.bucket}/ -ttl={ttl} -apply")
    return "\n".join(lines) + "\n"


def shell_command(weed: Path, storage: StorageSection) -> list[str]:
    # `host:port.grpcPort`: given `host:port` alone, `weed shell` assumes gRPC on port + 10000, which holds
    # only for the default ports; with any others the shell never connects and every start times out.
    p = storage.ports
    return [str(weed), "shell", f"-master={LOOPBACK}:{p.master}.{p.master_grpc}",
            f"-filer={LOOPBACK}:{p.filer}.{p.filer_grpc}"]
