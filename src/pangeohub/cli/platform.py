"""``pangeohub up | down | status | logs | restart | token | check``."""

from __future__ import annotations

import json
import os
import signal
import time

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError
from pangeohub.services import supervisor
from pangeohub.services.base import Service


def register(app: typer.Typer) -> None:
    for command in (up, down, status, logs, restart, token, check):
        app.command()(command)


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise PangeoError(
            f"`pangeohub {action}` needs root: every person's server runs as their own Linux account, and only "
            "root can create those accounts and start processes as them",
            f"run it as root: sudo pangeohub {action}",
        )


def up(detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background; return once healthy."),
       upgrade: bool = typer.Option(False, "--upgrade", hidden=True,
                                    help="Started by the installer beside people's running servers: a start that "
                                    "fails leaves them running for the version started again after it.")) -> None:
    """Start the platform (foreground; Ctrl-C stops it cleanly)."""
    from pangeohub.ops.bootstrap import ensure_initial_admin
    from pangeohub.targets import checked_target
    from pangeohub.targets.local.lifecycle import release

    require_root("up")
    rt = state.runtime()
    rt.target.services(rt)  # a target with nothing to run here (kubernetes) refuses before anything is made
    checked_target(rt.config)  # what the target cannot honour in the config, all of it in one message
    pid = supervisor.supervisor_pid(rt)
    if pid is not None:
        typer.echo(f"pangeohub is already running (pid {pid}): {rt.public_url}")
        return
    for note in rt.target.notes():
        typer.echo(f"note: {note}")
    rt.paths.ensure()
    rt.target.preflight(rt)  # live checks of where servers run (this machine's cgroups, a Slurm cluster)
    https_preflight(rt)
    created = ensure_initial_admin(rt)
    if detach:
        typer.echo("starting pangeohub in the background ...")
        supervisor.start_detached(rt, upgrade=upgrade)
        typer.echo(f"pangeohub is up: {rt.public_url}")
    else:
        code = supervisor.Supervisor(rt, log=lambda msg: typer.echo(msg, err=False),
                                     keep_servers_on_failure=upgrade).run()
        if not (upgrade and code):  # the homes and processes of the servers left running stay theirs
            release(rt.config)
        if code:
            raise typer.Exit(code)
    if created:
        name, password = created
        typer.echo(
            f"\nFirst start: log in at {rt.public_url} as '{name}' with password: {password}\n"
            f"(shown once; change it with `pangeohub users passwd {name}`)"
        )


def https_preflight(rt) -> None:
    """Warn about plain HTTP on the network; with HTTPS on, have a certificate before the proxy starts."""
    from pangeohub.tls.renew import ensure_certificate
    from pangeohub.tls.status import plain_http_warning

    warning = plain_http_warning(rt.config)
    if warning:
        typer.secho(warning, err=True, fg=typer.colors.RED, bold=True)
    ensure_certificate(rt)


def down() -> None:
    """Stop the platform: user servers, then the hub, then the proxy."""
    require_root("down")
    rt = state.runtime()
    from pangeohub.targets.local.lifecycle import release

    stopped = supervisor.stop(rt)
    release(rt.config)
    if stopped:
        typer.echo("pangeohub stopped")
    else:
        typer.echo("pangeohub is not running")


