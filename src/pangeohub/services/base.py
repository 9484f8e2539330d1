"""One class per supervised process: how to prepare it, the command, its environment, and its readiness probe.

Subclasses override ``command`` and ``probe``; ``prepare`` (write rendered files) and ``before_stop``
(drain work) are optional. The supervisor owns the process lifecycle; services only describe themselves.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path


class Service:
    name: str = ""
    #: Restart automatically when it dies. Only for services whose restart loses nothing users rely on.
    restartable: bool = True
    #: Seconds to wait for readiness after start.
    start_timeout: float = 60.0
    #: Seconds between SIGTERM and SIGKILL.
    stop_timeout: float = 10.0
    #: Restart the services listed after this one when it restarts (they may hold state about it).
    restart_dependants: bool = True
    #: Start only once every service listed before this one is ready (others start side by side).
    needs_earlier_services: bool = False
    #: Whether a later service with ``needs_earlier_services`` waits for this one. False for a service nothing
    #: needs while it starts, only once people come: it starts side by side with them, and `up` still waits for
    #: it before it says the platform is up.
    needed_by_later_services: bool = True

    def __init__(self, runtime):  # a pangeohub.services.runtime.Runtime (which lists the services)
        self.rt = runtime

    @property
    def port(self) -> int | None:
        return None

    def prepare(self) -> None:
        """Write whatever the process reads at start (rendered config). Called before every (re)start."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        # A fixed PATH, not the operator's: user servers inherit the hub's, and it should name only the
        # platform's runtime and the system directories (not, say, a root-only pyenv).
        system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return {"PATH": f"{self.rt.config.install_dir / 'bin'}:{system}", "LANG": "C.UTF-8"}

    def cwd(self) -> Path:
        return self.rt.paths.root

    def probe(self) -> bool:
        """True when the service answers as healthy. Must be quick and never raise."""
        raise NotImplementedError

    def after_ready(self) -> None:
        """Called once the probe first succeeds after each (re)start, before the service counts as running."""

    def after_restart(self) -> None:
        """Called once ready after the supervisor restarted it because it died (never at `up`): put back what
        the services after it held about the dead process, for a service that does not restart them."""

    def before_stop(self) -> None:
        """Called while every service still runs, just before this one is stopped."""


def http_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
