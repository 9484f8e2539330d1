"""``pangeohub content sync``: pull the workshop material (config `content:`) now, for everyone running."""

from __future__ import annotations

import json

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError

app = typer.Typer(help="Workshop material pulled into people's homes (config section `content`).",
                  no_args_is_help=True)


@app.command()
def sync(user: list[str] = typer.Option([], "--user", "-u", help="Only this person (repeatable; default: "
                                        "everyone whose server runs)."),
         as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Pull every repository into the home of each person it is for whose server runs, as that person, with
    nbgitpuller's merge rules; prints per person what each folder got. Exits 1 if any pull failed."""
    from pangeohub.content.checks import check_content_groups
    from pangeohub.content.runner import describe, for_person, pull_now
    from pangeohub.hubapi import HubAPI

    rt = state.runtime()
    config = rt.config
    if not config.content:
        typer.echo("no content in the config: nothing to pull")
        return
    check_content_groups(rt)
    running = [u for u in HubAPI(rt).users() if (u.get("servers") or {}).get("", {}).get("ready")]
    if user:
        unknown = sorted(set(user) - {u["name"] for u in running})
        if unknown:
            raise PangeoError(f"no running server for: {', '.join(unknown)}",
                              "the material reaches a stopped server at its next start; "
                              "`pangeohub users list` shows who runs")
        running = [u for u in running if u["name"] in user]
    report, failed = {}, 0
    for model in sorted(running, key=lambda u: u["name"]):
        sources = for_person(config, set(model.get("groups") or []))
        results = pull_now(rt.target.account(model["name"]), sources, config.users.umask) if sources else []
        failed += sum(r["status"] == "failed" for r in results)
        report[model["name"]] = results
        if not as_json:
            lines = [describe(r) for r in results] or ["nothing for their groups"]
            typer.echo(f"{model['name']}: " + "; ".join(lines))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif not running:
        typer.echo("no server is running: the material reaches each person when their server starts")
    if failed:
        raise PangeoError(f"{failed} pull(s) failed (see above); those people found a notice beside the folder",
                          "check that the hub machine reaches the repository (git ls-remote URL), then sync again",
                          exit_code=1)
