"""``pangeohub catalog list | add | remove | init``."""

from __future__ import annotations

import json

import typer

from pangeohub.catalog.setup import catalog_file, ensure_sample_data
from pangeohub.catalog.store import Catalog, Entry, guess_driver
from pangeohub.cli.context import state

app = typer.Typer(help="The shared data catalog every user sees as $PANGEO_CATALOG.", no_args_is_help=True)


def _catalog() -> Catalog:
    return Catalog(catalog_file(state.runtime()))


@app.command("list")
def list_entries(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List catalog entries: name, format, location, description."""
    entries = _catalog().entries()
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        typer.echo("the catalog is empty (add entries with `pangeohub catalog add`)")
    for name, entry in entries.items():
        typer.echo(f"{name:<24} {entry['driver']:<7} {entry['args']['urlpath']}")
        if entry.get("description"):
            typer.echo(f"{'':<24} {entry['description']}")


@app.command()
def add(
    name: str = typer.Argument(..., help="Entry name, e.g. sst_monthly."),
    url: str = typer.Argument(..., help="Where the data is: a path, a glob of files, or an s3:// URL."),
    description: str = typer.Option("", "--description", "-d", help="One line for users."),
    driver: str = typer.Option(None, "--driver", help="zarr, netcdf or csv (default: from the URL)."),
) -> None:
    """Add a dataset; users see it at their next open_catalog(), with no restart."""
    _catalog().add(Entry(name, url, driver or guess_driver(url), description))
    typer.echo(f"added {name}")


@app.command()
def remove(name: str = typer.Argument(...)) -> None:
    """Remove an entry (the data itself is left where it is)."""
    _catalog().remove(name)
    typer.echo(f"removed {name}")


@app.command()
def init() -> None:
    """Create the catalog and generate the sample datasets if they are missing (also done by `up`)."""
    made = ensure_sample_data(state.runtime(), echo=typer.echo)
    typer.echo(f"made {', '.join(made)}" if made else "catalog is complete")
