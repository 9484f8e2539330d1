"""The admin commands against a remote hub (``--hub-url``): what the hub's REST API can do, and nothing else.

Each function is the remote half of the command of the same name (cli/users.py, cli/platform.py); the local
half keeps working on this machine's state dir. The token is checked to be an admin's before anything is done.
"""

from __future__ import annotations

import json

import typer

from pangeohub.errors import PangeoError
from pangeohub.remote import RemoteHub, not_remote, require_admin

EXEC = "pangeohub exec kubernetes --"


def _api(hub: RemoteHub):
    api = hub.api()
    require_admin(api)
    return api


def users_list(hub: RemoteHub, as_json: bool) -> None:
    rows = [{
        "name": user["name"],
        "admin": bool(user.get("admin")),
        "groups": sorted(user.get("groups", [])),
        "server": "running" if user.get("servers") else "stopped",
        "last_activity": user.get("last_activity"),
    } for user in sorted(_api(hub).users(), key=lambda u: u["name"])]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'NAME':<20} {'ADMIN':<6} {'SERVER':<8} {'GROUPS':<20} LAST ACTIVITY")
    for row in rows:
        typer.echo(f"{row['name']:<20} {'yes' if row['admin'] else '':<6} {row['server']:<8} "
                   f"{','.join(row['groups']) or '-':<20} {row['last_activity'] or '-'}")


def users_add(hub: RemoteHub, name: str, admin: bool, password_stdin: bool, groups: list[str]) -> None:
    if password_stdin:
        raise not_remote(f"users add {name} --password-stdin",
                         "a password lives in the account store on the hub's own disk, which its REST API does "
                         "not reach")
    if groups:
        raise not_remote(f"users add {name} " + " ".join(f"--group {g}" for g in groups), "groups are set by the hub's login (account store, LDAP, "
                         "GitHub teams) at each login, so a group given here would not last")
    from pangeohub.names import LINUX_NAME_RE

    if not LINUX_NAME_RE.match(name):  # the rest of check_username looks at this machine's accounts: not here
        raise PangeoError(f"username {name!r} is not allowed: use lowercase letters, digits, '-' and '_', "
                          "starting with a letter", "pick a name like 'alice' or 'j_smith'")
    api = _api(hub)
    if api.user(name) is not None:
        raise PangeoError(f"the hub at {hub.base} already has a user named {name!r}", "see `pangeohub users list`")
    api.ensure_user(name, admin=admin or None)
    typer.echo(f"added hub user {name}{' (admin)' if admin else ''}")
    typer.echo(f"  they log in through the hub's login (LDAP, GitHub, shared password); a password of "
               f"pangeohub's own is set on the hub: {EXEC} users add {name}", err=True)


def users_remove(hub: RemoteHub, name: str, keep_home: bool) -> None:
    if keep_home:
        # Deleting the hub user lets the hub's spawner delete what it keeps for them: KubeSpawner deletes the
        # home volume (delete_pvc), so a kept home cannot be promised from here.
        raise not_remote(f"users remove {name} --keep-home", "the hub's spawner decides what a removed hub user "
                         "keeps, and on Kubernetes it deletes the home volume")
    api = _api(hub)
    if not api.delete_user(name):
        raise PangeoError(f"the hub at {hub.base} has no user named {name!r}", "see `pangeohub users list`")
    typer.echo(f"removed hub user {name} (server stopped, tokens revoked; on Kubernetes their home volume too)")
    typer.echo(f"  a password of pangeohub's own, and on one machine the Linux account and home, stay; release them "
               f"on the hub: `pangeohub users remove {name}` there, or {EXEC} users remove {name}", err=True)


def users_admin(hub: RemoteHub, name: str, revoke: bool) -> None:
    api = _api(hub)
    if api.user(name) is None:
        raise PangeoError(f"the hub at {hub.base} has no user named {name!r}", "see `pangeohub users list`")
    model = api.ensure_user(name, admin=not revoke)
    typer.echo(f"{name} is {'an' if model['admin'] else 'no longer an'} admin of the hub")
    if revoke:
        typer.echo(f"  a name in hub.admin_users or an auth.admin_groups group is made admin again at the next "
                   f"login: change the config for good ({EXEC} config ...)", err=True)


def token(hub: RemoteHub, user: str | None, note: str, lifetime: int | None) -> None:
    api = hub.api()
    me = require_admin(api)
    name = user or me["name"]
    if api.user(name) is None:
        raise PangeoError(f"the hub at {hub.base} has no user named {name!r}",
                          f"add them first: pangeohub --hub-url {hub.base} users add {name}")
    typer.echo(api.token(name, note=note, expires_in=lifetime))


def refuse(command: str) -> None:
    raise not_remote(command)
