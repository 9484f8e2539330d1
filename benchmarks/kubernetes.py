#!/usr/bin/env python3
"""What checking a Kubernetes deployment costs, offline: render, `helm template` of both charts, the API schemas.

    /opt/pangeohub/bin/python benchmarks/kubernetes.py [--runs 5] [--config FILE]

Needs the charts beside the repository (../shared/charts) and helm in the runtime (install.py --dev). Prints the
median and the slowest of each step, in seconds of wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from k8s_charts import DASK_GATEWAY, JUPYTERHUB, template, validate  # noqa: E402
from pangeohub.config import load_config, parse_config  # noqa: E402
from pangeohub.targets.kubernetes.render import render  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    config = load_config(args.config) if args.config else parse_config("")  # built-in defaults
    times: dict[str, list[float]] = {"render": [], "helm template jupyterhub": [], "helm template dask-gateway": [],
                                     "kubernetes-validate (1.32 + newest)": []}
    objects = 0
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            started = time.perf_counter()
            files = render(config)
            times["render"].append(time.perf_counter() - started)
            for name, text in files.items():
                (out / name).write_text(text)
            started = time.perf_counter()
            hub = template(JUPYTERHUB, "pangeohub", "pangeohub", out / "jupyterhub-values.yaml")
            times["helm template jupyterhub"].append(time.perf_counter() - started)
            started = time.perf_counter()
            gateway = template(DASK_GATEWAY, "dask-gateway", "pangeohub", out / "dask-gateway-values.yaml")
            times["helm template dask-gateway"].append(time.perf_counter() - started)
            started = time.perf_counter()
            problems = validate(hub + gateway)
            times["kubernetes-validate (1.32 + newest)"].append(time.perf_counter() - started)
            assert not problems, problems
            objects = len(hub) + len(gateway)
    print(f"{objects} objects, {args.runs} runs")
    for step, values in times.items():
        print(f"{step:<40} median {statistics.median(values):.3f}s  max {max(values):.3f}s")


if __name__ == "__main__":
    main()
