"""The local target's part of its spawner: a server started on this machine enters the person's cgroup."""

from __future__ import annotations

import os

from jupyterhub.spawner import LocalProcessSpawner

from pangeohub.hub.profiles import ProfilesMixin
from pangeohub.targets.local.cgroups import enter_user_cgroup


class ResourcesMixin(ProfilesMixin, LocalProcessSpawner):
    cgroup = None  # the prepared UserCgroup (None when limits are off), set by the spawn hook

    def make_preexec_fn(self, name):
        drop_privileges = super().make_preexec_fn(name)
        cgroup = self.cgroup
        umask = int(self.runtime.config.users.umask, 8)

        def preexec():
            # Join the cgroup while still root (after the drop, cgroup.procs is not writable), and before exec:
            # the server and everything it forks are limited from their first instruction.
            enter_user_cgroup(cgroup)
            os.umask(umask)
            drop_privileges()

        return preexec

    def fork_cgroup_args(self) -> dict:
        """For servers forked by the fork server: the same cgroup, as plain data (the request is JSON)."""
        return {"procs_files": list(self.cgroup.procs_files) if self.cgroup else []}
