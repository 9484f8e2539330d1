"""The spawn hook: each person's S3 credentials and the environment that makes s3fs/fsspec use them.

With these variables ``xr.Dataset.to_zarr(os.environ["PANGEO_SCRATCH"] + "out.zarr")`` and
``fsspec.open("s3://...")`` work with no ``storage_options``: botocore (under s3fs and boto3) reads the key and
the endpoint from ``AWS_*``, and fsspec turns ``FSSPEC_S3`` into default arguments of every S3 filesystem.
The admin identity never reaches a user: only the user's own key is returned.
"""

from __future__ import annotations

import asyncio
import json
import pwd
from urllib.parse import urlsplit

from pangeohub.hosts import is_loopback
from pangeohub.storage.identities import Credentials


def scratch_env(endpoint: str, bucket: str, user: str, creds: Credentials, region: str = "us-east-1") -> dict[str, str]:
    s3_config = {"addressing_style": "path"}
    if is_loopback(urlsplit(endpoint).hostname):
        # Over plain HTTP botocore hashes every body (SHA-256) into the signature: about 1 ms of the kernel's CPU
        # per MB written, a third of what s3fs itself spends (benchmarks/README.md). On loopback nobody sits
        # between the kernel and the store, so the signature covering method, key, headers and length is enough;
        # an endpoint on another host keeps signed bodies.
        s3_config["payload_signing_enabled"] = False
    return {
        "PANGEO_SCRATCH": f"s3://{bucket}/{user}/",
        "AWS_ACCESS_KEY_ID": creds.key,
        "AWS_SECRET_ACCESS_KEY": creds.secret,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_DEFAULT_REGION": region,
        # botocore >= 1.36 adds CRC checksums in streaming trailers by default; S3-compatible stores differ in
        # how they accept them, and the stores here gain nothing from them.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        # fsspec's config from the environment: default kwargs of s3fs.S3FileSystem. Path-style addressing,
        # because bucket names as host names (scratch.127.0.0.1) do not resolve.
        "FSSPEC_S3": json.dumps({"endpoint_url": endpoint, "config_kwargs": {"s3": s3_config}}),
    }


def _credentials_for(rt, user: str) -> Credentials:
    storage = rt.config.storage
    if storage.mode == "embedded":
        from pangeohub.storage.admin import ensure_user_identity

        return ensure_user_identity(rt, user)
    from pangeohub.storage.external import external_credentials

    return external_credentials(rt, user)


async def scratch_hook(spawner, account: pwd.struct_passwd) -> dict[str, str]:
    rt = spawner.runtime
    storage = rt.config.storage
    if storage.mode == "off":
        return {}
    # The endpoint as the server sees it (the target's address when servers run elsewhere); a runtime of a
    # store in a cluster (kubernetes) names its Service itself.
    endpoint = getattr(rt, "s3_endpoint", None) or rt.target.addresses().s3_endpoint
    user = spawner.user.name
    loop = asyncio.get_running_loop()
    creds = await loop.run_in_executor(None, _credentials_for, rt, user)
    region = storage.external.region if storage.mode == "external" else "us-east-1"
    return scratch_env(endpoint, storage.scratch.bucket, user, creds, region)
