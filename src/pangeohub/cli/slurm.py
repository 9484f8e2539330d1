"""``pangeohub slurm sudoers``: the sudo rule the Dask Gateway needs on a Slurm cluster's login node."""

from __future__ import annotations

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError

app = typer.Typer(help="The Slurm target (target.kind: slurm): what the site installs.", no_args_is_help=True)


@app.command()
def sudoers() -> None:
    """Print the sudoers rule (for /etc/sudoers.d/) that lets the gateway's account start Dask jobs as the
    platform's people, through dask-gateway's launcher only. `up` installs it itself when it runs as root."""
    from pangeohub.targets.slurm.gatewaysetup import rules, sudoers_file

    config = state.runtime().config
    if config.target.kind != "slurm":
        raise PangeoError(f"target.kind is {config.target.kind}: the sudo rule is for the Slurm target",
                          "set target.kind: slurm (see docs/hpc.md)")
    if not config.gateway.enabled:
        raise PangeoError("gateway.enabled is false: no Dask jobs, no sudo rule needed")
    typer.echo(f"# {sudoers_file(config)} (mode 0440; check it with `visudo -cf FILE` before installing)")
    typer.echo(rules(config), nl=False)
