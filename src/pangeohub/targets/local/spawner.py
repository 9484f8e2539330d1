"""PangeoSpawner: the local target's spawner, a LocalProcessSpawner that runs hub user ``alice`` as Linux
account ``<prefix>alice``.

Upstream runs each server as the Linux account named exactly like the hub user, which would let a hub user
called ``daemon`` spawn as uid 1, and requires the accounts to exist. Here the account is created on first
spawn (private 0700 home), and every place upstream looks up ``self.user.name`` in the password database
uses the mapped account instead.
"""

from __future__ import annotations

import asyncio
import os
import pwd

from traitlets import Dict

from pangeohub.config import Config
from pangeohub.config.model import UsersSection
from pangeohub.gateway.userenv import record_server_environ
from pangeohub.hub.serverproof import ProvenStart
from pangeohub.names import system_name
from pangeohub.resources.spawner import ResourcesMixin
from pangeohub.runtime import Runtime
from pangeohub.targets.local.fastspawn import ForkLaunch


# LocalProcessSpawner, forking from a pre-imported server when it can, with profiles and cgroup limits; ready
# only once the server has proven it is this person's own (ProvenStart), on another port if need be.
class PangeoSpawner(ResourcesMixin, ProvenStart, ForkLaunch):
    settings = Dict(help="pangeohub's effective config (all sections), as rendered by pangeohub.").tag(config=True)

    @property
    def runtime(self) -> Runtime:
        """The platform's config, paths and secrets, for spawn hooks."""
        if self._runtime is None:
            self._runtime = Runtime(config=Config.model_validate(self.settings))
        return self._runtime

    _runtime: Runtime | None = None

    @property
    def users_config(self) -> UsersSection:
        return self.runtime.config.users

    @property
    def install_bin(self) -> str:
        return str(self.runtime.config.install_dir / "bin")

    @property
    def system_user(self) -> str:
        return system_name(self.user.name, self.users_config.system_prefix)

    def make_preexec_fn(self, name):
        return super().make_preexec_fn(self.system_user)

    def user_env(self, env):
        entry = pwd.getpwnam(self.system_user)
        env["USER"] = env["LOGNAME"] = entry.pw_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell
        return env

    _hook_env: dict = {}

    def get_env(self):
        env = super().get_env()
        env.update(self._hook_env)
        path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        if self.install_bin not in path.split(os.pathsep):
            env["PATH"] = os.pathsep.join([self.install_bin, path])
        return env

    async def start(self):
        loop = asyncio.get_running_loop()
        target = self.runtime.target
        account = await loop.run_in_executor(None, target.account, self.user.name)
        # Upstream's start() reads get_env(), which must stay synchronous: hooks run first, get_env merges.
        self._hook_env = await target.provision(self, account)
        record_server_environ(self.runtime.config.state_dir, self.user.name, self._hook_env)
        return await super().start()
