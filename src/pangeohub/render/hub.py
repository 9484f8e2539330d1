"""Render JupyterHub's config from ours: a pure function of (config, paths, secrets) to a traitlets dict.

The result is written as ``jupyterhub_config.json``; the hub loads our extensions (authenticator, spawner)
by import name, and each gets its settings through its own configurable traits.
"""

from __future__ import annotations

from dataclasses import dataclass

from pangeohub.auth.render import authenticator_class, render_auth
from pangeohub.config import Config
from pangeohub.paths import StatePaths
from pangeohub.render.gateway import hub_services
from pangeohub.targets import get_target
from pangeohub.tls.render import merge, render_https
from pangeohub.usage.render import usage_services

ADMIN_SERVICE = "pangeohub-admin"

@dataclass(frozen=True)
class HubSecrets:
    admin_service_token: str
    gateway_token: str = ""
    prometheus_token: str = ""  # the platform's Prometheus (monitoring.prometheus)


def render_hub_config(config: Config, paths: StatePaths, secrets: HubSecrets, public_url: str = "") -> dict:
    hub = config.hub
    extra_services, extra_roles = hub_services(config, secrets.gateway_token)
    usage_svc, usage_roles = usage_services(config, secrets.prometheus_token)
    extra_services, extra_roles = extra_services + usage_svc, extra_roles + usage_roles
    target = get_target(config)
    rendered = {
        "JupyterHub": {
            "bind_url": f"http://{_host(hub.ip)}:{hub.port}/",
            # Where servers reach the hub's API: loopback when they run here, the cluster address when they run
            # on compute nodes (never every interface). They are told the same URL (JUPYTERHUB_API_URL).
            "hub_bind_url": f"http://{_host(target.service_host())}:{hub.internal_port}",
            # User servers outlive the hub process: a hub restart (upgrade, config change) must not stop them.
            "cleanup_servers": False,
            "cleanup_proxy": False,
            "db_url": f"sqlite:///{paths.hub / 'jupyterhub.sqlite'}",
            # A database made by an older JupyterHub is brought to this one's schema at start, after upstream
            # copies the SQLite file (jupyterhub.sqlite.<date>); the installer runs `upgrade-db` first anyway.
            "upgrade_db": True,
            "cookie_secret_file": str(paths.secret("cookie_secret")),
            # SameSite=Lax on every hub cookie, and through the spawner (JUPYTERHUB_COOKIE_OPTIONS) on servers'
            # own: a form posted to the platform from another site carries no session, so cannot act as the
            # person. Not Strict: that would drop the session on every arrival by a link (mail, chat) and the
            # login state on the way back from an external login (GitHub), which are top-level GETs.
            "tornado_settings": {"cookie_options": {"SameSite": "Lax"}},
            "pid_file": str(paths.hub / "jupyterhub.pid"),
            "authenticator_class": authenticator_class(config),
            "spawner_class": target.spawner_class,
            # Upstream answers spawns over its limit with 429 "Too many users trying to log in right now"; our
            # spawners queue them instead (pangeohub.hub.spawnqueue, hub.concurrent_spawn_limit), so the hub's
            # own limit is off. Full machines are refused by the spawner with a message (hub.max_servers).
            "concurrent_spawn_limit": 0,
            "active_server_limit": 0,
            # Every token the hub is given is 256 random bits (pangeohub.secrets): checked with one hash, as the
            # hub's own tokens are, not stretched 16,384 times like a password (~3 ms per request made with one).
            "trust_user_provided_tokens": True,
            "services": [{"name": ADMIN_SERVICE, "api_token": secrets.admin_service_token}, *extra_services],
            "load_roles": [
                # The CLI runs as root and manages users, admins and tokens: it needs the hub's full admin role
                # (a narrower role cannot grant admin rights).
                {"name": "admin", "services": [ADMIN_SERVICE]},
                *extra_roles,
            ],
        },
        "ConfigurableHTTPProxy": {
            # The supervisor runs the proxy as its own process; the hub only talks to its API.
            "should_start": False,
            "api_url": f"http://127.0.0.1:{hub.proxy_api_port}",
        },
        "Spawner": {
            "cmd": [str(config.install_dir / "bin" / "jupyterhub-singleuser")],
            "default_url": hub.default_url,
            # JupyterLab's default "pypi" extension manager would pip-install into the shared, root-owned
            # environment, which users cannot write; it also costs ~0.2 s of CPU per server start (an SSL
            # context for PyPI). Read-only shows the installed extensions and offers no installs that fail.
            # Kernel ports come from a block of the account's own, outside the ephemeral range that upstream's
            # choice (bind port 0, close, let the kernel bind) shares with every outgoing connection: see
            # pangeohub.hub.kernelports. Without jupyter_client's port cache, a kernel that still could not
            # bind is restarted on fresh ports instead of on the taken one until it is declared dead.
            # jupyter-lsp (a JupyterLab dependency) looks for language servers at every start, running
            # `npm prefix -g` (~0.15 s of CPU per server); none is installed, so there is nothing to find.
            # Kernels listen on loopback ports anyone on the machine can connect to (and find, in
            # /proc/net/tcp): messages are signed, not encrypted, so anybody could subscribe to a kernel's
            # output stream and read everything it prints. CurveZMQ keys, made per kernel and kept in the
            # owner's 0600 connection file, close that; a kernel that cannot use them does not start (and the
            # person is told why: pangeohub.hub.kernelmanager).
            # jupyter-resource-usage's Prometheus gauges: every second each server walked every process on the
            # machine (psutil's children() reads /proc/*/stat) to update gauges nobody scrapes here, a cost
            # that grows with servers x processes (400 idle servers held both cores busy). JupyterLab's
            # memory display asks /api/metrics/v1 on its own, only while a page is open.
            # The provisioner also forks kernels in servers that have a kernel forker (pangeohub.targets.local.kernelfork).
            # JupyterLab's update check (a request to PyPI at every load) is replaced by the person's budget
            # notice, shown as a JupyterLab notification (pangeohub.budgets.labnotice).
            "args": ["--LabApp.extension_manager=readonly", "--KernelManager.cache_ports=False",
                     "--LabApp.check_for_updates_class=pangeohub.budgets.labnotice.BudgetNotice",
                     "--LanguageServerManager.autodetect=False",
                     "--ResourceUseDisplay.enable_prometheus_metrics=False",
                     "--KernelProvisionerFactory.default_provisioner_name=pangeohub",
                     "--MappingKernelManager.transport_encryption=required",
                     "--MappingKernelManager.kernel_manager_class=pangeohub.hub.kernelmanager.PangeoKernelManager"],
            "start_timeout": int(hub.start_timeout),
            "http_timeout": int(hub.start_timeout),
        },
        # The spawner's own section, by its class name: every target's spawner reads the platform's config here.
        target.spawner_class.rsplit(".", 1)[-1]: {
            "settings": config.model_dump(mode="json"),
        },
    }
    for section, values in render_auth(config, paths).items():
        target = rendered.setdefault(section, {})
        for key, value in values.items():
            target[key] = target[key] + value if isinstance(target.get(key), list) else value
    return merge(rendered, render_https(config, public_url))


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
