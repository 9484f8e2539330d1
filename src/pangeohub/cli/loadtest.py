"""``pangeohub loadtest``: simulate a workshop's opening minute against the running platform."""

from __future__ import annotations

from pathlib import Path

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError


def register(app: typer.Typer) -> None:
    app.command()(loadtest)


def loadtest(
    users: int = typer.Option(..., "--users", "-n", help="How many simulated people."),
    ramp: float = typer.Option(..., "--ramp", help="Seconds over which they arrive (0: all at once)."),
    hold: float = typer.Option(0.0, "--hold", help="Seconds each keeps their server after running code."),
    gateway: int = typer.Option(0, "--gateway", help="How many of them also start a Dask cluster and compute."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for the JSON report and the PNG plot."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds any one step may take."),
    api_every: float = typer.Option(2.0, "--api-every",
                                    help="Seconds between two timed GET /hub/api/users during the run."),
) -> None:
    """Simulate N people logging in, starting servers and running code; exit 1 if any step failed.

    The people are temporary accounts, removed at the end (servers, hub users, Linux accounts, homes).
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from pangeohub.cli.platform import require_root
    from pangeohub.ops import loadtest_report
    from pangeohub.ops.loadtest import LoadTest, Plan, gateway_check
    from pangeohub.services import supervisor

    plan = Plan(users=users, ramp=ramp, hold=hold, gateway=gateway, timeout=timeout, api_every=api_every)
    plan.validate()
    require_root("loadtest")
    rt = state.runtime()
    gateway_check(plan, rt.config)
    if supervisor.supervisor_pid(rt) is None:
        raise PangeoError("the platform is not running", "start it first: pangeohub up --detach")
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console)
    bar = progress.add_task("people done", total=users, detail="")

    def update(test: LoadTest) -> None:
        counts = test.counts()
        finished = counts.get("done", 0) + counts.get("failed", 0)
        detail = " ".join(f"{k}:{v}" for k, v in sorted(counts.items()) if k not in ("done",))
        progress.update(bar, completed=finished, detail=detail)

    test = LoadTest(rt, plan, update)
    console.print(f"creating {users} temporary users ...")
    with progress:
        test.run()
    json_path, png_path, data = loadtest_report.write(test, out)

    table = Table(title=f"{users} people, ramp {ramp:g}s: {len(test.failures)} failures")
    for column in ("phase", "count", "failures", "p50 s", "p95 s", "p99 s", "max s"):
        table.add_column(column, justify="right")
    for phase, s in data["phases"].items():
        table.add_row(phase, str(s["count"]), str(s["failures"]),
                      *(f"{s[k]:.2f}" if s[k] is not None else "-" for k in ("p50", "p95", "p99", "max")))
    api = data["hub_api"]
    if api["count"]:
        table.add_row("hub API", str(api["count"]), str(api["failures"]),
                      *(f"{api[k]:.2f}" if api[k] is not None else "-" for k in ("p50", "p95", "p99", "max")))
    Console().print(table)
    typer.echo(f"report: {json_path}\nplot:   {png_path}")
    if test.failures:
        for failure in test.failures[:10]:
            typer.echo(f"  failed: {failure}", err=True)
        raise typer.Exit(1)
