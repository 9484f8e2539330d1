#!/usr/bin/env python3
"""Where an object-store write spends its time: the same uploads measured at each hop, beside the local disk.

    sudo /opt/pangeohub/bin/python benchmarks/storage_hops.py [--object 32M] [--total 256M] [--parallel 4]

Each row PUTs (then GETs) ``--total`` bytes of random data as ``--object``-sized objects, ``--parallel`` at a
time, at one hop of the path a person's ``to_zarr`` takes, starting from the outermost:

  s3 port       botocore -> 127.0.0.1:<storage.port> (the quota forwarder) -> S3 gateway -> filer -> volume
  s3 gateway    botocore -> the S3 gateway's own port, inside SeaweedFS's namespace (no forwarder)
  filer         plain HTTP PUT to the filer, inside the namespace (no S3: no signature, no S3 bookkeeping)
  volume        /dir/assign on the master, then PUT to the volume server (what the filer does per chunk)
  local disk    files in a root-owned folder beside the store's data, fsync'd, the anchor of the same run

The difference between two rows is what that hop costs. Inner rows run in SeaweedFS's network namespace
(``nsenter``), which is why this needs root. Prints MB/s per row, each with the local disk's figure of the
same run and the load average before and after.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _cpu(*procs) -> list[float]:
    """CPU seconds (user + system) each process has used so far, its own threads only."""
    return [sum(proc.cpu_times()[:2]) for proc in procs]


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / seconds


def _parallel(jobs, parallel: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return time.perf_counter() - started


def _http(host: str, port: int, method: str, path: str, body: bytes | None = None, headers=None) -> bytes:
    conn = http.client.HTTPConnection(host, port, timeout=300)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {data[:200]!r}")
        return data
    finally:
        conn.close()


def measure_s3(endpoint: str, key: str, secret: str, bucket: str, blobs: list[bytes], parallel: int) -> dict:
    from pangeohub.storage.client import s3_client
    from pangeohub.storage.identities import Credentials

    client = s3_client(endpoint, Credentials(key=key, secret=secret))
    names = [f"hops/{os.getpid()}/{i}" for i in range(len(blobs))]
    put = _parallel([lambda n=n, b=b: client.put_object(Bucket=bucket, Key=n, Body=b) for n, b in zip(names, blobs)],
                    parallel)
    get = _parallel([lambda n=n: client.get_object(Bucket=bucket, Key=n)["Body"].read() for n in names], parallel)
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": n} for n in names]})
    return {"put": put, "get": get}


def measure_filer(port: int, bucket: str, blobs: list[bytes], parallel: int) -> dict:
    paths = [f"/buckets/{bucket}/hops-filer/{os.getpid()}/{i}" for i in range(len(blobs))]
    put = _parallel([lambda p=p, b=b: _http("127.0.0.1", port, "PUT", p, b) for p, b in zip(paths, blobs)], parallel)
    get = _parallel([lambda p=p: _http("127.0.0.1", port, "GET", p) for p in paths], parallel)
    _http("127.0.0.1", port, "DELETE", f"/buckets/{bucket}/hops-filer/{os.getpid()}?recursive=true")
    return {"put": put, "get": get}


def measure_volume(master: int, blobs: list[bytes], parallel: int) -> dict:
    fids: list[tuple[str, str]] = []

    def assign_fid():
        # A fresh store answers 503 "volume growth in progress" while it grows its first volumes.
        for _ in range(50):
            try:
                return json.loads(_http("127.0.0.1", master, "GET", "/dir/assign"))
            except RuntimeError as exc:
                if "503" not in str(exc):
                    raise
                time.sleep(0.2)
        return json.loads(_http("127.0.0.1", master, "GET", "/dir/assign"))

    def put(blob):
        assign = assign_fid()
        host, port = assign["url"].rsplit(":", 1)
        _http(host, int(port), "PUT", f"/{assign['fid']}", blob,
              {"Content-Type": "application/octet-stream"})
        fids.append((assign["url"], assign["fid"]))

    put_s = _parallel([lambda b=b: put(b) for b in blobs], parallel)

    def get(url, fid):
        host, port = url.rsplit(":", 1)
        return _http(host, int(port), "GET", f"/{fid}")

    get_s = _parallel([lambda u=u, f=f: get(u, f) for u, f in fids], parallel)
    for url, fid in fids:
        host, port = url.rsplit(":", 1)
        _http(host, int(port), "DELETE", f"/{fid}")
    return {"put": put_s, "get": get_s}


def measure_disk(folder: Path, blobs: list[bytes], parallel: int) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / str(i) for i in range(len(blobs))]

    def write(path, blob):
        with open(path, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())  # count the disk, not the page cache

    put = _parallel([lambda p=p, b=b: write(p, b) for p, b in zip(paths, blobs)], parallel)
    get = _parallel([lambda p=p: p.read_bytes() for p in paths], parallel)
    for path in paths:
        path.unlink()
    folder.rmdir()
    return {"put": put, "get": get}


def inside(args) -> None:
    """Run in SeaweedFS's namespace: the inner hops. Prints one JSON line."""
    blobs = _blobs(args.object, args.total)
    plan = json.loads(Path(args.plan).read_text())
    out = {
        "s3 gateway": measure_s3(f"http://127.0.0.1:{plan['s3_internal']}", plan["key"], plan["secret"],
                                 plan["bucket"], blobs, args.parallel),
        "filer": measure_filer(plan["filer"], plan["bucket"], blobs, args.parallel),
        "volume": measure_volume(plan["master"], blobs, args.parallel),
    }
    print(json.dumps(out))


def _blobs(object_size: int, total: int) -> list[bytes]:
    return [os.urandom(object_size) for _ in range(max(1, total // object_size))]


def outside(args) -> None:
    from harness import Platform

    from pangeohub.services.objectstore import admin_credentials
    from pangeohub.storage.weed import StoreLayout

    platform = Platform()
    try:
        platform.up()
        rt = platform.rt
        creds = admin_credentials(rt)
        layout = StoreLayout.under(rt.paths.root)
        pid = int(layout.weed_pid.read_text())
        ports = rt.config.storage.ports
        plan_path = platform.root / "hops.json"
        plan_path.write_text(json.dumps({"s3_internal": ports.s3_internal, "filer": ports.filer,
                                         "master": ports.master, "key": creds.key, "secret": creds.secret,
                                         "bucket": rt.config.storage.scratch.bucket}))
        plan_path.chmod(0o600)
        blobs = _blobs(args.object, args.total)
        nbytes = len(blobs) * args.object
        load_before = os.getloadavg()
        rows = {}
        weed = psutil.Process(pid)
        forwarder = weed.parent()  # pangeohub.storage.runner: the quota forwarder (unshare execs into weed)
        cpu: list[list[float]] = []
        for _ in range(args.repeat):
            rows.setdefault("local disk", []).append(measure_disk(layout.root / "hops-disk", blobs, args.parallel))
            before = _cpu(weed, forwarder)
            rows.setdefault("s3 port", []).append(measure_s3(f"http://127.0.0.1:{rt.config.storage.port}",
                                                             creds.key, creds.secret,
                                                             rt.config.storage.scratch.bucket, blobs,
                                                             args.parallel))
            cpu.append([after - start for after, start in zip(_cpu(weed, forwarder), before)])
            result = subprocess.run(
                ["nsenter", "-t", str(pid), "-n", "--", sys.executable, __file__, "--inside", str(plan_path),
                 "--object", str(args.object), "--total", str(args.total), "--parallel", str(args.parallel)],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ":".join(sys.path)})
            if result.returncode != 0:
                raise SystemExit(f"inner hops failed:\n{result.stderr[-3000:]}")
            for name, figures in json.loads(result.stdout.strip().splitlines()[-1]).items():
                rows.setdefault(name, []).append(figures)
        load_after = os.getloadavg()
        report(rows, nbytes, args, load_before, load_after)
        mb = nbytes / 1e6
        print("  CPU per MB through the S3 port (PUT then GET, best round): SeaweedFS "
              f"{min(c[0] for c in cpu) * 1e3 / mb:.1f} ms, quota forwarder {min(c[1] for c in cpu) * 1e3 / mb:.1f} ms")
    finally:
        platform.close()


def report(rows: dict, nbytes: int, args, load_before, load_after) -> None:
    best = {name: {phase: _rate(nbytes, min(run[phase] for run in runs)) for phase in ("put", "get")}
            for name, runs in rows.items()}
    disk = best["local disk"]
    print(f"{nbytes / 1e6:.0f} MB as {args.object / 1e6:.0f} MB objects, {args.parallel} at a time, best of "
          f"{args.repeat}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    print(f"  {'hop':<12} {'write MB/s':>10} {'vs disk':>8}   {'read MB/s':>9} {'vs disk':>8}")
    for name in ("s3 port", "s3 gateway", "filer", "volume", "local disk"):
        if name in best:
            put, get = best[name]["put"], best[name]["get"]
            print(f"  {name:<12} {put:10.1f} {put / disk['put']:8.2f}   {get:9.1f} {get / disk['get']:8.2f}")
    print(f"  (local disk: {disk['put']:.1f} MB/s write, {disk['get']:.1f} MB/s read, same run)")


def main() -> None:
    from pangeohub.units import parse_size

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--object", type=parse_size, default=parse_size("32M"), help="Object size (default 32M).")
    parser.add_argument("--total", type=parse_size, default=parse_size("256M"), help="Bytes per row (256M).")
    parser.add_argument("--parallel", type=int, default=4, help="Uploads at a time (default 4, like zarr).")
    parser.add_argument("--repeat", type=int, default=2, help="Rounds; the best is shown (default 2).")
    parser.add_argument("--inside", metavar="PLAN", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        args.plan = args.inside
        inside(args)
    else:
        outside(args)


if __name__ == "__main__":
    main()
