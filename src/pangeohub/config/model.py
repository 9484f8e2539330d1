"""The configuration model: one YAML file, every option documented on its field.

This model is the single source of truth for defaults, validation, ``pangeohub config schema`` and the docs.
Sections for later features (gateway, storage, resources, scale-out) slot in as new fields of ``Config``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pangeohub.config.auth import GithubAuth, LdapAuth, SharedAuth, SignupAuth
from pangeohub.config.backup import BackupSection
from pangeohub.config.budgets import BudgetsSection
from pangeohub.config.content import ContentSource, check_content
from pangeohub.config.environments import Environment, check_unique
from pangeohub.config.base import LINUX_NAME_MAX, LINUX_NAME_RE, Port, Section, check_port  # noqa: F401
from pangeohub.config.gateway import GatewaySection
from pangeohub.config.https import HttpsSection, check_domain
from pangeohub.config.kubernetes import KubernetesSection
from pangeohub.config.monitoring import MonitoringSection
from pangeohub.config.resources import HomesSection, LimitsSection, Profile, SharedSection, default_profiles
from pangeohub.config.storage import StorageSection
from pangeohub.config.target import TargetSection
from pangeohub.config.usage import CostsSection, UsageSection
from pangeohub.config.versions import CURRENT as CONFIG_VERSION
from pangeohub.units import ByteSize, Duration


class HubSection(Section):
    ip: str = Field(
        "0.0.0.0",
        description="Address the public proxy listens on. 0.0.0.0 lets others on the network log in; "
        "use 127.0.0.1 to keep the platform private to this machine.",
    )
    port: Port = Field(8000, description="Public port people open in their browser (served by the proxy) when "
                       "HTTPS is off; with HTTPS on, the proxy serves hub.https.port instead.")
    domain: str | None = Field(
        None,
        description="DNS name people reach the hub at, e.g. hub.example.org; 'auto' makes "
        "pangeo.<dashed-public-address>.sslip.io from this machine's public address. Setting it turns on HTTPS "
        "with an ACME certificate unless hub.https.mode says otherwise.",
    )
    https: HttpsSection = Field(default_factory=HttpsSection)
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
        100, ge=1, description="Most servers that may be starting at the same time; others wait in a first "
        "come, first served queue (their spawn page shows their place and an estimate), never refused.",
    )
    max_servers: int | None = Field(
        None, ge=1, description="Most servers running (or starting) at once; a spawn past it is refused with a "
        "message that the hub is full and when to try again. Default on the local target: what this machine's "
        "memory holds, (total memory - 2 GiB for the platform's services) / hub.memory_per_person; no bound "
        "on Slurm and Kubernetes, whose schedulers queue servers themselves.",
    )
    memory_per_person: ByteSize = Field(
        "50M", description="Memory counted per running server when the local target works out how many people "
        "the machine holds (hub.max_servers). The default is what the platform itself needs per person, "
        "measured: a forked server, its kernel forker and one kernel take ~45 MiB (docs/capacity.md). Raise "
        "it to keep room for people's work, e.g. 500M for a workshop with small datasets.",
    )
    fast_spawn: bool = Field(
        True,
        description="Start user servers by forking a process that has already imported JupyterLab "
        "(~10x faster, less memory per server) instead of starting a fresh Python each time. Servers run "
        "as the same account with the same environment and limits; spawns that set Python's import-time "
        "variables or a custom command start a fresh process anyway.",
    )
    fast_kernels: bool = Field(
        True,
        description="In servers started by fast spawn, start Python kernels by forking a process that has "
        "already imported ipykernel (less than half the CPU per kernel) instead of a fresh Python. Kernels run with "
        "the same account, limits, environment, working directory and sys.path; kernels of other languages "
        "or Pythons, or whose environment sets Python's startup variables, start a fresh process anyway.",
    )

    _ports = field_validator("port", "internal_port", "proxy_api_port")(check_port)
    _domain = field_validator("domain")(check_domain)

    @property
    def tls_mode(self) -> str:
        """'acme', 'files' or 'off': the mode given, else ACME when there is a domain."""
        return self.https.mode or ("acme" if self.domain else "off")

    @model_validator(mode="after")
    def _acme_needs_domain(self) -> "HubSection":
        if self.tls_mode != "off" and not self.domain:
            raise ValueError(f"https.mode '{self.tls_mode}' needs hub.domain: a certificate is for a name, and "
                             "people's URLs use it, e.g. domain: hub.example.org")
        if self.tls_mode == "acme" and not self.https.acme.email:
            raise ValueError(f"HTTPS for {self.domain} through ACME needs a contact e-mail for the CA account: set "
                             "hub.https.acme.email (e.g. admin@example.org), or choose hub.https.mode 'files' or 'off'")
        return self

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
    umask: str = Field(
        "077", pattern=r"^0?[0-7]{3}$",
        description="File-creation mask of servers, kernels and Dask processes (octal). The default 077 makes "
        "new files private to their owner wherever they are written, /tmp included; shared folders still give "
        "their files to everyone through their default ACL.",
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
        10, ge=1, description="Failed logins for one name from one client address within `failed_login_window` "
        "before that address is locked for the name (1 minute, doubling with each further failure, up to the window)."
    )
    failed_login_window: Duration = Field("15m", description="Window for counting failed logins.")
    refresh_interval: Duration = Field(
        "5m", description="How often the hub checks again, while a person uses it, that they may still log in "
        "(account expired or locked, LDAP group or GitHub organisation left): someone who may not is ended "
        "everywhere at once (sessions, tokens, servers, processes). LDAP checks need a directory the hub can "
        "search (auth.ldap.search_user_dn, or anonymous reads).",
    )
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



class Config(Section):
    """Everything an operator can set. An empty file (or none) gives a working platform."""

    version: int = Field(
        CONFIG_VERSION, ge=1, le=CONFIG_VERSION,
        description="Version of the option names the file uses; a file without it is version 1. Older files "
        "are read with a notice per renamed option; `pangeohub config migrate` (and the installer, on upgrade) "
        "rewrites them, keeping a copy of the old file.",
    )
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
        default_factory=default_profiles,
        description="Hardware profiles people choose from when their server starts; the first one they may "
        "use is the default.",
    )
    limits: LimitsSection = Field(default_factory=LimitsSection)
    homes: HomesSection = Field(default_factory=HomesSection)
    shared: SharedSection = Field(default_factory=SharedSection)
    storage: StorageSection = Field(default_factory=StorageSection)
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    kubernetes: KubernetesSection = Field(default_factory=KubernetesSection)
    backup: BackupSection = Field(default_factory=BackupSection)
    target: TargetSection = Field(default_factory=TargetSection)
    environments: list[Environment] = Field(
        default_factory=list,
        description="Named software environments built by `pangeohub env build` into install_dir/envs/NAME; each "
        "is a kernel 'Python (NAME)' for the people it allows, and Dask clusters started from it run it too.",
    )
    content: list[ContentSource] = Field(
        default_factory=list,
        description="Workshop material: git repositories pulled into the home of each person they are for when "
        "their server starts, with nbgitpuller's merge rules (a person's edits are never overwritten; upstream "
        "changes arrive at the next start). `pangeohub content sync` pulls now for everyone running.",
    )
    usage: UsageSection = Field(default_factory=UsageSection)
    costs: CostsSection = Field(default_factory=CostsSection)
    budgets: BudgetsSection = Field(default_factory=BudgetsSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)

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

    _environments = field_validator("environments")(check_unique)
    _content = field_validator("content")(check_content)

    @model_validator(mode="after")
    def _content_within_start_timeout(self) -> "Config":
        if not self.content:
            return self
        total = sum(c.timeout for c in self.content)
        # The pulls run inside the spawn, whose clock (hub.start_timeout) the server's own start needs too.
        if total > self.hub.start_timeout / 2:
            raise ValueError(f"the content timeouts add up to {total:g}s, more than half of hub.start_timeout "
                             f"({self.hub.start_timeout:g}s), which the server's own start needs too: a slow "
                             "repository could fail the spawn instead of being skipped; lower content[].timeout or "
                             "raise hub.start_timeout")
        return self

    @model_validator(mode="after")
    def _profile_environments(self) -> "Config":
        bases = {env.name: env.base for env in self.environments}
        for profile in self.profiles:
            if profile.environment is None:
                continue
            if profile.environment not in bases:
                raise ValueError(f"profile '{profile.name}' names environment '{profile.environment}', which is not "
                                 f"in `environments` ({', '.join(bases) or 'none configured'}): add it or fix the name")
            if bases[profile.environment] != "pangeo":
                raise ValueError(f"profile '{profile.name}' runs its server in environment '{profile.environment}', "
                                 "which has base none: a server needs the default stack (JupyterLab); use base pangeo")
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> "Config":
        ports = {
            "hub.port": self.hub.port,
            "hub.internal_port": self.hub.internal_port,
            "hub.proxy_api_port": self.hub.proxy_api_port,
        }
        if self.hub.tls_mode != "off":
            ports.update({"hub.https.port": self.hub.https.port, "hub.https.http_port": self.hub.https.http_port})
        if self.usage.enabled:
            ports["usage.port"] = self.usage.port
        if self.monitoring.prometheus:
            ports["monitoring.port"] = self.monitoring.port
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
    def _budgets_enforceable(self) -> "Config":
        if self.budgets.any:
            check_budgets_enforceable(self)
        if self.budgets.uses_money() and not self.costs.priced:
            raise ValueError("budgets in money need prices: set costs.prices (e.g. core_hour: 0.05) or "
                             "costs.machine_monthly, or give the budgets in core_hours")
        return self

    @model_validator(mode="after")
    def _monitoring_needs_usage(self) -> "Config":
        if self.monitoring.prometheus and not self.usage.enabled:
            raise ValueError("monitoring.prometheus scrapes the usage service's metrics endpoint, which runs only with "
                             "usage.enabled: true: turn usage on, or monitoring.prometheus off")
        if self.monitoring.prometheus and self.target.kind == "kubernetes":
            raise ValueError("monitoring.prometheus runs Prometheus beside `pangeohub up`, which does not run on "
                             "target.kind kubernetes: scrape the hub's /hub/metrics with the cluster's own Prometheus, "
                             "and set monitoring.prometheus: false")
        return self

    @model_validator(mode="after")
    def _slurm_address(self) -> "Config":
        if self.target.kind == "slurm" and self.target.slurm.address is None:
            raise ValueError("target.slurm.address is required with target.kind slurm: this machine's address "
                             "on the cluster network, which compute nodes connect to (e.g. 10.0.0.5)")
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


def check_budgets_enforceable(config: "Config") -> None:
    """Budgets are held against measured use: a budget nothing measures would never refuse anything (shared
    with `pangeohub users budget`)."""
    if config.target.kind != "local":
        raise ValueError(f"budgets need measured use, which target.kind {config.target.kind} does not record yet "
                         "(the local target measures it from cgroups): remove the budgets section")
    if not config.usage.enabled:
        raise ValueError("budgets are held against the usage record: set usage.enabled true, or remove the budgets")
    if not config.limits.enforce:
        raise ValueError("budgets need the CPU each person uses, measured through cgroups: set limits.enforce true, "
                         "or remove the budgets")
