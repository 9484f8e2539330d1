"""Profile choice for every target's spawner: the form, and the choice checked for form and API spawns alike.

A mixin, so that a spawner module stays a thin list of features. It uses JupyterHub 5.3+'s
``apply_user_options``, which runs for form and API spawns alike and turns an HTTPError into the reply the
person sees, rather than parsing options in ``start()``.
"""

from __future__ import annotations

from tornado import web
from traitlets import HasTraits, default

from pangeohub.resources import profiles


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


def _apply_profile(spawner, user_options):
    try:
        spawner.profile = profiles.choose(
            spawner.runtime.config, user_options, spawner._groups(), bool(spawner.user.admin))
    except profiles.ProfileError as exc:
        raise web.HTTPError(400, str(exc), reason=str(exc)) from None
