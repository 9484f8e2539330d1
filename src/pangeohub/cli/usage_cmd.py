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
    prometheus: str = typer.Option(None, "--prometheus", help="On Kubernetes: compute per person from this "
                                   "Prometheus (cAdvisor and kube-state-metrics), not from the usage record."),
    prometheus_token_file: str = typer.Option(None, "--prometheus-token-file", help="File (mode 600) holding a "
                                              "bearer token for --prometheus."),
    namespace: str = typer.Option(None, "--namespace", help="With --prometheus: the namespace the hub's pods run "
                                  "in (default: kubernetes.namespace of the config)."),
) -> None:
    """Usage per person, group, profile or day (like Slurm's sreport)."""
    from pangeohub.usage.cost import apply_costs
    from pangeohub.usage.report import active_people, build
    from pangeohub.usage.store import UsageStore

    _format(fmt)
    rt = state.runtime()
    if prometheus:
        _from_prometheus(rt, prometheus, prometheus_token_file, namespace, since, until, by, fmt, plot, cost,
                         person or None, group or None)
        return
    store = UsageStore(rt.paths.usage_db)
    rows, start, end = build(store, since, until, by, person or None, group or None)
    if cost:
        apply_costs(rows, rt.config.costs, min(end, time.time()) - start)
    if plot:
        from pangeohub.usage.plot import daily_plot

        daily_plot(store, start, end, "group" if by == "group" else "person", plot)
    if _print(rows, by, fmt, cost):
        active = active_people(store, time.time())
        typer.echo(f"\nactive people: {active['24h']} in 24 h, {active['7d']} in 7 d, {active['30d']} in 30 d")
        source = store.compute_source()
        if source:
            typer.echo(f"compute: {source}")
        for gap_start, gap_stop in store.gaps(start, end):
            typer.echo(f"no samples from {_when(gap_start)} to {_when(gap_stop)} (the platform was down)")


def _print(rows: list[dict], by: str, fmt: str, cost: bool) -> bool:
    """Print the rows in ``fmt``; True for the table, which the caller follows with its notes."""
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        typer.echo(_csv(rows), nl=False)
    else:
        typer.echo(_table(rows, by, cost))
    return fmt == "table"


def _from_prometheus(rt, url: str, token_file: str | None, namespace: str | None, since: str, until: str | None,
                     by: str, fmt: str, plot: str | None, cost: bool, people: list[str] | None,
                     groups: list[str] | None) -> None:
    from pangeohub.usage.promsource import PrometheusSource, describe, token_from
    from pangeohub.usage.report import BY, parse_when

    if by not in BY:
        raise PangeoError(f"--by {by!r} is not a grouping", f"use one of: {', '.join(BY)}")
    why = {"group": "groups are the hub's, not labels on pods, so Prometheus has none",
           "profile": "the profile a server started with is not a label on its pod",
           "day": "the Prometheus report is one instant query over the whole period"}
    if by != "person" or groups:
        what = f"--by {by}" if by != "person" else "--group"
        raise PangeoError(f"{what} is not possible with --prometheus: {why[by if by != 'person' else 'group']}",
                          "use --by person (and --person) with --prometheus, or run the report without "
                          "--prometheus in the hub pod, whose usage record has groups, profiles and days")
    if cost or plot:
        raise PangeoError(f"{'--cost' if cost else '--plot'} is not possible with --prometheus: homes, scratch and "
                          "time running are not in Prometheus", "run the report without --prometheus in the hub pod")
    now = time.time()
    end = min(parse_when(until, "--until", now), now)
    start = parse_when(since, "--since", now - 30 * 86400)
    if start >= end:
        raise PangeoError(f"--since ({_when(start)}) is not before --until ({_when(end)})",
                          "give an earlier --since or a later --until")
    source = PrometheusSource(url, token_from(token_file))
    rows = source.rows(namespace or rt.config.kubernetes.namespace, start, end, people)
    if _print(rows, by, fmt, cost):
        typer.echo(f"\ncompute: {describe(source.url)}")


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
        # None: a figure the source does not have (Prometheus has no homes, scratch or starts).
        line = (f"{str(r[by]):<20} {_cell(r['server_cpu_seconds'], 9, '.3f', 3600)} "
                f"{_cell(r['server_memory_gb_hours'], 9, '.3f')} {_cell(r['dask_core_hours'], 11, '.3f')} "
                f"{_cell(r['dask_memory_gb_hours'], 9, '.3f')} "
                f"{_cell(r.get('home_bytes', 0), 8, format_size)} {_cell(r.get('scratch_bytes', 0), 8, format_size)} "
                f"{_cell(r['server_starts'], 6, 'd')} {_cell(r['server_hours'], 7, '.2f')}")
        if cost:
            line += f" {r['cost']:>10.2f} {r['currency']}"
        lines.append(line)
    if len(rows) == 0:
        lines.append("(no usage recorded in this period)")
    return "\n".join(lines)


def _cell(value, width: int, spec, divisor: float = 1) -> str:
    if value is None:
        return f"{'-':>{width}}"
    text = spec(value) if callable(spec) else format(value / divisor if divisor != 1 else value, spec)
    return f"{text:>{width}}"


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
