"""``pangeohub env build [NAME] | list | rollback NAME [VERSION] | remove NAME``: the named environments."""

from __future__ import annotations

import json
import shutil
import time

import typer

from pangeohub.cli.context import state
from pangeohub.errors import PangeoError
from pangeohub.envs.layout import EnvDir, disk_usage, envs_root, uv_cache
from pangeohub.units import format_size

app = typer.Typer(help="Software environments people choose as kernels (config section `environments`).",
                  no_args_is_help=True)


def _spec(rt, name: str):
    for spec in rt.config.environments:
        if spec.name == name:
            return spec
    known = ", ".join(s.name for s in rt.config.environments) or "none configured"
    raise PangeoError(f"there is no environment {name!r} in the config ({known})",
                      "add it to the `environments` section, or use one of those names")


@app.command()
def build(name: str = typer.Argument(None, help="Environment to build (default: every one in the config)."),
          missing: bool = typer.Option(False, "--missing", help="Only environments that have no version yet "
                                       "(what `pangeohub up` runs in the background).")) -> None:
    """Build a new version of an environment (or of each) with uv and make it current."""
    from pangeohub.envs.build import Builder
    from pangeohub.envs.checks import check_groups

    rt = state.runtime()
    specs = [_spec(rt, name)] if name else list(rt.config.environments)
    if missing:
        specs = [s for s in specs if EnvDir.of(rt.config.install_dir, s.name).current() is None]
    if not specs:
        typer.echo("nothing to build" if rt.config.environments else "no environments in the config")
        return
    try:
        check_groups(rt, specs)
    except PangeoError as exc:
        if not missing:
            raise
        # At the first `up` nobody may be in the group yet: build it anyway, and say so in the job's log.
        typer.echo(f"warning: {exc}", err=True)
    builder = Builder(rt, say=typer.echo)
    failed = []
    for spec in specs:
        typer.echo(f"==> building environment '{spec.name}' ...")
        started = time.monotonic()
        try:
            version = builder.build(spec)
        except PangeoError as exc:
            if len(specs) == 1:
                raise
            typer.echo(f"error: {exc}", err=True)
            failed.append(spec.name)
            continue
        typer.echo(f"    '{spec.name}' version {version} is current ({time.monotonic() - started:.1f}s)")
    if failed:
        raise PangeoError(f"{len(failed)} environment(s) failed to build: {', '.join(failed)}",
                          "read the errors above, correct the config and build them again")


@app.command("list")
def list_envs(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Each environment's versions: size (shared files counted once), build time, and who runs each now."""
    from pangeohub.envs.usage import users_by_version

    rt = state.runtime()
    rows = []
    for spec in rt.config.environments:
        envdir = EnvDir.of(rt.config.install_dir, spec.name)
        versions = envdir.versions()
        sizes = disk_usage([envdir.version_dir(v) for v in versions])
        users = users_by_version(envdir, rt.config.users.system_prefix) if versions else {}
        building, failure = envdir.building(), envdir.failure()
        rows.append({
            "name": spec.name, "description": spec.description, "base": spec.base, "groups": spec.groups,
            "current": envdir.current(), "building": building is not None,
            "failed": failure["reason"] if failure else None,
            "versions": [{"version": v, "size": sizes[envdir.version_dir(v)], "built_at": envdir.info(v)["built_at"],
                          "seconds": envdir.info(v)["seconds"], "users": sorted(users.get(v, ()))}
                         for v in versions],
        })
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no environments in the config")
    for row in rows:
        state_word = "building" if row["building"] else "not built" if row["current"] is None else \
            f"version {row['current']}"
        typer.echo(f"{row['name']}  ({state_word}; base {row['base']}; "
                   f"groups {', '.join(row['groups']) or 'everyone'})  {row['description']}")
        if row["failed"]:
            typer.echo(f"  last build FAILED: {row['failed']}")
        for v in row["versions"]:
            mark = "*" if v["version"] == row["current"] else " "
            typer.echo(f"  {mark} {v['version']:>3}  {format_size(v['size']):>7}  built "
                       f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(v['built_at']))} in {v['seconds']:g}s  "
                       f"used by: {', '.join(v['users']) or '-'}")
    cache = uv_cache(rt.config.install_dir)
    if cache.exists() and not as_json:
        typer.echo(f"shared package cache: {format_size(disk_usage([cache])[cache])} ({cache})")


@app.command()
def rollback(name: str = typer.Argument(..., help="Environment."),
             version: int = typer.Argument(None, help="Version to serve (default: the one before the current)."),
             ) -> None:
    """Serve an earlier version again (new kernels start in it; running ones keep theirs)."""
    rt = state.runtime()
    _spec(rt, name)
    envdir = EnvDir.of(rt.config.install_dir, name)
    versions, current = envdir.versions(), envdir.current()
    if version is None:
        older = [v for v in versions if current is None or v < current]
        if not older:
            raise PangeoError(f"environment '{name}' has no version before {current}",
                              f"versions there: {', '.join(map(str, versions)) or 'none'}")
        version = older[-1]
    if version not in versions:
        raise PangeoError(f"environment '{name}' has no version {version}",
                          f"choose one of: {', '.join(map(str, versions)) or 'none (build it first)'}")
    envdir.set_current(version)
    typer.echo(f"'{name}' now serves version {version} (was {current}); new kernels and clusters start in it")


@app.command()
def remove(name: str = typer.Argument(..., help="Environment (may already be gone from the config)."),
           force: bool = typer.Option(False, "--force", help="Remove it although people's processes run it."),
           ) -> None:
    """Delete every version of an environment. Refused while people's servers, kernels or clusters run it."""
    from pangeohub.envs.usage import in_use

    rt = state.runtime()
    envdir = EnvDir.of(rt.config.install_dir, name)
    if not name or "/" in name or name.startswith(".") or not envdir.path.is_dir():
        raise PangeoError(f"there is no built environment {name!r} in {envs_root(rt.config.install_dir)}",
                          "`pangeohub env list` shows what is built")
    users = in_use(envdir, rt.config.users.system_prefix)
    if users and not force:
        raise PangeoError(f"environment '{name}' is in use by: {', '.join(sorted(users))}",
                          "wait until they stop those kernels, servers or clusters, or use --force (their running "
                          "processes lose their files)")
    if envdir.building():
        raise PangeoError(f"environment '{name}' is being built now", "wait for the build to end, then remove it")
    shutil.rmtree(envdir.path)
    still = " (it is still in the config: `pangeohub up` builds it again)" if any(
        s.name == name for s in rt.config.environments) else ""
    typer.echo(f"removed environment '{name}'{still}")
