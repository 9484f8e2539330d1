#!/usr/bin/env python3
"""Named environments: build time with a cold and a warm uv cache, disk used, kernel start against the default.

    sudo /opt/pangeohub/bin/python benchmarks/environments.py [--kernels 5] [--clusters 3] [--no-platform]

Builds throw-away environments in the runtime's ``install_dir/envs`` (removed at the end): a ``base: none`` one
with pandas (the cold build moves the shared cache aside for its duration, then puts it back: run it when no
other build runs) and a ``base: pangeo`` one. Disk is counted with hard links once (``env list``'s figure)
and as the sum of file sizes a copy would take. Then, on a throw-away platform, starts ``--kernels`` kernels
in a named environment and as many in the default stack, and prints the median seconds to a kernel that answers;
then, from a kernel of each, ``--clusters`` Dask clusters (``Gateway().new_cluster()`` + ``scale(2)`` until both
workers are up). With ``gateway.fast_start`` both are forked from the Dask template: the named environment
(``base: pangeo``) as a layer over it; a ``base: none`` environment's processes would start fresh.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform, cli  # noqa: E402
from pangeohub.envs.layout import EnvDir, disk_usage, uv_cache  # noqa: E402
from pangeohub.usersim import run_sync  # noqa: E402

RUNTIME = Path(sys.prefix)
CLUSTER = """
import json, time
from dask_gateway import Gateway
began = time.perf_counter()
gateway = Gateway()
cluster = gateway.new_cluster()
cluster.scale(2)
client = cluster.get_client()
client.wait_for_workers(2)
took = time.perf_counter() - began
client.close(); cluster.shutdown(); gateway.close()
print(json.dumps(took))
"""


def build(config: Path, name: str) -> float:
    began = time.monotonic()
    cli("--config", str(config), "env", "build", name, timeout=3600)
    return time.monotonic() - began


def apparent(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def builds(work: Path) -> tuple[dict, list[str], Path]:
    bare, layered = f"bench{secrets.token_hex(2)}-bare", f"bench{secrets.token_hex(2)}-pangeo"
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(work / "state"), "install_dir": str(RUNTIME),
        "environments": [{"name": bare, "base": "none", "packages": ["pandas", "tabulate"]},
                         {"name": layered, "packages": ["tabulate", "inflection"]}]}))
    cache = uv_cache(RUNTIME)
    aside = cache.with_name(".uv-cache.benchmark-aside")
    figures = {}
    if cache.exists():
        cache.rename(aside)
    try:
        figures["bare_cold_s"] = build(config, bare)
        figures["pangeo_cold_s"] = build(config, layered)
        figures["cache_after_cold_bytes"] = disk_usage([cache])[cache]
        shutil.rmtree(cache)
    finally:
        if aside.exists():
            aside.rename(cache)
    figures["bare_warm_s"] = build(config, bare)  # with the machine's cache (may already hold pandas)
    figures["bare_warm_again_s"] = build(config, bare)
    figures["pangeo_warm_s"] = build(config, layered)
    envdir = EnvDir.of(RUNTIME, bare)
    versions = [envdir.version_dir(v) for v in envdir.versions()]
    counted = disk_usage(versions)
    figures["bare_version_bytes_links_once"] = [counted[v] for v in versions]
    figures["bare_version_bytes_as_copies"] = [apparent(v) for v in versions]
    layered_dir = EnvDir.of(RUNTIME, layered)
    figures["pangeo_version_bytes_as_copies"] = apparent(layered_dir.version_dir(layered_dir.current()))
    return figures, [bare, layered], config


def kernel_starts(count: int, clusters: int) -> dict:
    name = f"bench{secrets.token_hex(2)}-k"
    hub = Platform({"environments": [{"name": name, "packages": ["tabulate"]}]})
    try:
        hub.up()
        hub.cli("env", "build", name, check=False)  # waits while the background job holds the build lock
        while EnvDir.of(RUNTIME, name).current() is None:
            time.sleep(1)
        person, token = hub.started_user()

        async def starts(kernel: str) -> list[float]:
            took = []
            async with hub.sim(person, token=token) as user:
                for _ in range(count):
                    began = time.monotonic()
                    kernel_id = await user.start_kernel(kernel)
                    took.append(time.monotonic() - began)
                    await user.stop_kernel(kernel_id)
            return took

        async def spec_name() -> str:
            async with hub.sim(person, token=token) as user:
                specs = (await user.server_get("/api/kernelspecs"))["kernelspecs"]
            return next(k for k, s in specs.items() if s["spec"]["display_name"] == f"Python ({name})")

        async def cluster_starts(kernel: str) -> list[float]:
            took = []
            async with hub.sim(person, token=token) as user:
                kernel_id = await user.start_kernel(kernel)
                for _ in range(clusters):
                    result = await user.execute(kernel_id, CLUSTER, timeout=300)
                    took.append(json.loads(result.stdout.strip().splitlines()[-1]))
                await user.stop_kernel(kernel_id)
            return took

        spec = run_sync(spec_name())
        named = run_sync(starts(spec))
        default = run_sync(starts("python3"))
        figures = {"kernel_named_median_s": statistics.median(named),
                   "kernel_default_median_s": statistics.median(default),
                   "kernel_named_s": named, "kernel_default_s": default}
        if clusters:
            named_dask, default_dask = run_sync(cluster_starts(spec)), run_sync(cluster_starts("python3"))
            figures.update({"dask_named_median_s": statistics.median(named_dask),
                            "dask_default_median_s": statistics.median(default_dask),
                            "dask_named_s": named_dask, "dask_default_s": default_dask})
        figures["loadavg"] = os.getloadavg()
        return figures
    finally:
        hub.cli("env", "remove", name, "--force", check=False)
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=3, help="Dask clusters from each kernel (0: none).")
    parser.add_argument("--no-platform", action="store_true", help="Only the builds and disk figures.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-envs-"))
    names, config = [], None
    try:
        figures, names, config = builds(work)
        if not args.no_platform:
            figures.update(kernel_starts(args.kernels, args.clusters))
    finally:
        for name in names:
            cli("--config", str(config), "env", "remove", name, "--force", check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
