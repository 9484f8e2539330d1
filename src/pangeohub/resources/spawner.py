"""The resources part of the spawners: profile choice (form and API), and on this machine the user's cgroup.

Mixins, so that a spawner module stays a thin list of features. ``ProfilesMixin`` is every target's (it uses
JupyterHub 5.3+'s ``apply_user_options``, which runs for form and API spawns alike and turns an HTTPError into
the reply the person sees, rather than parsing options in ``start()``); ``ResourcesMixin`` adds entering the
cgroup, which only a server started on this machine does.
"""

from __future__ import annotations

import os

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import HasTraits, default

from pangeohub.resources import profiles
from pangeohub.resources.cgroups import enter_user_cgroup


class ProfilesMixin(HasTraits):  # not a Spawner: see pangeohub.hub.platformspawner; its @default handlers register
    profile = None  # the chosen config.Profile, set by apply_user_options before start()

    def _groups(self) -> set[str]:
        return {group.name for group in getattr(self.user, "groups", [])}

    async def get_options_form(self):
        current = (self.orm_spawner.user_options or {}).get("profile") if self.orm_spawner else None
        return profiles.options_form(self.runtime.config, self._groups(), bool(self.user.admin), current)

    def options_from_form(self, formdata):
        """One value per field, as the API takes them: upstream keeps the form's lists (`['large']`)."""
        return {key: value[0] if isinstance(value, list) and len(value) == 1 else value
                for key, value in formdata.items()}

    @default("apply_user_options")
    def _apply_profile_default(self):
        return _apply_profile


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


def _apply_profile(spawner, user_options):
    try:
        spawner.profile = profiles.choose(
            spawner.runtime.config, user_options, spawner._groups(), bool(spawner.user.admin))
    except profiles.ProfileError as exc:
        raise web.HTTPError(400, str(exc), reason=str(exc)) from None
