"""What every target's spawner does around upstream's start: the platform's config, the person's account and
the spawn hooks (``Target.provision``), whose environment the server gets.

A mixin over JupyterHub's ``Spawner``: the local target puts it over ``LocalProcessSpawner``, the Slurm target
over batchspawner's ``SlurmSpawner``. The rendered hub config gives ``settings`` under the spawner's own class
name (pangeohub.render.hub).
"""

from __future__ import annotations

import asyncio
import functools
import os

from traitlets import Dict, HasTraits

from pangeohub.config import Config
from pangeohub.gateway.userenv import record_server_environ
from pangeohub.hub.queuedstart import QueuedStart
from pangeohub.services.runtime import Runtime


# HasTraits, not Spawner: JupyterHub refuses a Spawner subclass without its own start/stop/poll, and a
# mixin must leave those to the spawner it joins (its traits and @default handlers still register).
# QueuedStart: spawns over hub.concurrent_spawn_limit wait their turn instead of upstream's 429.
class PlatformSpawner(QueuedStart, HasTraits):
    settings = Dict(help="pangeohub's effective config (all sections), as rendered by pangeohub.").tag(config=True)

    _runtime: Runtime | None = None
    _hook_env: dict = {}
    account = None  # the person's pwd entry, once start() has it (Target.account)

    @property
    def runtime(self) -> Runtime:
        """The platform's config, paths and secrets, for spawn hooks."""
        if self._runtime is None:
            self._runtime = Runtime(config=Config.model_validate(self.settings))
        return self._runtime

    @property
    def install_bin(self) -> str:
        return str(self.runtime.config.install_dir / "bin")

    def get_env(self):
        env = super().get_env()
        env.update(self._hook_env)
        path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        if self.install_bin not in path.split(os.pathsep):
            env["PATH"] = os.pathsep.join([self.install_bin, path])
        return env

    async def start(self):
        try:
            return await self._provision_and_start()
        finally:
            self.leave_spawn_queue()  # success, failure or timeout: the next person in the queue may start

    async def _provision_and_start(self):
        loop = asyncio.get_running_loop()
        target = self.runtime.target
        self.account = await loop.run_in_executor(None, target.account, self.user.name)
        # Upstream's start() reads get_env(), which must stay synchronous: hooks run first, get_env merges.
        from pangeohub.hub.hooks import provision

        self._hook_env = await provision(self, self.account, target)
        # A file written as root beside the hub's state: off the event loop, like the account lookup above.
        await loop.run_in_executor(None, functools.partial(
            record_server_environ, self.runtime.config.state_dir, self.user.name, self._hook_env,
            reader=target.gateway_account()))
        return await super().start()
