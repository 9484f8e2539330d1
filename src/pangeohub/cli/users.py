"""``pangeohub users add | list | remove | passwd`` and the account checks they share."""

from __future__ import annotations

import json
import os
import sys
import time

import typer

from pangeohub.accounts import Account, generate_password
from pangeohub.cli import remote_cmds
from pangeohub.cli.context import account_store, running_hub, state
from pangeohub.errors import PangeoError
from pangeohub.hubsync import sync_hub_users
from pangeohub.names import check_username, system_name, uses_site_accounts
from pangeohub.ops.prepare import prepare_accounts
from pangeohub.release import release_account
from pangeohub.units import format_size

app = typer.Typer(help="Manage who can log in.", no_args_is_help=True)



_store = account_store
_hub = running_hub


def _read_password(rt, from_stdin: bool, name: str) -> tuple[str, bool]:
    """(password, generated?) from stdin, an interactive prompt, or a freshly generated one."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    else:
        return generate_password(), True
    minimum = rt.config.auth.password.min_length
    if len(password) < minimum:
        raise PangeoError(
            f"the password for {name!r} has {len(password)} characters; the minimum is {minimum} "
            "(auth.password.min_length)",
            "choose a longer one, or leave it out to have one generated",
        )
    return password, False


@app.command()
def add(
    name: str = typer.Argument(..., help="Hub username (lowercase letters, digits, '-', '_')."),
    admin: bool = typer.Option(False, "--admin", help="Make this user a hub administrator."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    group: list[str] = typer.Option([], "--group", help="Hub group(s) the user joins (repeatable)."),
) -> None:
    """Create a user who can log in with a password (generated and printed unless given).
    With --hub-url: a hub user only (the hub's login decides who they are)."""
    if state.remote():
        return remote_cmds.users_add(state.remote(), name, admin, password_stdin, group)
    rt = state.runtime()
    check_username(name, rt.config.users.system_prefix, uses_site_accounts(rt.config))
    password, generated = _read_password(rt, password_stdin, name)
    _store(rt).add(Account(name=name, admin=admin, groups=sorted(set(group))), password)
    api = _hub(rt)
    try:
        if os.geteuid() == 0:
            # The Linux account (and scratch credentials) now, not at the first spawn: see ops.prepare.
            prepare_accounts(rt, [name])
        if api:
            sync_hub_users(rt, api, names=[name])  # a hub user at once, with the store's admin flag and groups
    except Exception:
        # Nothing half-made stays behind (an account that cannot spawn, a hub user without a Linux account).
        release_account(rt, name, hub=api)
        raise
    typer.echo(f"added {name}{' (admin)' if admin else ''}")
    if generated:
        typer.echo(f"password: {password}")


@app.command()
def passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    keep_sessions: bool = typer.Option(
        False, "--keep-sessions",
        help="Leave the user's sessions, tokens, servers and processes running (a routine change, not a theft)."),
) -> None:
    """Set a user's password (generated and printed unless given). Whoever knew the old one is shut out: every
    session, API token, server, Dask cluster and process of the user is ended, unless --keep-sessions."""
    from pangeohub.auth.ending import report
    from pangeohub.cli.access import end_everywhere

    rt = state.runtime()
    store = _store(rt)
    if store.get(name) is None:
        raise PangeoError(f"no user named {name!r}", "see `pangeohub users list`")
    password, generated = _read_password(rt, password_stdin, name)
    store.set_password(name, password)
    store.clear_failures(name)
    typer.echo(f"password of {name} changed" + (f": {password}" if generated else ""))
    if not keep_sessions:
        outcome = end_everywhere(rt, [name])
        if outcome[0].hub:
            typer.echo(f"ended every session of {name}: {outcome[0].tokens} token(s) revoked, "
                       f"{outcome[0].servers} server(s) stopped (--keep-sessions leaves them)")
        else:
            typer.echo(f"the platform is down: only the processes of {name} were ended; run this again once it "
                       "is up to end their sessions and tokens")
        report(outcome)


@app.command("admin")
def admin_cmd(
    name: str = typer.Argument(...),
    revoke: bool = typer.Option(False, "--revoke", help="Take the admin right away instead of giving it."),
) -> None:
    """Make a user an administrator (or, with --revoke, no longer one); the hub follows at once."""
    if state.remote():
        return remote_cmds.users_admin(state.remote(), name, revoke)
    rt = state.runtime()
    store = _store(rt)
    store.set_admin(name, not revoke)
    api = _hub(rt)
    if api:
        sync_hub_users(rt, api, names=[name])
    account = store.get(name)
    from pangeohub.hubsync import expected_admin

    still = revoke and expected_admin(rt.config, account)
    typer.echo(f"{name} is {'no longer ' if revoke and not still else ''}an admin"
               + (" (still one: named in hub.admin_users or in an auth.admin_groups group)" if still else ""))