def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show each service: pid, port, health; and the hub URL. Exit 1 if anything is unhealthy."""
    rt = state.runtime()
    report = collect_status(rt)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"pangeohub: {'running' if report['running'] else 'stopped'}  {report['url']}")
        for name, svc in report["services"].items():
            health = "healthy" if svc["healthy"] else "UNHEALTHY" if report["running"] else "-"
            typer.echo(f"  {name:<12} {svc['state']:<9} pid {svc['pid'] or '-':<8} port {svc['port'] or '-':<6} "
                       f"{health}  restarts {svc['restarts']}")
        if report.get("https"):
            from pangeohub.tls.status import format_status

            for line in format_status(report["https"]):
                typer.echo(line)
        for line in rt.target.format_status(report["target"]) if report["target"] else []:
            typer.echo(line)
        for env in report.get("environments", []):
            detail = {"ready": f"version {env['current']}", "building": "being built in the background",
                      "missing": "not built yet (`pangeohub env build`)", "failed": f"build FAILED: {env['failed']}"}
            typer.echo(f"  environment {env['name']:<16} {detail[env['state']]}")
        for budget in report.get("budgets", []):
            whose = budget["name"] if budget["scope"] == "person" else f"group {budget['name']}"
            level = "USED UP" if budget["exhausted"] else "near"
            typer.echo(f"  budget {level}: {whose} ({budget['source']}), resets {budget['resets']} "
                       "(`pangeohub users budget`)")
        cleaned = report.get("cleaned")
        if cleaned and (cleaned["released"] or cleaned["problems"]):
            typer.echo(f"released at the start of {time.ctime(cleaned['at'])} (left by an interrupted run):")
            for item in cleaned["released"]:
                typer.echo(f"  {item['kind']} of {item['name']}" + (f" ({item['path']})" if item["path"] else ""))
            for problem in cleaned["problems"]:
                typer.echo(f"  could not release: {problem}")
    if not report["healthy"]:
        raise typer.Exit(1)


def collect_status(rt) -> dict:
    pid = supervisor.supervisor_pid(rt)
    written = (supervisor.read_status(rt) or {}) if pid else {}
    saved = written.get("services", {})
    services = {}
    for svc in rt.services():
        info = saved.get(svc.name, {})
        services[svc.name] = {
            "state": info.get("state", "stopped"),
            "pid": info.get("pid"),
            "port": svc.port,
            "healthy": bool(pid) and svc.probe(),
            "restarts": info.get("restarts", 0),
        }
    from pangeohub.leftovers import last_report

    https = None
    if rt.config.hub.tls_mode != "off":
        from pangeohub.tls.status import certificate_status

        https = certificate_status(rt)
    target = rt.target.status(rt)
    from pangeohub.envs.layout import summary

    from pangeohub.budgets.ledger import alerts

    return {
        "budgets": [b.to_json() for b in alerts(rt)],  # budgets past the notice level: for the admins
        "environments": summary(rt.config),
        "https": https,
        "target": target,
        "cleaned": last_report(rt),
        "running": pid is not None,
        "supervisor_pid": pid,
        "install": written.get("install"),  # the installer's record of the runtime the platform runs from
        "healthy": pid is not None and all(s["healthy"] for s in services.values()),
        "url": rt.public_url,
        "services": services,
    }


def logs(
    service: str = typer.Argument(None, help="Service name (default: the supervisor's own log)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines to show."),
) -> None:
    """Show a service's log."""
    rt = state.runtime()
    name = rt.service(service).name if service else "supervisor"
    path = rt.paths.log(name)
    if not path.exists():
        raise PangeoError(f"no log for {name} yet ({path})", "start the platform with `pangeohub up`")
    argv = ["tail", "-n", str(lines)] + (["-F"] if follow else []) + [str(path)]
    os.execvp("tail", argv)


def restart(service: str = typer.Argument(..., help="Service to restart, e.g. hub.")) -> None:
    """Restart one service; the supervisor brings it (and what depends on it) back."""
    require_root("restart")
    rt = state.runtime()
    svc: Service = rt.service(service)
    info = (supervisor.read_status(rt) or {}).get("services", {}).get(svc.name, {})
    pid = info.get("pid") if supervisor.supervisor_pid(rt) else None
    if not pid:
        raise PangeoError(f"{svc.name} is not running", "start the platform with `pangeohub up`")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + svc.start_timeout + 30
    while time.monotonic() < deadline:
        services = (supervisor.read_status(rt) or {}).get("services", {})
        now = services.get(svc.name, {})
        # Services that depend on it restart with it: done once every one of them is back too.
        if now.get("pid") not in (None, pid) and all(s.get("state") == "running" for s in services.values()):
            typer.echo(f"{svc.name} restarted (pid {now['pid']})")
            return
        time.sleep(0.3)
    raise PangeoError(f"{svc.name} did not come back", f"see `pangeohub logs {svc.name}`")


def token(
    user: str = typer.Argument(None, help="Hub user (default: the first admin)."),
    note: str = typer.Option("pangeohub token", help="Note stored with the token."),
    expires_in: str = typer.Option(None, "--expires-in", help="Lifetime, e.g. 1h or 30d (default: none)."),
) -> None:
    """Print a new API token for USER, for scripts and the hub REST API (with --hub-url: default USER is the
    token's own owner)."""
    from pangeohub.hubapi import HubAPI
    from pangeohub.ops.bootstrap import default_admin
    from pangeohub.units import parse_duration

    lifetime = None
    if expires_in:
        try:
            lifetime = int(parse_duration(expires_in))
        except ValueError as exc:
            raise PangeoError(f"--expires-in: {exc}", "e.g. --expires-in 1h") from None
    if state.remote():
        from pangeohub.cli import remote_cmds

        return remote_cmds.token(state.remote(), user, note, lifetime)
    from pangeohub.hubsync import sync_hub_users

    rt = state.runtime()
    name = user or default_admin(rt)
    api = HubAPI(rt)
    sync_hub_users(rt, api, names=[name])  # an account of the platform's own: as the store has it
    api.ensure_user(name)
    typer.echo(api.token(name, note=note, expires_in=lifetime))


def check(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    full: bool = typer.Option(False, "--full", help="Also run the quickstart notebook (catalog, Dask, scratch)."),
) -> None:
    """Run a synthetic user end to end; exit 0 only if every phase passed (with --hub-url: the phases the hub's
    REST API allows, as an admin)."""
    echo = None if as_json else typer.echo
    if state.remote():
        from pangeohub.ops.check_remote import run_remote_check

        if full:
            raise PangeoError("`pangeohub check --full` cannot act on a remote hub (--hub-url): the quickstart "
                              "notebook comes from the hub's own disk",
                              "run it in the hub pod: pangeohub exec kubernetes -- check --full")
        report = run_remote_check(state.remote(), echo=echo)
    else:
        from pangeohub.ops.check import run_check

        report = run_check(state.runtime(), echo=echo, full=full)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if not report["ok"]:
        raise typer.Exit(1)
