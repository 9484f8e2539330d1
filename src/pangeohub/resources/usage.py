"""``pangeohub users usage``: each person's home use against their quota, and their server's live memory."""

from __future__ import annotations

import json
import pwd

import typer

from pangeohub.accounts import AccountStore
from pangeohub.cli.context import state
from pangeohub.names import system_name
from pangeohub.resources import cgroups, homes
from pangeohub.units import format_size


def collect(rt) -> list[dict]:
    config = rt.config
    backend = None
    if config.limits.enforce:
        try:
            from pangeohub.supervisor import supervisor_pid

            # v1 user cgroups sit below the cgroup the platform runs in: look from the supervisor's.
            backend = cgroups.backend_for(config.limits, pid=supervisor_pid(rt))
        except OSError:
            backend = None
    rows = []
    for account in AccountStore(rt.paths.accounts_db).list():
        linux = system_name(account.name, config.users.system_prefix)
        row = {"name": account.name, "system_user": linux, "home_used": None,
               "home_quota": config.homes.quota or None, "home_percent": None,
               "memory_used": None, "memory_limit": None, "cpus": None, "oom_kills": 0,
               "processes": None, "processes_limit": None, "processes_refused": 0}
        try:
            entry = pwd.getpwnam(linux)
        except KeyError:
            rows.append(row)  # never started a server: no home yet
            continue
        usage = homes.home_usage(config, entry)
        row["home_used"] = usage["used"]
        if row["home_quota"]:
            row["home_percent"] = round(100 * usage["used"] / row["home_quota"], 1)
        stats = backend.stats(linux) if backend else None
        if stats:
            row.update(memory_used=stats["memory_used"], memory_limit=stats["memory_limit"], cpus=stats["cpus"],
                       oom_kills=stats["oom_kills"], processes=stats["processes"],
                       processes_limit=stats.get("processes_limit"),
                       processes_refused=stats.get("processes_refused", 0))
        rows.append(row)
    return rows


def usage(as_json: bool = typer.Option(False, "--json", help="Machine-readable output (sizes in bytes).")) -> None:
    """Show each user's home usage and quota, and their server's memory use and limits."""
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
