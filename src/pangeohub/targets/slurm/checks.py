"""Live checks `up` runs against a Slurm cluster before it starts anything.

Each failing check is one ``PangeoError`` that says what is wrong on the cluster and how to fix it.
"""

from __future__ import annotations

import json
import sys

import pangeohub
from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.client import SlurmClient

# Run on a compute node by the platform's own Python: where it is, and which pangeohub it imports.
_PROBE = ("import json, sys, pangeohub; "
          "print(json.dumps({'python': sys.executable, 'version': pangeohub.__version__}))")


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
                  timeout: float = 60) -> dict[str, dict]:
    """Run the platform's Python on each named node; refuse when it is missing or a different pangeohub.

    A person's server and their Dask workers run this same path on the nodes: if a node lacks it (no shared
    filesystem there) or has another version, spawns would fail later in ways much harder to read.
    """
    here = {"python": python, "version": pangeohub.__version__}
    found = {}
    for node in nodes:
        out = client.run("srun", f"--partition={partition}", f"--nodelist={node}", "--nodes=1", "--ntasks=1",
                         "--time=1", "--quiet", python, "-c", _PROBE, timeout=timeout)
        try:
            seen = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise PangeoError(f"the runtime probe on Slurm node {node} printed {out.strip()[-200:]!r}",
                              f"make {python} visible on the compute nodes (shared filesystem)") from None
        if seen != here:
            raise PangeoError(f"Slurm node {node} runs {seen}, the hub runs {here}",
                              "install the same pangeohub in the same path on the shared filesystem")
        found[node] = seen
    return found
