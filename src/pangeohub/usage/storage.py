"""Bytes each person keeps: their home, and their prefix of the scratch bucket (objects too).

Each person has their own home and their own scratch prefix, so storage is attributed exactly, with no
share-out. Scratch is listed with the object store's admin identity (a request per 1000 objects); that is why
the sampler measures storage every ``usage.storage_interval`` rather than every minute.
"""

from __future__ import annotations

import pwd


def home_bytes(config, system_user: str) -> int | None:
    from pangeohub.targets.local import homes

    try:
        entry = pwd.getpwnam(system_user)
    except KeyError:
        return None  # no account yet: no home
    return int(homes.home_usage(config, entry)["used"])


def scratch_usage(config, people: list[str]) -> dict[str, tuple[int, int]]:
    """(bytes, objects) under each person's scratch prefix; empty where the store is not the embedded one."""
    if config.storage.mode != "embedded" or not people:
        return {}
    from pangeohub.services.runtime import Runtime
    from pangeohub.storage.admin import admin_client

    client = admin_client(Runtime(config=config))
    bucket = config.storage.scratch.bucket
    found = {}
    for person in people:
        size = count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{person}/"):
            for item in page.get("Contents", []):
                size += item["Size"]
                count += 1
        found[person] = (size, count)
    return found
