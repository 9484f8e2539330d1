"""``pangeohub migrate``: the config file and databases an earlier version left, brought up to this one."""

from __future__ import annotations

import json

import typer

from pangeohub.cli.context import state


def register(app: typer.Typer) -> None:
    app.command()(migrate)


def migrate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing: check that this version accepts the "
                                 "config and say what a migration would change."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: machine-readable output."),
) -> None:
    """Bring the config file (renamed options; the old file is kept) and the hub database (JupyterHub's
    upgrade-db) and account store up to this version. The installer runs it on upgrade, with the platform
    stopped; running it again changes nothing."""
    from pangeohub.ops import migrate as ops

    rt = state.runtime()
    if dry_run:
        plan = ops.plan(rt)
        if as_json:
            typer.echo(json.dumps(plan, indent=2))
            return
        source = plan["config_file"] or "built-in defaults"
        typer.echo(f"{source}: accepted (config version {plan['config_version']})")
        for old, new in plan["config_renames"]:
            typer.echo(f"  would rename {old} to {new}")
        return
    from pangeohub.cli.platform import require_root

    require_root("migrate")
    ops.migrate(rt, echo=typer.echo)
