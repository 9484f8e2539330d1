"""``pangeohub content sync``: pull the workshop material (config `content:`) now, for everyone running."""

from __future__ import annotations

import asyncio
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
    from pangeohub.content.runner import describe
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
    people = sorted(running, key=lambda u: u["name"])
    report = asyncio.run(_pull_for_all(rt, people))
    failed = sum(r["status"] == "failed" for results in report.values() for r in results)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for name, results in report.items():
            typer.echo(f"{name}: " + ("; ".join(describe(r) for r in results) or "nothing for their groups"))
        if not running:
            typer.echo("no server is running: the material reaches each person when their server starts")
    if failed:
        raise PangeoError(f"{failed} pull(s) failed (see above); those people found a notice beside the folder",
                          "check that the hub machine reaches the repository (git ls-remote URL), then sync again",
                          exit_code=1)


# Pulls at once: a repository that does not answer costs each person its timeout, which must not add up over a
# whole class; more at once would only compete for the machine's cores with the servers themselves.
CONCURRENT_PULLS = 8


async def _pull_for_all(rt, people: list[dict]) -> dict[str, list[dict]]:
    from pangeohub.content.runner import for_person, pull_as

    config = rt.config
    slots = asyncio.Semaphore(CONCURRENT_PULLS)

    async def one(model: dict) -> list[dict]:
        sources = for_person(config, set(model.get("groups") or []))
        if not sources:
            return []
        async with slots:
            account = await asyncio.to_thread(rt.target.account, model["name"])
            return await pull_as(account, sources, config.users.umask)

    results = await asyncio.gather(*(one(model) for model in people))
    return {model["name"]: result for model, result in zip(people, results)}
