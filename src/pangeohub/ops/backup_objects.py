"""The object store's buckets in a backup: read and written back through S3 with the admin credentials.

Why S3 rather than SeaweedFS's own volume files or `weed export`: S3 reads are consistent while the store runs
(a volume file copied mid-write is not), the copy is plain files named by bucket and key that any tool can read
and that restic deduplicates from one backup to the next, it restores onto a store of any version or layout, and
one person's prefix can be put back alone (`restore --user`). The copy (the "mirror") stays under the backup's
staging directory between backups, so a backup downloads only objects that changed since the last one.
"""

from __future__ import annotations

import os
import shutil
from calendar import timegm
from pathlib import Path
from typing import Callable

from pangeohub.errors import PangeoError


CHUNK = 1 << 20


def _safe_key(key: str) -> bool:
    # A key is a path in the mirror: no key may name a file outside its bucket's directory.
    parts = key.split("/")
    return bool(key) and not key.startswith("/") and ".." not in parts and not key.endswith("/")


def mirror_buckets(client, mirror: Path, skip: set[str], tick: Callable[[int], None] = lambda n: None) -> dict:
    """Bring ``mirror/<bucket>/<key>`` up to date with every bucket but ``skip``; returns counts."""
    counts = {"objects": 0, "fetched": 0, "bytes": 0, "skipped_keys": []}
    buckets = [b["Name"] for b in client.list_buckets().get("Buckets", []) if b["Name"] not in skip]
    mirror.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in {p.name for p in mirror.iterdir()} - set(buckets):
        _remove_tree(mirror / stale)
    for bucket in buckets:
        root = mirror / bucket
        root.mkdir(exist_ok=True)
        seen: set[Path] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not _safe_key(key):
                    counts["skipped_keys"].append(f"{bucket}/{key}")
                    continue
                path = root / key
                seen.add(path)
                stamp = timegm(obj["LastModified"].utctimetuple())
                counts["objects"] += 1
                counts["bytes"] += obj["Size"]
                if path.is_file() and path.stat().st_size == obj["Size"] and int(path.stat().st_mtime) == stamp:
                    tick(obj["Size"])
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.part")
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(body, out, CHUNK)
                os.utime(tmp, (stamp, stamp))
                os.replace(tmp, path)
                counts["fetched"] += 1
                tick(obj["Size"])
        for path in [p for p in root.rglob("*") if p.is_file() and p not in seen]:
            path.unlink()  # deleted from the store since the last backup
    return counts


def upload_tree(client, root: Path, bucket: str, prefix: str = "") -> int:
    """Put every file under ``root/<prefix>`` back as ``bucket``'s objects; returns how many."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:
        client.create_bucket(Bucket=bucket)
    count = 0
    base = root / prefix if prefix else root
    if not base.exists():
        return 0
    for path in sorted(p for p in base.rglob("*") if p.is_file() and not _partial(p)):
        with open(path, "rb") as body:  # plain botocore (what the platform uses) has no managed upload
            client.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=body)
        count += 1
    return count


def clear_prefix(client, bucket: str, prefix: str) -> int:
    """Delete every object of ``bucket`` under ``prefix`` (a person's scratch, before it is put back)."""
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            count += len(keys)
    return count


def _partial(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".part")  # a download cut short


def store_error(exc: Exception, what: str) -> PangeoError:
    return PangeoError(f"{what}: the object store did not answer ({exc})",
                       "check `pangeohub status` and `pangeohub logs objectstore`")


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
