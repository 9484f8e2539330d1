"""Every file the platform keeps, derived from one state directory (no import-time constants)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def run(self) -> Path:
        """Pidfiles and the supervisor's status file."""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def secrets(self) -> Path:
        """Generated secrets, 0700 directory of 0600 files."""
        return self.root / "secrets"

    @property
    def hub(self) -> Path:
        """The hub's working directory: its database and rendered config."""
        return self.root / "hub"

    @property
    def gateway(self) -> Path:
        """The Dask Gateway's home: its rendered config and database (0711: people reach their own clusters)."""
        return self.root / "gateway"

    @property
    def gateway_db(self) -> Path:
        return self.gateway / "gateway.sqlite"

    @property
    def gateway_clusters(self) -> Path:
        """Parent of every local cluster's private working directory (root-owned, 0711)."""
        return self.gateway / "clusters"

    @property
    def accounts_db(self) -> Path:
        return self.root / "accounts.sqlite"

    @property
    def usage_db(self) -> Path:
        """Hourly use per person (pangeohub.usage), kept across restarts and included in backups."""
        return self.root / "usage.sqlite"

    @property
    def budgets_db(self) -> Path:
        """Budgets set with `pangeohub users budget` (pangeohub.budgets), included in backups."""
        return self.root / "budgets.sqlite"

    @property
    def budget_notices(self) -> Path:
        """One file per person near or over a budget, readable by that person only (root's 0711 directory)."""
        return self.root / "budget-notices"

    @property
    def prometheus(self) -> Path:
        """The platform's Prometheus (monitoring.prometheus): config, service token, and ``data``."""
        return self.root / "prometheus"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisor.pid"

    @property
    def status_file(self) -> Path:
        return self.run / "status.json"

    def pidfile(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def secret(self, name: str) -> Path:
        return self.secrets / name

    def ensure(self) -> None:
        """Create the tree. The root stays traversable (0755) so that nothing secret may live at its top."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub, mode in ((self.run, 0o755), (self.logs, 0o700), (self.secrets, 0o700), (self.hub, 0o700)):
            sub.mkdir(exist_ok=True)
            sub.chmod(mode)