@app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List users: admin flag, status, Linux account, server state (with --hub-url: the hub's users)."""
    if state.remote():
        return remote_cmds.users_list(state.remote(), as_json)
    rt = state.runtime()
    api = _hub(rt)
    hub_users = {u["name"]: u for u in api.users()} if api else {}
    admins = set(rt.config.hub.admin_users)
    rows = []
    for account in _store(rt).list():
        hub_user = hub_users.get(account.name, {})
        rows.append({
            "name": account.name,
            "note": rt.target.server_note(account.name),
            "admin": account.admin or account.name in admins or bool(hub_user.get("admin")),
            "status": account.status if account.usable() else ("expired" if account.status == "active" else account.status),
            "system_user": system_name(account.name, rt.config.users.system_prefix),
            "groups": sorted(set(account.groups) | set(hub_user.get("groups", []))),
            "server": "running" if hub_user.get("servers") else "stopped",
            "last_activity": hub_user.get("last_activity"),
            "created": time.strftime("%Y-%m-%d", time.localtime(account.created)),
        })
    rows += _directory_users(rt, hub_users, {row["name"] for row in rows}, admins)
    for row in rows:
        row.setdefault("note", rt.target.server_note(row["name"]))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'NAME':<20} {'ADMIN':<6} {'STATUS':<8} {'SERVER':<8} {'GROUPS':<20} LINUX ACCOUNT")
    for row in rows:
        typer.echo(f"{row['name']:<20} {'yes' if row['admin'] else '':<6} {row['status']:<8} {row['server']:<8} "
                   f"{','.join(row['groups']) or '-':<20} {row['system_user']}")
    for row in rows:
        if row["note"]:
            typer.echo(f"{row['name']}: {row['note']}")


def _directory_users(rt, hub_users: dict, listed: set, admins: set) -> list[dict]:
    """Hub users with no local account: people from LDAP, GitHub or the shared password."""
    return [{
        "name": name,
        "admin": bool(user.get("admin")) or name in admins,
        "status": "active",
        "system_user": system_name(name, rt.config.users.system_prefix),
        "groups": sorted(user.get("groups", [])),
        "server": "running" if user.get("servers") else "stopped",
        "last_activity": user.get("last_activity"),
        "created": (user.get("created") or "")[:10],
    } for name, user in sorted(hub_users.items()) if name not in listed]


@app.command()
def remove(
    name: str = typer.Argument(...),
    keep_home: bool = typer.Option(False, "--keep-home", help="Keep the Linux account and home directory."),
) -> None:
    """Remove a user: stop their server, revoke their login; delete their home unless --keep-home.
    With --hub-url: the hub user (server stopped, tokens revoked) and what the hub's spawner keeps for them."""
    if state.remote():
        return remote_cmds.users_remove(state.remote(), name, keep_home)
    from pangeohub.cli.access import end_everywhere

    rt = state.runtime()
    rt.paths.ensure()
    # Their clusters, tokens and sessions too, before the release takes the hub user and the account away
    # (its processes are the release's to end).
    ending = end_everywhere(rt, [name], processes=False)
    released = release_account(rt, name, hub=_hub(rt), keep_home=keep_home)
    released.problems += ending[0].problems
    if released.problems:
        raise PangeoError("could not release everything of the user:\n" + "\n".join(f"  - {p}" for p in released.problems),
                          f"fix the cause, then run `pangeohub users remove {name}` again")
    if not released.existed:
        raise PangeoError(f"no user named {name!r}", "see `pangeohub users list`")
    typer.echo(f"removed {name}" + (" (home kept)" if keep_home else ""))


@app.command()
def usage(as_json: bool = typer.Option(False, "--json", help="Machine-readable output (sizes in bytes).")) -> None:
    """Show each user's home usage and quota, and their server's memory use and limits."""
    from pangeohub.targets.local.usage import collect

    rt = state.runtime()
    rows = collect(rt)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    size = lambda n: "-" if n is None else format_size(n)  # noqa: E731
    typer.echo(f"{'NAME':<20} {'HOME USED':>10} {'QUOTA':>8} {'USE%':>6} {'MEMORY':>9} {'LIMIT':>8} {'CPUS':>5} "
               "OOM-KILLS PROCS-REFUSED")
    for row in rows:
        percent = "-" if row["home_percent"] is None else f"{row['home_percent']:.0f}%"
        cpus = "-" if row["cpus"] is None else f"{row['cpus']:g}"
        typer.echo(f"{row['name']:<20} {size(row['home_used']):>10} {size(row['home_quota']):>8} {percent:>6} "
                   f"{size(row['memory_used']):>9} {size(row['memory_limit']):>8} {cpus:>5} {row['oom_kills']:>9} {row['processes_refused']}")
