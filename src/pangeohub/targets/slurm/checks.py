"""Live checks `up` runs against a Slurm cluster before it starts anything.

Each failing check is one ``PangeoError`` that says what is wrong on the cluster and how to fix it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pangeohub
from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.client import SlurmClient

# Run on a compute node by the platform's own Python: where it is, which pangeohub it imports, and whether each
# environment's interpreter (argv[1]: {name: [python, distribution...]}) starts and finds its packages there.
_PROBE = """
import json, subprocess, sys, pangeohub
CHECK = "import sys, importlib.metadata as m; [m.version(d) for d in sys.argv[1:]]"
envs = {}
for name, (python, *dists) in json.loads(sys.argv[1]).items():
    try:
        proc = subprocess.run([python, "-c", CHECK, *dists], capture_output=True, text=True, timeout=60)
        envs[name] = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1] if proc.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        envs[name] = str(exc)
print(json.dumps({"python": sys.executable, "version": pangeohub.__version__, "envs": envs}))
"""


def built_environments(config) -> dict[str, list[str]]:
    """{name: [python of its current version, its packages' distribution names]} of every environment of the
    config that has a version: what a kernel or a Dask worker of it runs on a compute node."""
    from pangeohub.envs.layout import EnvDir

    found = {}
    for spec in config.environments:
        envdir = EnvDir.of(config.install_dir, spec.name)
        version = envdir.current()
        if version is not None:
            dists = [match[0] for match in (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", p.strip()) for p in spec.packages)
                     if match]
            found[f"{spec.name} (version {version})"] = [str(envdir.python(version)), *dists]
    return found


def check_partitions(client: SlurmClient, wanted: list[str]) -> None:
    """Every partition the config names exists and is up."""
    known = client.partitions()
    for name in wanted:
        if name not in known:
            raise PangeoError(f"Slurm partition {name!r} does not exist (the cluster has: "
                              f"{', '.join(sorted(known)) or 'none'})",
                              "fix the partition in the profile, or ask the site to create it")
        if not known[name].available:
            raise PangeoError(f"Slurm partition {name!r} is not up", f"ask the site why (`sinfo -p {name}`)")


def probe_runtime(client: SlurmClient, partition: str, nodes: list[str], python: str = sys.executable,
                  timeout: float = 60, environments: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """Run the platform's Python on each named node; refuse when it is missing or a different pangeohub, or when
    an environment (``built_environments``) does not run there.

    A person's server and their Dask workers run these same paths on the nodes: if a node lacks them (no shared
    filesystem there) or has another version, spawns would fail later in ways much harder to read.
    """
    environments = environments or {}
    here = {"python": python, "version": pangeohub.__version__}
    found = {}
    for node in nodes:
        out = client.run("srun", f"--partition={partition}", f"--nodelist={node}", "--nodes=1", "--ntasks=1",
                         "--time=1", "--quiet", python, "-c", _PROBE, json.dumps(environments), timeout=timeout)
        try:
            seen = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise PangeoError(f"the runtime probe on Slurm node {node} printed {out.strip()[-200:]!r}",
                              f"make {python} visible on the compute nodes (shared filesystem)") from None
        envs = seen.pop("envs", {})
        if seen != here:
            raise PangeoError(f"Slurm node {node} runs {seen}, the hub runs {here}",
                              "install the same pangeohub in the same path on the shared filesystem")
        broken = {name: why for name, why in envs.items() if why}
        if broken:
            lines = "; ".join(f"{name}: {environments[name][0]}: {why}" for name, why in sorted(broken.items()))
            raise PangeoError(f"environment(s) {', '.join(sorted(broken))} do not run on Slurm node {node} ({lines})",
                              f"keep {Path(python).parent.parent / 'envs'} on the filesystem the compute nodes "
                              "share, then build again (`pangeohub env build NAME`) if a version is incomplete")
        found[node] = {**seen, "envs": sorted(envs)}
    return found
