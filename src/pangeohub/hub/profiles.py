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
        from pangeohub.budgets import enforce
        from pangeohub.budgets.ledger import blocking, noticed

        config = self.runtime.config
        current = (self.orm_spawner.user_options or {}).get("profile") if self.orm_spawner else None
        usable = profiles.allowed(config, self._groups(), bool(self.user.admin))
        if not usable:
            return ""
        states = await enforce.person_states_async(config, self.user.name, self._groups(), self.log)
        small = enforce.smallest(usable)
        shown = noticed(states, config.budgets.notice_percent)
        refused = set()
        if blocking(states):
            refused = {p.name for p in usable if enforce.larger(p, small)}
        return profiles.options_form(config, self._groups(), bool(self.user.admin), current,
                                     notice=shown.notice(small.name) if shown else "", refused=refused)

    def options_from_form(self, formdata):
        """One value per field, as the API takes them: upstream keeps the form's lists (`['large']`)."""
        return {key: value[0] if isinstance(value, list) and len(value) == 1 else value
                for key, value in formdata.items()}

    @default("apply_user_options")
    def _apply_profile_default(self):
        return _apply_profile


async def _apply_profile(spawner, user_options):
    from pangeohub.budgets import enforce
    from pangeohub.budgets.ledger import blocking

    config, groups, admin = spawner.runtime.config, spawner._groups(), bool(spawner.user.admin)
    try:
        spawner.profile = profiles.choose(config, user_options, groups, admin)
    except profiles.ProfileError as exc:
        raise web.HTTPError(400, str(exc), reason=str(exc)) from None
    over = blocking(await enforce.person_states_async(config, spawner.user.name, groups, spawner.log))
    if over is None:
        return
    small = enforce.smallest(profiles.allowed(config, groups, admin))
    if not (user_options or {}).get("profile"):
        spawner.profile = small  # nothing asked for: what the budget still allows
    elif enforce.larger(spawner.profile, small):
        message = enforce.profile_refusal(over, spawner.profile, small)
        spawner.log.warning("Budget: %s", message)
        # The reason travels in the HTTP status line, which holds no line breaks and little more than a line.
        raise web.HTTPError(400, message, reason="budget used up")
