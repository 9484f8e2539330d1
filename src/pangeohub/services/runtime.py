"""What every part of a running platform needs to know: the config, the state paths, the install layout."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pangeohub.config import Config
from pangeohub.errors import PangeoError
from pangeohub.paths import StatePaths
from pangeohub.secrets import ensure_secret


@dataclass
class Runtime:
    config: Config
    config_file: Path | None = None
    debug: bool = False
    _services: list = field(default_factory=list, repr=False)

    @cached_property
    def paths(self) -> StatePaths:
        return StatePaths(self.config.state_dir)

    def python_bin(self, name: str) -> Path:
        """An executable of the runtime environment: the one the CLI runs in, else the install dir."""
        here = Path(sys.executable).parent / name
        if here.exists():
            return here
        installed = self.config.install_dir / "bin" / name
        if installed.exists():
            return installed
        raise PangeoError(
            f"{name} is not installed (looked in {here.parent} and {installed.parent})",
            "run the installer: sudo python3 install.py",
        )

    def node_bin(self, name: str) -> Path:
        candidate = self.config.install_dir / "node" / "node_modules" / ".bin" / name
        if candidate.exists():
            return candidate
        found = shutil.which(name)
        if found:
            return Path(found)
        raise PangeoError(f"{name} is not installed", "run the installer: sudo python3 install.py")

    def secret(self, name: str) -> str:
        return ensure_secret(self.paths.secret(name))

    @cached_property
    def target(self):
        """Where people's servers and clusters run (``pangeohub.targets``), as ``target.kind`` says."""
        from pangeohub.targets import get_target

        return get_target(self.config)

    @property
    def hub_api(self) -> str:
        return self.target.addresses().hub_api

    @property
    def public_url(self) -> str:
        hub = self.config.hub
        if hub.public_url:
            return hub.public_url.rstrip("/") + "/"
        if hub.tls_mode != "off":
            from pangeohub.tls.domain import domain
            from pangeohub.tls.web import https_base

            return https_base(domain(self.config), hub.https.port) + "/"
        host = "127.0.0.1" if hub.ip in ("127.0.0.1", "::1") else _hostname()
        return f"http://{host}:{hub.port}/"

    @property
    def local_url(self) -> str:
        """The proxy as seen from this machine (tools and tests use it)."""
        if self.config.hub.tls_mode != "off":  # the certificate names the domain, not a loopback address
            return self.public_url.rstrip("/")
        ip = self.config.hub.ip
        host = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
        return f"http://{host}:{self.config.hub.port}"

    def services(self) -> list:
        """Services in start order; stopped in reverse."""
        if not self._services:
            from pangeohub.services.hub import HubService
            from pangeohub.services.proxy import ProxyService

            services = [ProxyService(self)]
            if self.config.hub.tls_mode != "off":
                from pangeohub.services.tls import TlsService

                services.insert(0, TlsService(self))  # port 80: challenges and the redirect to HTTPS
            if self.config.storage.mode == "embedded":
                from pangeohub.services.objectstore import ObjectStoreService

                services.append(ObjectStoreService(self))  # before the hub: its spawn hooks make identities
            if self.config.gateway.enabled:
                from pangeohub.services.gateway import GatewayService

                # Before the hub: the hub blocks ~30 s at start when a service with a `url` does not answer.
                services.append(GatewayService(self))
            services.extend(self.target.services(self))  # what the execution target runs here
            services.append(HubService(self))
            if self.config.monitoring.prometheus and self.config.usage.enabled:
                from pangeohub.services.prometheus import PrometheusService

                services.append(PrometheusService(self))  # after the hub, which runs what it scrapes
            self._services = services
        return self._services

    def jobs(self) -> list[tuple[str, list[str]]]:
        """One-shot tasks run in the background once every service is up: (name, pangeohub subcommand)."""
        jobs = [("catalog", ["catalog", "init"])]
        if self.config.environments:  # people get the kernels once built; nobody waits for it at start
            jobs.append(("environments", ["env", "build", "--missing"]))
        return jobs + ([("backup", ["backup", "schedule"])] if self.config.backup.schedule else [])

    def service(self, name: str):
        for svc in self.services():
            if svc.name == name:
                return svc
        known = ", ".join(s.name for s in self.services())
        raise PangeoError(f"no service named {name!r}", f"one of: {known}")


def _hostname() -> str:
    import socket

    return socket.getfqdn() or "localhost"
