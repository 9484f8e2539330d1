"""The fork server (``pangeohub.targets.local.forkserver``): pre-imported single-user servers, forked per spawn.

Supervised like every other process. It is listed before the hub, so that it stops after the hub has stopped
every user server (its children); the hub starts beside it (nothing of the hub's start asks it anything) and
`up` waits for both, so it is ready before the first spawn; if it dies, spawns fall back to a fresh process
until it is back. User servers it forked are in their own sessions: stopping or restarting it (or
the hub) leaves them running, as with the stock spawner, and restarting it does not restart the hub.
"""

from __future__ import annotations

from pangeohub.services.base import Service
from pangeohub.targets.local.forkclient import forkserver_socket


class ForkServerService(Service):
    name = "forkserver"
    start_timeout = 120.0  # importing JupyterLab takes a few seconds on a loaded machine
    restart_dependants = False  # the hub holds no state about it: it connects afresh for every spawn
    needed_by_later_services = False

    @property
    def socket(self):
        return forkserver_socket(self.rt.config.state_dir)

    def prepare(self) -> None:
        self.socket.unlink(missing_ok=True)  # a stale socket would look ready before the imports are done

    def command(self) -> list[str]:
        # -I: ignore PYTHON* variables and the user site, keep the current directory off sys.path.
        return [str(self.rt.python_bin("python")), "-I", "-m", "pangeohub.targets.local.forkserver", str(self.socket)]

    def env(self) -> dict[str, str]:
        # Children inherit this process's memory: give it nothing of the hub's (no tokens, no secrets).
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}

    def probe(self) -> bool:
        # The socket appears (by rename) only once every module is imported; see forkserver._listen.
        return self.socket.exists()
