"""S3 clients of the object store, for the platform's own tools and the quota forwarder alike."""

from __future__ import annotations

import functools
import threading

from pangeohub.storage.identities import Credentials


@functools.cache
def _botocore_session():
    import botocore.session

    return botocore.session.get_session()


_SESSION_LOCK = threading.Lock()


def s3_client(endpoint: str, creds: Credentials, region: str = "us-east-1"):
    """A plain botocore S3 client (what boto3 and s3fs use underneath).

    One botocore session for the process: a fresh one parses the S3 service model again (~0.3 s of CPU),
    which the hub would otherwise pay on every spawn. Sessions are not thread-safe, hence the lock; the
    clients they make are.
    """
    from botocore.config import Config

    with _SESSION_LOCK:
        return _botocore_session().create_client(
            "s3", endpoint_url=endpoint, aws_access_key_id=creds.key, aws_secret_access_key=creds.secret,
            region_name=region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )
