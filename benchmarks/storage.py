#!/usr/bin/env python3
"""Throughput of a ~500 MB zarr array written to and read from S3 scratch vs the local disk (the user's home),
with 4 MB and 32 MB chunks, through s3fs (fsspec, what ``$PANGEO_SCRATCH`` URLs use) and obstore (zarr v3's
native store, installed into a throw-away folder for the run).

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
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from harness import Platform  # noqa: E402
from pangeohub.units import parse_size  # noqa: E402
from pangeohub.usersim import UserSim, run_sync  # noqa: E402

SETUP = """
import json, os, shutil, sys, time
import numpy as np, zarr
N = {n}
CHUNK = {chunk} // 8  # float64 elements per chunk
STEP = max(CHUNK, 128_000_000 // 8 // CHUNK * CHUNK)  # ~128 MB at a time, as Dask would: within a small profile
SCRATCH = os.environ["PANGEO_SCRATCH"]
TARGETS = {{"local": os.path.expanduser("~/bench.zarr"), "s3fs": SCRATCH + "bench.zarr"}}
if {obstore_path!r}:
    sys.path.insert(0, {obstore_path!r})
    from obstore.store import S3Store
    from zarr.storage import ObjectStore
    _bucket, _, _prefix = SCRATCH[len("s3://"):].partition("/")

    def _obstore(read_only=False):
        return ObjectStore(S3Store(
            _bucket, prefix=_prefix + "bench-obstore.zarr", endpoint=os.environ["AWS_ENDPOINT_URL_S3"],
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"], secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            virtual_hosted_style_request=False, client_options={{"allow_http": True}}), read_only=read_only)

    TARGETS["obstore"] = _obstore
data = np.random.default_rng(0).random(N)  # random floats: compression cannot hide the I/O


def store(target, read_only=False):
    return target(read_only) if callable(target) else target
"""

WRITE = """
out = {{}}
for name, target in TARGETS.items():
    started = time.perf_counter()
    array = zarr.create_array(store=store(target), shape=(N,), chunks=(CHUNK,), dtype="f8", overwrite=True)
    for start in range(0, N, STEP):
        array[start:start + STEP] = data[start:start + STEP]
    if name == "local":
        os.sync()  # count the disk, not the page cache
    out[name] = time.perf_counter() - started
print(json.dumps(out))
"""

READ = """
out = {{}}
for name, target in TARGETS.items():
    started, checking = time.perf_counter(), 0.0
    array, same = zarr.open_array(store(target, True), mode="r"), True
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
fsspec.filesystem("s3").rm(TARGETS["s3fs"], recursive=True)
if "obstore" in TARGETS:
    fsspec.filesystem("s3").rm(SCRATCH + "bench-obstore.zarr", recursive=True)
shutil.rmtree(TARGETS["local"], ignore_errors=True)
del data
"""


def drop_caches() -> bool:
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def measure(platform: Platform, nbytes: int, repeat: int, chunk: int, obstore_path: str) -> dict:
    name, token = platform.started_user()
    n = nbytes // 8

    async def go():
        timings = {"write": {}, "read": {}}
        cold = True
        async with UserSim(platform.url, name, token=token, timeout=1800) as user:
            kernel = await user.start_kernel()
            try:
                await _run(user, kernel, SETUP.format(n=n, chunk=chunk, obstore_path=obstore_path))
                for _ in range(repeat):
                    for phase, code in (("write", WRITE), ("read", READ)):
                        if phase == "read":
                            cold = drop_caches() and cold
                        result = await _run(user, kernel, code.format())
                        for target, seconds in json.loads(result.stdout.strip().splitlines()[-1]).items():
                            timings[phase].setdefault(target, []).append(seconds)
                await _run(user, kernel, CLEAN)
            finally:
                await user.stop_kernel(kernel)
        return timings, cold

    load = os.getloadavg()[0]
    timings, cold = run_sync(go())
    return {"bytes": n * 8, "chunk": chunk, "timings": timings, "cold_reads": cold,
            "load": (load, os.getloadavg()[0])}


async def _run(user, kernel, code):
    result = await user.execute(kernel, code, timeout=1800)
    if not result.ok:
        raise SystemExit(f"benchmark code failed: {result.error}\n{result.stderr[-2000:]}")
    return result


def report(result: dict) -> None:
    mb = result["bytes"] / 1e6
    runs = len(result["timings"]["write"]["local"])
    print(f"zarr array of {mb:.0f} MB (float64, {result['chunk'] / 1e6:.0f} MB chunks), best of {runs}; load "
          f"average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after ({os.cpu_count()} CPUs)")
    for phase in ("write", "read"):
        rates = {t: mb / min(s) for t, s in result["timings"][phase].items()}
        local = rates["local"]
        for target in [t for t in rates if t != "local"]:
            print(f"  {phase:<5}  scratch via {target:<8} {rates[target]:7.1f} MB/s   local disk {local:7.1f} MB/s"
                  f"   ratio {rates[target] / local:.2f}")
    if not result["cold_reads"]:
        print("  note: page caches could not be dropped; reads may be served from memory")


def obstore_folder() -> str:
    """obstore is not part of the runtime: install it into a throw-away folder the kernel can read."""
    import subprocess
    import tempfile

    folder = tempfile.mkdtemp(prefix="pangeohub-bench-obstore-", dir="/var/tmp")
    os.chmod(folder, 0o755)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", folder, "obstore"], check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="500M", help="Array size, e.g. 500M or 1G (default 500M).")
    parser.add_argument("--repeat", type=int, default=2, help="Rounds of write+read (default 2).")
    parser.add_argument("--chunks", default="4M,32M", help="Chunk sizes, comma-separated (default 4M,32M).")
    parser.add_argument("--clients", default="s3fs,obstore", help="s3fs and/or obstore (default both).")
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
    folder = ""
    try:
        platform.up()
        folder = obstore_folder() if "obstore" in args.clients.split(",") else ""
        for chunk in args.chunks.split(","):
            report(measure(platform, parse_size(args.size), args.repeat, parse_size(chunk), folder))
    finally:
        platform.close()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
