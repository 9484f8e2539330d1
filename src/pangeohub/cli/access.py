"""``pangeohub users generate | expire | extend | pending | approve | deny | shared-password``: workshops,
sign-up review and the shared demo password, on top of the account store and the hub API."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from pangeohub.auth import applications, workshop
from pangeohub.auth.ending import Ended, GatewayAdmin, end_person, report
from pangeohub.cli.context import account_store, running_hub, state
from pangeohub.errors import PangeoError
from pangeohub.names import uses_site_accounts
from pangeohub.ops.prepare import prepare_accounts
from pangeohub.targets.sysusers import lock_account


def register(app: typer.Typer) -> None:
    for command in (generate, expire, extend, pending, approve, deny):
        app.command()(command)
    app.command("shared-password")(shared_password)


_store = account_store
_hub = running_hub


def generate(
    count: int = typer.Option(..., "--count", "-n", help="How many accounts to create."),
    prefix: str = typer.Option("ws", "--prefix", help="Usernames are <prefix>01, <prefix>02, ..."),
    expires: str = typer.Option(None, "--expires", help="When they end: 2026-12-01, 2026-12-01T18:00, or 3d."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for the CSV and the printable HTML sheet."),
    group: list[str] = typer.Option([], "--group", help="Hub group(s) the accounts join (repeatable)."),
) -> None:
    """Create workshop accounts with random readable passwords; write a CSV and a printable sheet."""
    rt = state.runtime()
    store = _store(rt)
    until = workshop.parse_expiry(expires) if expires else None
    names = workshop.next_names(store, prefix, count, rt.config.users.system_prefix)
    rows = workshop.generate(store, names, until, group)
    if os.geteuid() == 0:
        # Everyone's Linux account and scratch credentials now, so that the opening minute only starts servers.
        typer.echo(f"preparing {len(names)} accounts ...")
        prepare_accounts(rt, names)
    api = _hub(rt)
    if api:  # in the hub's admin panel at once, so that an organiser can see and pre-start their servers
        from pangeohub.hubsync import sync_hub_users

        sync_hub_users(rt, api, names=names)
    csv_path, html_path = workshop.write_sheets(out, rows, rt.public_url, until)
    typer.echo(f"created {len(rows)} accounts {names[0]} .. {names[-1]}")
    typer.echo(f"passwords (keep safe, print, then delete): {csv_path}\n  printable sheet: {html_path}")


def expire(
    names: list[str] = typer.Argument(None, help="Users to end now."),
    prefix: str = typer.Option(None, "--prefix", help="End every user whose name starts with this."),
) -> None:
    """End accounts now (or, with no names, enforce the dates already past): they can no longer log in, and
    their servers, Dask clusters, API tokens, sessions and processes are ended. Homes are kept;
    `pangeohub users remove` deletes them."""
    rt = state.runtime()
    store = _store(rt)
    if names or prefix:
        chosen = workshop.select(store, prefix, names or [])
        if not chosen:
            raise PangeoError(f"no user name starts with {prefix!r}", "see `pangeohub users list`")
        ended = workshop.end(store, chosen)
    else:
        ended = workshop.expired(store)
    outcomes = end_everywhere(rt, ended)
    for outcome in outcomes:
        if outcome.complete:  # the expiry service need not end them again (it finishes the others)
            workshop.mark_ended(store, outcome.name)
    typer.echo(f"ended {len(ended)} account(s): stopped {sum(o.servers for o in outcomes)} server(s) and "
               f"{sum(o.clusters for o in outcomes)} Dask cluster(s), revoked {sum(o.tokens for o in outcomes)} "
               "token(s), ended their sessions and processes; homes kept")
    if not all(o.hub for o in outcomes):
        typer.echo("the platform is down: their tokens and sessions are ended by the hub's expiry service "
                   "when it starts")
    report(outcomes)


def end_everywhere(rt, names: list[str], *, processes: bool = True) -> list[Ended]:
    """``end_person`` for each of ``names`` (with the platform down: their processes only)."""
    users = None if uses_site_accounts(rt.config) or not processes else rt.config.users
    api = _hub(rt)
    if api is None:
        for name in names:
            if users is not None:
                lock_account(name, users)
        return [Ended(name, hub=False) for name in names]
    gateway = GatewayAdmin.of(rt)
    return [end_person(api, name, gateway=gateway, users=users) for name in names]


def extend(
    names: list[str] = typer.Argument(None, help="Users to extend."),
    prefix: str = typer.Option(None, "--prefix", help="Extend every user whose name starts with this."),
    until: str = typer.Option(..., "--until", help="New end: 2026-12-01, 2026-12-01T18:00, 3d, or 'never'."),
) -> None:
    """Give accounts a new end date, ended ones included: they log in again with the same password, and find
    their home as they left it (a workshop that runs a day longer, an account ended by mistake)."""
    rt = state.runtime()
    store = _store(rt)
    if not names and not prefix:
        raise PangeoError("say whose accounts to extend", "name them, or give --prefix")
    when = None if until == "never" else workshop.parse_expiry(until, option="--until")
    chosen = workshop.select(store, prefix, names or [])
    if not chosen:
        raise PangeoError(f"no user name starts with {prefix!r}", "see `pangeohub users list`")
    extended = workshop.extend(store, chosen, when)
    typer.echo(f"extended {len(extended)} account(s) " + ("with no end" if when is None else f"until {time.ctime(when)}"))


def pending() -> None:
    """List sign-ups waiting for review."""
    rt = state.runtime()
    rows = applications.pending(_store(rt))
    if not rows:
        typer.echo("no applications waiting")
    for account in rows:
        typer.echo(f"{account.name:<20} {account.email or '-':<30} {account.info.get('work', '')}")


def approve(name: str = typer.Argument(...)) -> None:
    """Approve a sign-up: the person can log in from now on."""
    rt = state.runtime()
    applications.approve(_store(rt), name, _kept(rt, name))
    api = _hub(rt)
    if api:
        from pangeohub.hubsync import sync_hub_users

        sync_hub_users(rt, api, names=[name])
    typer.echo(f"approved {name}")


def deny(name: str = typer.Argument(...)) -> None:
    """Deny a sign-up: the application is deleted and the name is free again."""
    from pangeohub.release import release_account

    rt = state.runtime()
    applications.deny(_store(rt), name, lambda who: release_account(rt, who, hub=_hub(rt)), _kept(rt, name))
    typer.echo(f"denied {name}")


def _kept(rt, name: str) -> str | None:
    users = rt.config.users
    return applications.existing_home(name, users.system_prefix, users.home_root)


def shared_password() -> None:
    """Print the shared demo password (auth.mode 'shared') and the admins' password."""
    from pangeohub.auth.render import prepare_auth, shared_password_file

    rt = state.runtime()
    if rt.config.auth.mode != "shared":
        raise PangeoError(f"auth.mode is {rt.config.auth.mode!r}, not 'shared'", "set auth.mode: shared")
    rt.paths.ensure()
    prepare_auth(rt.config, rt.paths)
    typer.echo(f"password:       {shared_password_file(rt.config, rt.paths).read_text().strip()}")
    typer.echo(f"admin password: {rt.paths.secret('shared_admin_password').read_text().strip()} "
               f"(for {', '.join(rt.config.hub.admin_users) or 'no admin_users'})")
