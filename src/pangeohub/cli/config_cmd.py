"""``pangeohub config validate | show | schema``."""

from __future__ import annotations

import json

import typer
import yaml

from pangeohub.cli.context import state
from pangeohub.config import Config, config_path, load_config
from pangeohub.targets import checked_target

app = typer.Typer(help="Check and explain the config file.", no_args_is_help=True)


@app.command()
def validate(file: str = typer.Argument(None, help="File to check (default: the active config).")) -> None:
    """Check a config file; exit 0 if it is valid, else print each problem with its fix."""
    target = file or state.config_file
    from pangeohub.tls.status import plain_http_warning

    config = load_config(target)
    checked_target(config)
    if config.content:
        from pangeohub.content.checks import check_content_groups
        from pangeohub.services.runtime import Runtime

        check_content_groups(Runtime(config=config))
    shown = config_path(target)
    typer.echo(f"{shown if shown else 'built-in defaults'}: valid")
    warning = plain_http_warning(config)
    if warning:
        typer.secho(warning, err=True, fg=typer.colors.RED, bold=True)


@app.command()
def migrate(file: str = typer.Argument(None, help="File to rewrite (default: the active config).")) -> None:
    """Rewrite a config file written for an earlier version with today's option names; the old file is kept
    beside it (<file>.v<version>.bak). A file that is up to date is left alone."""
    from pangeohub.config.rewrite import rewrite
    from pangeohub.config.versions import CURRENT

    path = config_path(file or state.config_file)
    if path is None:
        typer.echo("no config file (built-in defaults): nothing to migrate")
        return
    if not path.exists():
        load_config(path)  # the loader's own error for a missing file
    migrated, backup = rewrite(path)
    if backup is None:
        typer.echo(f"{path}: already config version {CURRENT}, unchanged")
        return
    for old, new in migrated.renames:
        typer.echo(f"{path}: renamed {old} to {new}")
    typer.echo(f"{path}: now config version {CURRENT} (was {migrated.version}); the old file is kept as {backup}")


@app.command()
def show() -> None:
    """Print the effective config: the file's values plus every default, as YAML."""
    data = state.runtime().config.model_dump(mode="json")
    typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editors and docs)."""
    typer.echo(json.dumps(Config.model_json_schema(), indent=2))


@app.command()
def docs() -> None:
    """Print the config reference (Markdown) generated from the model."""
    from pangeohub.render.docs import render_config_reference

    typer.echo(render_config_reference(), nl=False)
