"""`pangeohub deploy kubernetes`: the rendered files applied with helm and kubectl to the current kube context.

The commands are data (``deploy_commands``), so ``--dry-run`` prints exactly what a real run executes, and the
tests check them without a cluster. Order matters: the hub release first (it creates the namespace and the
Secret holding the gateway service's generated token), then the plain manifests, then the gateway release,
which reads that token.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pangeohub.config import Config
from pangeohub.errors import PangeoError
from pangeohub.targets.kubernetes import https, names
from pangeohub.targets.kubernetes.render import (GATEWAY_CHART, GATEWAY_VALUES, HUB_VALUES, JUPYTERHUB_CHART,
                                                 MANIFESTS)

CHART_REPOS = {"jupyterhub": "https://hub.jupyter.org/helm-chart/", "dask-gateway": "https://helm.dask.org/"}
GENERATED = "<generated>"


@dataclass(frozen=True)
class Step:
    argv: list[str]
    # Run only when this command fails (e.g. create the admin Secret only when `get` finds none).
    unless: list[str] | None = None

    def shown(self) -> str:
        text = " ".join(self.argv)
        return f"{' '.join(self.unless)} || {text}" if self.unless else text


def find_tool(name: str) -> str | None:
    """On PATH, else next to this Python (the installer puts helm in the runtime's bin/)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else None


def chart_args(chart: tuple[str, str], charts_dir: Path | None) -> list[str]:
    name, version = chart
    if charts_dir is not None:
        return [str(charts_dir / f"{name}-{version}")]
    return [name, "--repo", CHART_REPOS[name], "--version", version]


def deploy_commands(config: Config, rendered: Path, helm: str, kubectl: str,
                    charts_dir: Path | None = None, admin_key: str = GENERATED,
                    admin_secret: str = GENERATED) -> list[Step]:
    k8s = config.kubernetes
    ns = ["--namespace", k8s.namespace]
    steps = [Step([helm, "upgrade", "--install", k8s.hub_release, *chart_args(JUPYTERHUB_CHART, charts_dir),
                   *ns, "--create-namespace", "--values", str(rendered / HUB_VALUES)])]
    if config.storage.mode == "embedded":
        steps.append(Step(
            [kubectl, *ns, "create", "secret", "generic", names.OBJECTSTORE_SECRET,
             f"--from-literal=key={admin_key}", f"--from-literal=secret={admin_secret}"],
            unless=[kubectl, *ns, "get", "secret", names.OBJECTSTORE_SECRET]))
    if config.hub.tls_mode == "files":
        # The proxy reads its certificate from this Secret (proxy.https.type: secret); render never reads the
        # key, so it is taken from the operator's files here. A renewed certificate replaces it (docs).
        tls = config.hub.https
        steps.append(Step(
            [kubectl, *ns, "create", "secret", "tls", https.TLS_SECRET, f"--cert={tls.cert_file}",
             f"--key={tls.key_file}"],
            unless=[kubectl, *ns, "get", "secret", https.TLS_SECRET]))
    steps.append(Step([kubectl, *ns, "apply", "--filename", str(rendered / MANIFESTS)]))
    if config.gateway.enabled:
        steps.append(Step([helm, "upgrade", "--install", k8s.gateway_release,
                           *chart_args(GATEWAY_CHART, charts_dir), *ns, "--values", str(rendered / GATEWAY_VALUES)]))
    return steps


def tools() -> tuple[str, str]:
    helm, kubectl = find_tool("helm"), find_tool("kubectl")
    missing = [name for name, path in (("helm", helm), ("kubectl", kubectl)) if path is None]
    if missing:
        raise PangeoError(
            f"cannot deploy: {' and '.join(missing)} not found "
            f"(looked on PATH and in {Path(sys.executable).parent})",
            "install helm 3.x/4.x and kubectl for your cluster's version, or print the commands with --dry-run",
        )
    return helm, kubectl


def check_cluster(kubectl: str, timeout: float = 15) -> None:
    """Fail with the reason when the current kube context has no reachable API server."""
    context = subprocess.run([kubectl, "config", "current-context"], capture_output=True, text=True)
    where = context.stdout.strip() or "(none set)"
    try:
        proc = subprocess.run([kubectl, "get", "--raw", "/readyz", f"--request-timeout={int(timeout)}s"],
                              capture_output=True, text=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess([], 1, "", f"no answer within {timeout:.0f}s")
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise PangeoError(
            f"no Kubernetes cluster is reachable from the current kube context {where}: {reason}",
            "point kubectl at the cluster (KUBECONFIG, `kubectl config use-context NAME`), check "
            "`kubectl get nodes`, then run again; --dry-run prints the commands without a cluster",
        )


def run(steps: list[Step], echo) -> None:
    for step in steps:
        if step.unless is not None:
            if subprocess.run(step.unless, capture_output=True).returncode == 0:
                echo(f"already there: {' '.join(step.unless[-2:])}")
                continue
        # Secret values never reach the terminal: only the command's shape is shown.
        echo("$ " + " ".join("--from-literal=" + a.split("=", 2)[1] + "=***" if a.startswith("--from-literal=")
                             else a for a in step.argv))
        proc = subprocess.run(step.argv)
        if proc.returncode != 0:
            raise PangeoError(
                f"`{' '.join(step.argv[:4])} ...` failed (exit {proc.returncode}); see its output above",
                "fix the cause and run `pangeohub deploy kubernetes` again (it is idempotent)")


def new_admin_credentials() -> tuple[str, str]:
    from pangeohub.storage.credentials import new_credentials

    creds = new_credentials()
    return "PHADMIN" + secrets.token_hex(7).upper()[:13], creds.secret
