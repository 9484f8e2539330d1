"""``pangeohub backup [--to DEST] | backup list | backup schedule`` and ``pangeohub restore``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError
from pangeohub.units import format_size

app = typer.Typer(help="Back up the running platform (restic: encrypted, deduplicated, incremental).",
                  invoke_without_command=True, no_args_is_help=False)

_PHASES = {"databases": "databases (online copy)", "objects": "buckets (through S3)", "files": "files and homes"}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="backup")
    root.command()(restore)


def _root(action: str) -> None:
    from pangeohub.cli.platform import require_root

    require_root(action)


@app.callback()
def backup(ctx: typer.Context,
           to: Path = typer.Option(None, "--to", help="Repository directory (default: backup.destination).")) -> None:
    """Back up the running platform now: databases, secrets, config, buckets and homes, with no downtime."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = to
        return
    _root("backup")
    summary = _backup_with_progress(to)
    typer.echo(f"snapshot {summary['snapshot']} in {summary['repository']}: {summary['people']} people, "
               f"{summary['objects']} objects, {format_size(summary['bytes'])} read, "
               f"{format_size(summary['added'])} new, in {summary['seconds']:.1f}s")


def _backup_with_progress(to: Path | None) -> dict:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from pangeohub.ops.backup import run_backup

    rt = state.runtime()
    with Progress(TextColumn("{task.description:<26}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: float, total: float) -> None:
            if phase not in tasks:
                for earlier in tasks.values():  # a phase begins when the one before it has ended
                    task = bar.tasks[earlier]
                    bar.update(earlier, total=task.completed or 1, completed=task.completed or 1)
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=None)
            bar.update(tasks[phase], completed=done, total=total or None)

        summary = run_backup(rt, to, progress)
        for task_id in tasks.values():
            task = bar.tasks[task_id]
            bar.update(task_id, total=task.completed or 1, completed=task.completed or 1)
    return summary


@app.command("list")
def list_snapshots(ctx: typer.Context,
                   source: Path = typer.Option(None, "--from", help="Repository directory (default: backup.destination)."),
                   password_file: Path = typer.Option(None, "--password-file",
                                                      help="The repository's password (default: this platform's)."),
                   as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show the snapshots in the repository, oldest first, with date and size."""
    import json

    from pangeohub.ops.restore import open_source

    rt = state.runtime()
    repo = open_source(rt, source or ctx.obj, password_file)
    rows = [{"id": s.short_id, "time": s.time[:19].replace("T", " ") + " UTC", "size": repo.size(s)}
            for s in sorted(repo.snapshots(), key=lambda s: s.time)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no snapshots yet in {repo.location}")
        return
    typer.echo(f"{'snapshot':<10} {'date':<24} size")
    for row in rows:
        typer.echo(f"{row['id']:<10} {row['time']:<24} {format_size(row['size'])}")


@app.command("schedule")
def schedule() -> None:
    """Take a backup every backup.schedule and keep the newest backup.keep (run by `pangeohub up`)."""
    from pangeohub.ops.backup import repository
    from pangeohub.ops.schedule import run_schedule

    _root("backup schedule")
    rt = state.runtime()
    if not rt.config.backup.schedule:
        typer.echo("backup.schedule is 0: no scheduled backups")
        return
    run_schedule(rt, lambda: _backup_with_progress(None), lambda: repository(rt, None), echo=typer.echo)


def restore(
    source: Path = typer.Option(None, "--from", help="Repository directory (default: backup.destination)."),
    snapshot: str = typer.Option(None, "--snapshot", help="Snapshot id or its first characters (default: newest)."),
    user: str = typer.Option(None, "--user", help="Restore this one person's home and scratch objects only."),
    password_file: Path = typer.Option(None, "--password-file",
                                       help="The repository's password (default: <state_dir>/secrets/backup_password)."),
) -> None:
    """Restore a backup onto a fresh state dir (platform stopped), or one person alone with --user."""
    from pangeohub.ops.restore import open_source, restore_all, restore_user

    _root("restore")
    rt = state.runtime()
    repo = open_source(rt, source, password_file)
    started = time.monotonic()

    def step(text: str) -> None:
        typer.echo(f"  {text} ...")

    if user:
        done = restore_user(rt, repo, snapshot, user, step)
        typer.echo(f"restored {user}'s home and {done['objects']} scratch objects as of {done['time'][:19]} "
                   f"(snapshot {done['snapshot']}) in {time.monotonic() - started:.1f}s")
        return
    done = restore_all(rt, repo, snapshot, step)
    typer.echo(f"restored snapshot {done['snapshot']} ({done['time'][:19]}): {done['people']} people, "
               f"{done['objects']} objects, in {time.monotonic() - started:.1f}s\n"
               "start the platform with `pangeohub up`; the config the backup was made with is in "
               f"{rt.paths.root / 'backup' / 'stage' / 'config.yaml'}")
