"""``pangeohub render kubernetes``, ``pangeohub build-images``, ``pangeohub deploy kubernetes``."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import typer

from pangeohub.cli.context import state
from pangeohub.config import load_config
from pangeohub.errors import PangeoError

render_app = typer.Typer(help="Write the files of another execution target from the config (nothing runs).",
                         no_args_is_help=True)
deploy_app = typer.Typer(help="Apply a rendered deployment to where it runs.", no_args_is_help=True)
exec_app = typer.Typer(help="Run an admin command where the hub runs.", no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="Config file (default: the global --config, "
                             "$PANGEOHUB_CONFIG, /etc/pangeohub/config.yaml, else built-in defaults).")


def _config(path: str | None):
    return load_config(path or state.config_file)


def _write(files: dict[str, str], out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            target = out / name
            partial = target.with_name(f".{target.name}.tmp")
            partial.write_text(text)
            os.replace(partial, target)
    except OSError as exc:
        raise PangeoError(f"cannot write the rendered files to {out}: {exc.strerror}",
                          "choose a directory you can write with --out DIR") from None


@render_app.command("kubernetes")
def render_kubernetes(
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the values files and manifests."),
    config: str = CONFIG_OPTION,
) -> None:
    """Values for the jupyterhub 4.4.0 and dask-gateway 2026.3.0 charts, plus plain manifests."""
    from pangeohub.targets.kubernetes.render import render

    files = render(_config(config))
    _write(files, out)
    for name in files:
        typer.echo(str(out / name))


@deploy_app.command("kubernetes")
def deploy_kubernetes(
    config: str = CONFIG_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands; run nothing."),
    out: Path = typer.Option(None, "--out", "-o", help="Keep the rendered files here (default: a temporary "
                             "directory)."),
    charts: Path = typer.Option(None, "--charts", help="Directory holding jupyterhub-4.4.0/ and "
                                "dask-gateway-2026.3.0/ (default: the charts' public repositories)."),
) -> None:
    """Render, then `helm upgrade --install` both charts and apply the manifests in the current kube context."""
    from pangeohub.targets.kubernetes import deploy
    from pangeohub.targets.kubernetes.render import render

    cfg = _config(config)
    files = render(cfg)
    if dry_run:
        rendered = out or Path("<rendered>")
        if out:
            _write(files, out)
        helm = deploy.find_tool("helm") or "helm"
        kubectl = deploy.find_tool("kubectl") or "kubectl"
        for step in deploy.deploy_commands(cfg, rendered, helm, kubectl, charts):
            typer.echo(step.shown())
        return
    helm, kubectl = deploy.tools()
    deploy.check_cluster(kubectl)
    with tempfile.TemporaryDirectory(prefix="pangeohub-k8s-") as tmp:
        rendered = out or Path(tmp)
        _write(files, rendered)
        key, secret = deploy.new_admin_credentials()
        deploy.run(deploy.deploy_commands(cfg, rendered, helm, kubectl, charts, key, secret), typer.echo)
    typer.echo(f"deployed to namespace {cfg.kubernetes.namespace}; `kubectl --namespace "
               f"{cfg.kubernetes.namespace} get service proxy-public` shows the address")


@exec_app.command("kubernetes", context_settings={
    # Everything from the first argument on is the command for the hub pod, its options included.
    "allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False})
def exec_kubernetes(
    ctx: typer.Context,
    config: str = CONFIG_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the kubectl command; run nothing."),
) -> None:
    """Run a pangeohub admin command (users, access, clusters, check...) in the hub pod with kubectl exec,
    e.g. `pangeohub exec kubernetes -- users add alice`."""
    import sys

    from pangeohub.targets.kubernetes import deploy, remote

    cfg = _config(config)
    args = ctx.args[1:] if ctx.args[:1] == ["--"] else ctx.args  # click may keep the separator
    kubectl = deploy.find_tool("kubectl")
    argv = remote.exec_argv(cfg, kubectl or "kubectl", args, tty=sys.stdin.isatty() and sys.stdout.isatty())
    if dry_run:
        typer.echo(" ".join(argv))
        return
    if kubectl is None:
        raise PangeoError(f"cannot reach the hub pod: kubectl not found (looked on PATH and in "
                          f"{Path(sys.executable).parent})", "install kubectl for your cluster's version, "
                          "or print the command with --dry-run")
    deploy.check_cluster(kubectl)
    raise typer.Exit(remote.run(argv))


def build_images(
    config: str = CONFIG_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the Dockerfiles' location and the commands."),
    engine: str = typer.Option(None, "--engine", help="docker or podman (default: whichever is installed)."),
    push: bool = typer.Option(False, "--push", help="Push both images to kubernetes.images.registry."),
    repo: Path = typer.Option(None, "--repo", help="Source checkout to build from (default: the one "
                              "around the current directory)."),
    workdir: Path = typer.Option(None, "--workdir", help="Where the Dockerfiles are written (default: "
                                 "<repo>/build/images)."),
) -> None:
    """Build the user and hub images from requirements/runtime.lock with docker or podman."""
    from pangeohub.targets.kubernetes import images

    cfg = _config(config)
    source = images.repository(repo)
    where = workdir or source / "build" / "images"
    found = images.find_engine(engine)
    if not dry_run:
        if found is None:
            raise images.no_engine_error(engine)
        images.check_engine(found)
    if push and not cfg.kubernetes.images.registry:
        raise PangeoError("--push needs a registry: kubernetes.images.registry is empty",
                          "set kubernetes.images.registry, e.g. registry.example.org/pangeo")
    plan = images.plan(cfg, found or engine or "docker", source, where, push)
    _write(plan.dockerfiles, where)
    for command in plan.commands:
        typer.echo(("" if dry_run else "$ ") + " ".join(command))
        if not dry_run:
            if subprocess.run(command).returncode != 0:
                raise PangeoError(f"`{' '.join(command[:3])} ...` failed; see its output above",
                                  "fix the cause and run `pangeohub build-images` again")


def register(app: typer.Typer) -> None:
    app.add_typer(render_app, name="render")
    app.add_typer(deploy_app, name="deploy")
    app.add_typer(exec_app, name="exec")
    app.command("build-images")(build_images)
