"""The ``pangeohub`` command. Every user-facing failure is a PangeoError, printed once here."""

from __future__ import annotations

import sqlite3
import sys

import typer

from pangeohub.cli import (
    access,
    backup,
    catalog,
    certs,
    clusters,
    config_cmd,
    content,
    envs,
    kubernetes,
    loadtest,
    migrate_cmd,
    platform,
    slurm,
    usage_cmd,
    users,
)
from pangeohub.cli.context import state
from pangeohub.errors import PangeoError

app = typer.Typer(
    help="pangeohub: a self-hosted Pangeo platform (JupyterHub, Dask Gateway, object storage).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    config: str = typer.Option(None, "--config", "-c", help="Config file (default: $PANGEOHUB_CONFIG, "
                               "else /etc/pangeohub/config.yaml if it exists, else built-in defaults)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    hub_url: str = typer.Option(None, "--hub-url", envvar="PANGEOHUB_HUB_URL", show_envvar=False,
                                help="Act on the hub at this address through its REST API, with an admin's "
                                     "token (also $PANGEOHUB_HUB_URL): users, token, clusters, check. "
                                     "Needs no local config, state dir or root."),
    token: str = typer.Option(None, "--token", help="The admin's API token for --hub-url. Prefer --token-file "
                              "or $PANGEOHUB_TOKEN: a token on the command line is seen in the process list "
                              "and the shell history."),
    token_file: str = typer.Option(None, "--token-file", help="File holding the admin's API token for --hub-url."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow --hub-url over plain http to another machine "
                                  "(the token then travels in clear)."),
) -> None:
    state.config_file = config
    state.debug = debug
    state.hub_url, state.token, state.token_file, state.insecure = hub_url, token, token_file, insecure


platform.register(app)
loadtest.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(users.app, name="users")
app.add_typer(catalog.app, name="catalog")
access.register(users.app)
app.add_typer(clusters.app, name="clusters")
app.add_typer(envs.app, name="env")
app.add_typer(content.app, name="content")
kubernetes.register(app)
app.add_typer(certs.app, name="certs")
app.add_typer(slurm.app, name="slurm")
backup.register(app)
migrate_cmd.register(app)
app.add_typer(usage_cmd.usage_app, name="usage")
app.add_typer(usage_cmd.cost_app, name="cost")


def main() -> None:
    # Typer handles its own usage errors (exit 2 with a usage line); ours arrive here, printed once.
    try:
        app()
    except PangeoError as exc:
        if state.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, sqlite3.Error) as exc:
        full = full_disk(exc)
        if full is None or state.debug:
            raise
        print(f"error: {full}", file=sys.stderr)
        sys.exit(full.exit_code)


def full_disk(exc: BaseException) -> PangeoError | None:
    """The one clear error a full state disk deserves, or None when ``exc`` is something else. SQLite reports a
    full disk as "database or disk is full" or, when its journal cannot be written, as "disk I/O error"."""
    import errno
    import shutil

    runtime = state._runtime
    where = runtime.config.state_dir if runtime is not None else None
    if where is None or not where.exists():
        return None
    free = shutil.disk_usage(where).free
    no_room = getattr(exc, "errno", None) == errno.ENOSPC or free < (1 << 20)
    if not no_room:
        return None
    return PangeoError(f"the disk of the state directory {where} is full ({free >> 10} KiB free): the command "
                       f"did not finish ({exc})",
                       f"free space on that filesystem (`df -h {where}`), then run the command again; the "
                       "platform's databases are not damaged by this")
