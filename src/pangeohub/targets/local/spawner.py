"""PangeoSpawner: the local target's spawner, a LocalProcessSpawner that runs hub user ``alice`` as Linux
account ``<prefix>alice``.

Upstream runs each server as the Linux account named exactly like the hub user, which would let a hub user
called ``daemon`` spawn as uid 1, and requires the accounts to exist. Here the account is created on first
spawn (private 0700 home), and every place upstream looks up ``self.user.name`` in the password database
uses the mapped account instead.
"""

from __future__ import annotations

import pwd

from pangeohub.config.model import UsersSection
from pangeohub.hub.platformspawner import PlatformSpawner
from pangeohub.hub.serverproof import ProvenStart
from pangeohub.hub.spawnqueue import machine_capacity
from pangeohub.names import system_name
from pangeohub.targets.local.fastspawn import ForkLaunch
from pangeohub.targets.local.resources import ResourcesMixin

# What the platform's own services keep: fork server, hub and proxy (~370 MiB, docs/capacity.md), the object
# store (storage.memory_limit, 1G by default) and the system itself.
PLATFORM_RESERVE = 2 << 30


# LocalProcessSpawner, forking from a pre-imported server when it can, with profiles and cgroup limits; ready
# only once the server has proven it is this person's own (ProvenStart), on another port if need be.
class PangeoSpawner(PlatformSpawner, ResourcesMixin, ProvenStart, ForkLaunch):
    @property
    def users_config(self) -> UsersSection:
        return self.runtime.config.users

    @property
    def system_user(self) -> str:
        return system_name(self.user.name, self.users_config.system_prefix)

    def server_capacity(self) -> int | None:
        # Every server runs on this machine: its memory bounds how many may run (hub.max_servers overrides).
        hub = self.runtime.config.hub
        return hub.max_servers or machine_capacity(hub.memory_per_person, PLATFORM_RESERVE)

    def make_preexec_fn(self, name):
        return super().make_preexec_fn(self.system_user)

    def user_env(self, env):
        entry = pwd.getpwnam(self.system_user)
        env["USER"] = env["LOGNAME"] = entry.pw_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell
        return env
