#!/usr/bin/env python3
"""Throughput of a ~500 MB zarr array written to and read from S3 scratch vs the local disk (the user's home).

Runs the way a person would: in a real user's kernel, with ``$PANGEO_SCRATCH`` and no storage_options.

    sudo /opt/pangeohub/bin/python benchmarks/storage.py              # a throw-away platform of its own
    sudo /opt/pangeohub/bin/python benchmarks/storage.py --size 1G --repeat 3 --memory-limit 1G
    sudo /opt/pangeohub/bin/python benchmarks/storage.py --scratch-quota 0   # S3 port without the quota check

Prints MB/s for each target and the scratch/local ratio. Page caches are dropped before each read when the
machine allows it (root, writable /proc/sys/vm/drop_caches); otherwise reads may come from memory on both
sides, and the output says so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import Platform  # noqa: E402
from pangeohub.units import parse_size  # noqa: E402
from pangeohub.usersim import UserSim, run_sync  # noqa: E402

SETUP = """
import json, os, shutil, time
import numpy as np, zarr
N = {n}
CHUNK = 4_000_000  # 32 MB chunks of float64
STEP = 4 * CHUNK  # written and read 128 MB at a time, as Dask would: the kernel stays within a 2 GB profile
TARGETS = {{"scratch": os.environ["PANGEO_SCRATCH"] + "bench.zarr", "local": os.path.expanduser("~/bench.zarr")}}
data = np.random.default_rng(0).random(N)  # random floats: compression cannot hide the I/O
"""

WRITE = """
out = {{}}
for name, url in TARGETS.items():
    started = time.perf_counter()
    array = zarr.create_array(store=url, shape=(N,), chunks=(CHUNK,), dtype="f8", overwrite=True)
    for start in range(0, N, STEP):
        array[start:start + STEP] = data[start:start + STEP]
    if name == "local":
        os.sync()  # count the disk, not the page cache
    out[name] = time.perf_counter() - started
print(json.dumps(out))
"""

READ = """
out = {{}}
for name, url in TARGETS.items():
    started, checking = time.perf_counter(), 0.0
    array, same = zarr.open_array(url, mode="r"), True
    for start in range(0, N, STEP):
        back = array[start:start + STEP]
        checked = time.perf_counter()
        same = np.array_equal(back, data[start:start + STEP]) and same
        checking += time.perf_counter() - checked  # not I/O: left out of the time
    out[name] = time.perf_counter() - started - checking
    assert same, name
print(json.dumps(out))
"""

CLEAN = """
import fsspec
fsspec.filesystem("s3").rm(TARGETS["scratch"], recursive=True)
shutil.rmtree(TARGETS["local"], ignore_errors=True)
"""


def drop_caches() -> bool:
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def measure(platform: Platform, nbytes: int, repeat: int) -> dict:
    name, token = platform.started_user()
    n = nbytes // 8

    async def go():
        timings = {"write": {"scratch": [], "local": []}, "read": {"scratch": [], "local": []}}
        cold = True
        async with UserSim(platform.url, name, token=token, timeout=1800) as user:
            kernel = await user.start_kernel()
            try:
                await _run(user, kernel, SETUP.format(n=n))
                for _ in range(repeat):
                    for phase, code in (("write", WRITE), ("read", READ)):
                        if phase == "read":
                            cold = drop_caches() and cold
                        result = await _run(user, kernel, code.format())
                        for target, seconds in json.loads(result.stdout.strip().splitlines()[-1]).items():
                            timings[phase][target].append(seconds)
                await _run(user, kernel, CLEAN)
            finally:
                await user.stop_kernel(kernel)
        return timings, cold

    timings, cold = run_sync(go())
    return {"bytes": n * 8, "timings": timings, "cold_reads": cold}


async def _run(user, kernel, code):
    result = await user.execute(kernel, code, timeout=1800)
    if not result.ok:
        raise SystemExit(f"benchmark code failed: {result.error}\n{result.stderr[-2000:]}")
    return result


def report(result: dict) -> None:
    mb = result["bytes"] / 1e6
    print(f"zarr array of {mb:.0f} MB (float64, 32 MB chunks), best of {len(result['timings']['write']['local'])}")
    for phase in ("write", "read"):
        rates = {t: mb / min(s) for t, s in result["timings"][phase].items()}
        spread = {t: mb / statistics.median(s) for t, s in result["timings"][phase].items()}
        print(f"  {phase:<5}  scratch (S3) {rates['scratch']:7.1f} MB/s   local disk {rates['local']:7.1f} MB/s   "
              f"ratio scratch/local {rates['scratch'] / rates['local']:.2f}   "
              f"(median: {spread['scratch']:.1f} vs {spread['local']:.1f} MB/s)")
    if not result["cold_reads"]:
        print("  note: page caches could not be dropped; reads may be served from memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="500M", help="Array size, e.g. 500M or 1G (default 500M).")
    parser.add_argument("--repeat", type=int, default=2, help="Rounds of write+read (default 2).")
    parser.add_argument("--memory-limit", default=None, help="storage.memory_limit of the object store (e.g. 1G).")
    parser.add_argument("--scratch-quota", default=None,
                        help="storage.scratch.quota (default: homes.quota); 0 forwards S3 without the quota check.")
    args = parser.parse_args()
    storage = {}
    if args.memory_limit:
        storage["memory_limit"] = args.memory_limit
    if args.scratch_quota is not None:
        storage["scratch"] = {"quota": args.scratch_quota}
    platform = Platform(extra={"storage": storage} if storage else None)
    try:
        platform.up()
        report(measure(platform, parse_size(args.size), args.repeat))
    finally:
        platform.close()


if __name__ == "__main__":
    main()
