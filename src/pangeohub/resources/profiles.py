"""Hardware profiles: which a person may choose, the spawn page's form, and checking a choice.

JupyterHub hands the choice over as ``user_options`` ({"profile": "small"}), from the spawn page's form or
the REST API alike; :func:`choose` is the one place that checks it, so both paths give the same answers.
"""

from __future__ import annotations

from html import escape

from pangeohub.units import format_size


class ProfileError(ValueError):
    """The person asked for a profile they may not use; the message says which ones they may."""


def allowed(config, groups: set[str], admin: bool) -> list:
    """Profiles this person may use, in config order (admins may use every profile)."""
    return [p for p in config.profiles if admin or not p.groups or groups & set(p.groups)]


def choose(config, user_options: dict | None, groups: set[str], admin: bool):
    """The profile ``user_options`` asks for, else the first one the person may use."""
    options = dict(user_options or {})
    usable = allowed(config, groups, admin)
    if not usable:
        raise ProfileError("no hardware profile is open to you (each is limited to some groups); "
                           "ask an administrator to add you to one of their groups")
    unknown = sorted(k for k in set(options) - {"profile"} if not k.startswith("_"))  # _xsrf and the like
    if unknown:
        raise ProfileError(f"unknown server option(s) {', '.join(unknown)}; the only option is 'profile'")
    wanted = options.get("profile")
    if isinstance(wanted, list) and len(wanted) == 1:  # straight from an HTML form
        wanted = wanted[0]
    if wanted in (None, ""):
        return usable[0]
    names = ", ".join(p.name for p in usable)
    if not isinstance(wanted, str):
        raise ProfileError(f"profile must be a name (one of: {names}), not {wanted!r}")
    for profile in config.profiles:
        if profile.name == wanted:
            if profile not in usable:
                raise ProfileError(f"profile {wanted!r} is limited to the groups {', '.join(profile.groups)}; "
                                   f"you may use: {names}")
            return profile
    raise ProfileError(f"there is no profile {wanted!r}; you may use: {names}")


def summary(profile) -> str:
    cpus = f"{profile.cpus:g} CPU" + ("" if profile.cpus == 1 else "s")
    return f"{cpus}, {format_size(profile.memory)} memory"


def options_form(config, groups: set[str], admin: bool, current: str | None = None, notice: str = "",
                 refused: set[str] = frozenset()) -> str:
    """Radio buttons, one per profile the person may use (JupyterHub wraps them in its form); ``notice`` (a
    budget's) is shown above them, and ``refused`` profiles are shown but cannot be chosen."""
    usable = allowed(config, groups, admin)
    if not usable:
        return ""
    open_names = [p.name for p in usable if p.name not in refused] or [usable[0].name]
    selected = current if current in open_names else open_names[0]
    rows = []
    for profile in usable:
        checked = " checked" if profile.name == selected else ""
        if profile.name in refused:
            checked = " disabled"
        label = escape(", ".join(filter(None, [profile.description or summary(profile), profile.environment and
                                                 f"environment {profile.environment}"])))
        if profile.name in refused:
            label += " (refused while the budget is used up)"
        rows.append(
            f'<div class="form-check">'
            f'<input class="form-check-input" type="radio" name="profile" id="profile-{escape(profile.name)}" '
            f'value="{escape(profile.name)}"{checked}>'
            f'<label class="form-check-label" for="profile-{escape(profile.name)}">'
            f'<strong>{escape(profile.name)}</strong> &mdash; {label}</label></div>'
        )
    banner = f'<div class="alert alert-warning pangeohub-budget-notice" role="alert">{escape(notice)}</div>' if notice else ""
    return banner + '<fieldset><legend>Hardware profile</legend>' + "".join(rows) + "</fieldset>"
