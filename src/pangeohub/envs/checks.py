"""What the config cannot check alone: a group named by an environment that nobody belongs to."""

from __future__ import annotations

from pangeohub.errors import PangeoError


def known_groups(rt) -> set[str] | None:
    """Every group a person can be in, or None where the groups live elsewhere (LDAP, GitHub teams)."""
    if rt.config.auth.mode not in ("password", "signup", "shared"):
        return None
    from pangeohub.accounts import AccountStore

    groups = set(rt.config.auth.admin_groups)
    path = rt.paths.accounts_db
    if path.exists():
        for account in AccountStore(path).list():
            groups.update(account.groups)
    for profile in rt.config.profiles:  # a group the admin plans for elsewhere in the config is known too
        groups.update(profile.groups)
    return groups


def check_groups(rt, specs) -> None:
    groups = known_groups(rt)
    if groups is None:
        return
    for spec in specs:
        unknown = sorted(set(spec.groups) - groups)
        if unknown:
            raise PangeoError(
                f"environment '{spec.name}': groups names {', '.join(repr(g) for g in unknown)}, which no person "
                f"belongs to (known groups: {', '.join(sorted(groups)) or 'none'})",
                f"correct the name, or put people in it: pangeohub users add NAME --group {unknown[0]}")
