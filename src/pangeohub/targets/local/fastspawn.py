"""Fast spawn: start a user's server by asking the fork server (``forkserver``) instead of exec'ing Python.

``ForkLaunch`` sits between PangeoSpawner and upstream's LocalProcessSpawner in the class hierarchy and replaces
only the Popen step of ``LocalProcessSpawner.start``: the account, the spawn hooks, the environment, the
arguments and the state (a pid) are upstream's and PangeoSpawner's, so poll, stop and a hub restart work the
same way for forked servers (they are ordinary processes of the user, signalled by pid).

It falls back to the stock path, with a log line saying why, wherever forking cannot give the same server:
fast spawn switched off (``hub.fast_spawn``), a different ``cmd`` or a ``shell_cmd``, environment variables
that change what Python or the single-user entry point would load, or no fork server answering.
"""

from __future__ import annotations

import resource
from pathlib import Path

import psutil
from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port

from pangeohub.gateway.userenv import usersite_pythonpath
from pangeohub.targets.local.forkclient import (
    IMPORT_TIME_ENV,
    RLIMITS,
    ForkUnavailable,
    ask,
    forkserver_socket,
)


class ForkLaunch(LocalProcessSpawner):
    """LocalProcessSpawner whose start() forks from the fork server when it can (see module docstring)."""

    async def start(self):
        """Ask the fork server for the process; waiting until it answers is ProvenStart's (it asks the port,
        backing off, until the server proves itself), as for a server started the stock way."""
        if self.port == 0:
            self.port = random_port()
        try:
            request = self.fork_request()
            self.log.info("Forking server for %s from the fork server", self.user.name)
            self.pid = await ask(self.fork_socket, request)
        except ForkUnavailable as why:
            self.log.info("Fast spawn does not apply to %s (%s): starting a fresh process", self.user.name, why)
            return await super().start()
        return (self.ip or "127.0.0.1", self.port)

    # -- what the fork server needs ------------------------------------------------------------------------
    @property
    def fork_socket(self) -> Path:
        return forkserver_socket(self.runtime.config.state_dir)

    def fork_request(self) -> dict:
        """The spawn as data; raises ForkUnavailable where only a fresh process can honour it."""
        config = self.runtime.config
        if not getattr(config.hub, "fast_spawn", False):
            raise ForkUnavailable("hub.fast_spawn is off")
        expected = [str(config.install_dir / "bin" / "jupyterhub-singleuser")]
        if list(self.cmd) != expected or self.shell_cmd:
            raise ForkUnavailable(f"custom command {self.shell_cmd + list(self.cmd)}")
        env = self.get_env()
        # The platform's own PYTHONPATH (root-owned sitecustomize that re-enables the user site) only matters to
        # the kernels the server starts, which read it from the environment as usual: it does not stop a fork.
        import_time = sorted(k for k in set(env) & set(IMPORT_TIME_ENV)
                             if not (k == "PYTHONPATH" and env[k] == usersite_pythonpath()))
        if import_time:
            raise ForkUnavailable(f"environment sets {', '.join(import_time)}")
        if not self.fork_socket.exists():
            raise ForkUnavailable(f"no fork server at {self.fork_socket}")
        return {
            "user": self.system_user,
            "argv": [*self.cmd, *self.get_args()],
            "env": env,
            "umask": int(config.users.umask, 8),
            "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in RLIMITS},
            "cgroup": self.fork_cgroup_args(),
            "fast_kernels": bool(getattr(config.hub, "fast_kernels", False)),
        }

    def fork_cgroup_args(self) -> dict:
        """Keyword arguments for ``pangeohub.targets.local.cgroups.enter_cgroup_files`` in the forked child."""
        return {"procs_files": []}

    # -- a forked server is not our child: poll it by pid, and do not mistake a zombie for a server ----------
    async def poll(self):
        status = await super().poll()
        if status is None and self.proc is None and self.pid:
            try:
                if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                    self.clear_state()
                    return 0
            except psutil.NoSuchProcess:
                self.clear_state()
                return 0
        return status
