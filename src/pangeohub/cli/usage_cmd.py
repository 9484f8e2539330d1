"""``pangeohub usage report`` and ``pangeohub cost estimate``."""

from __future__ import annotations

import csv
import io
import json
import time

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError
from pangeohub.units import format_size

usage_app = typer.Typer(help="What each person, group or profile used, from the hourly record.", no_args_is_help=True)
cost_app = typer.Typer(help="What a planned event needs and costs.", no_args_is_help=True)
FORMATS = ("table", "csv", "json")


def _format(value: str) -> str:
    if value not in FORMATS:
        raise PangeoError(f"--format {value!r} is not a format", f"use one of: {', '.join(FORMATS)}")
    return value


@usage_app.command("report")
def report(
    since: str = typer.Option("30d", "--since", help="Start: a duration back from now (30d, 12h) or a date."),
    until: str = typer.Option(None, "--until", help="End (exclusive): a date or a duration back; default now, "
                              "the current hour included as far as it has been sampled."),
    by: str = typer.Option("person", "--by", help="Rows per person, group, profile or day."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    plot: str = typer.Option(None, "--plot", help="Also write a PNG of stacked daily CPU core-hours per person "
                             "(or per group with --by group)."),
    cost: bool = typer.Option(False, "--cost", help="Add each row's cost from the config's `costs:` prices."),
    person: list[str] = typer.Option(None, "--person", help="Only this person (repeatable)."),
    group: list[str] = typer.Option(None, "--group", help="Only members of this group (repeatable)."),
) -> None:
    """Usage per person, group, profile or day (like Slurm's sreport)."""
    from pangeohub.usage.cost import apply_costs
    from pangeohub.usage.report import active_people, build
    from pangeohub.usage.store import UsageStore

    _format(fmt)
    rt = state.runtime()
    store = UsageStore(rt.paths.usage_db)
    rows, start, end = build(store, since, until, by, person or None, group or None)
    if cost:
        apply_costs(rows, rt.config.costs, min(end, time.time()) - start)
    if plot:
        from pangeohub.usage.plot import daily_plot

        daily_plot(store, start, end, "group" if by == "group" else "person", plot)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        typer.echo(_csv(rows), nl=False)
    else:
        typer.echo(_table(rows, by, cost))
        active = active_people(store, time.time())
        typer.echo(f"\nactive people: {active['24h']} in 24 h, {active['7d']} in 7 d, {active['30d']} in 30 d")
        source = store.compute_source()
        if source:
            typer.echo(f"compute: {source}")
        for gap_start, gap_stop in store.gaps(start, end):
            typer.echo(f"no samples from {_when(gap_start)} to {_when(gap_stop)} (the platform was down)")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _table(rows: list[dict], by: str, cost: bool) -> str:
    head = (f"{by.upper():<20} {'CPU-H':>9} {'MEM-GBH':>9} {'DASK-CORE-H':>11} {'DASK-GBH':>9} {'HOME':>8} "
            f"{'SCRATCH':>8} {'STARTS':>6} {'SRV-H':>7}" + (f" {'COST':>10}" if cost else ""))
    lines = [head]
    for r in rows:
        line = (f"{str(r[by]):<20} {r['server_cpu_seconds'] / 3600:>9.3f} {r['server_memory_gb_hours']:>9.3f} "
                f"{r['dask_core_hours']:>11.3f} {r['dask_memory_gb_hours']:>9.3f} "
                f"{format_size(r.get('home_bytes', 0)):>8} {format_size(r.get('scratch_bytes', 0)):>8} "
                f"{r['server_starts']:>6} {r['server_hours']:>7.2f}")
        if cost:
            line += f" {r['cost']:>10.2f} {r['currency']}"
        lines.append(line)
    if len(rows) == 0:
        lines.append("(no usage recorded in this period)")
    return "\n".join(lines)


@cost_app.command("estimate")
def estimate(
    people: int = typer.Option(..., "--people", help="How many people at once."),
    hours: float = typer.Option(..., "--hours", help="How long the event lasts."),
    profile: str = typer.Option(..., "--profile", help="The profile everyone uses."),
    cluster_workers: int = typer.Option(0, "--cluster-workers", help="Dask workers each person runs (default "
                                        "worker size from gateway.options)."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Machines and cost for an event: this machine's size and the dated cloud price table."""
    from pangeohub.usage.cost import estimate as plan_for

    if fmt not in ("table", "json"):
        raise PangeoError(f"--format {fmt!r} is not a format of this command", "use table or json")
    plan = plan_for(state.runtime().config, people, hours, profile, cluster_workers)
    if fmt == "json":
        typer.echo(json.dumps(plan, indent=2))
        return
    here = plan["this_machine"]
    typer.echo(f"{people} people, {hours:g} h, profile {profile}, {cluster_workers} Dask workers each: "
               f"{plan['cores_needed']} cores, {plan['memory_needed_gib']} GiB")
    typer.echo(f"this machine ({here['cpus']} CPUs, {here['memory_gib']} GiB): {here['machines']} needed"
               + (f", {here['cost']} {here['currency']}" if "cost" in here else ""))
    typer.echo(f"\n{'INSTANCE':<16} {'REGION':<16} {'CPUS':>4} {'GIB':>5} {'MACHINES':>8} {'COST':>9}")
    for item in plan["instances"]:
        typer.echo(f"{item['name']:<16} {item['region']:<16} {item['cpus']:>4} {item['memory_gib']:>5} "
                   f"{item['machines']:>8} {item['cost']:>9.2f}")
    typer.echo(f"\nprices in {plan['prices_currency']} as of {plan['prices_as_of']}: "
               + "; ".join(plan["sources"].values()))
