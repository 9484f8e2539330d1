"""The per-person scratch quota: the upload that would go past it is refused by the S3 endpoint itself.

Real SeaweedFS behind the platform's S3 port; each person uses their own key with boto3 and s3fs, as from
their environment.
"""

import botocore.exceptions
import pytest

from harness import Platform
from pangeohub.storage.admin import admin_client, endpoint_url, ensure_user_identity, s3_client

pytestmark = pytest.mark.platform

MB = 1 << 20


@pytest.fixture(scope="module")
def store():
    hub = Platform(extra={"storage": {"scratch": {"quota": "8M"}}})
    try:
        hub.up()
        yield hub
    finally:
        hub.close()


def person(store):
    name, _ = store.add_user()
    creds = ensure_user_identity(store.rt, name)  # what the spawn hook does on first spawn
    return name, creds, s3_client(endpoint_url(store.rt), creds)


def refused(exc_info) -> tuple[int, str, str]:
    error = exc_info.value.response
    return error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"], error["Error"]["Message"]


def test_upload_past_the_quota_is_refused_and_nothing_stored_is_lost(store):
    name, _, client = person(store)
    other, _, other_client = person(store)
    first = b"a" * (5 * MB)
    client.put_object(Bucket="scratch", Key=f"{name}/first.bin", Body=first)

    with pytest.raises(botocore.exceptions.ClientError) as exc_info:
        client.put_object(Bucket="scratch", Key=f"{name}/second.bin", Body=b"b" * (5 * MB))
    status, code, message = refused(exc_info)
    assert (status, code) == (403, "QuotaExceeded")
    assert "5M" in message and "8M" in message and "storage.scratch.quota" in message, message

    admin = admin_client(store.rt)
    assert admin.get_object(Bucket="scratch", Key=f"{name}/first.bin")["Body"].read() == first
    assert not admin.list_objects_v2(Bucket="scratch", Prefix=f"{name}/second").get("Contents")
    # A small object still fits, and the connection pool keeps working after a refusal.
    client.put_object(Bucket="scratch", Key=f"{name}/small.txt", Body=b"fits")
    assert client.get_object(Bucket="scratch", Key=f"{name}/small.txt")["Body"].read() == b"fits"
    # Someone else's 5M is theirs to write.
    other_client.put_object(Bucket="scratch", Key=f"{other}/mine.bin", Body=first)
    assert other_client.head_object(Bucket="scratch", Key=f"{other}/mine.bin")["ContentLength"] == 5 * MB


def test_deleting_frees_space_for_the_next_upload(store):
    name, _, client = person(store)
    client.put_object(Bucket="scratch", Key=f"{name}/old.bin", Body=b"o" * (6 * MB))
    with pytest.raises(botocore.exceptions.ClientError, match="QuotaExceeded"):
        client.put_object(Bucket="scratch", Key=f"{name}/new.bin", Body=b"n" * (3 * MB))
    client.delete_object(Bucket="scratch", Key=f"{name}/old.bin")
    client.put_object(Bucket="scratch", Key=f"{name}/new.bin", Body=b"n" * (3 * MB))
    assert client.head_object(Bucket="scratch", Key=f"{name}/new.bin")["ContentLength"] == 3 * MB


def test_multipart_upload_past_the_quota_is_refused(store):
    name, _, client = person(store)
    key = f"{name}/big.bin"
    upload = client.create_multipart_upload(Bucket="scratch", Key=key)["UploadId"]
    part = client.upload_part(Bucket="scratch", Key=key, UploadId=upload, PartNumber=1, Body=b"1" * (5 * MB))
    with pytest.raises(botocore.exceptions.ClientError) as exc_info:
        client.upload_part(Bucket="scratch", Key=key, UploadId=upload, PartNumber=2, Body=b"2" * (5 * MB))
    assert refused(exc_info)[:2] == (403, "QuotaExceeded")
    client.abort_multipart_upload(Bucket="scratch", Key=key, UploadId=upload)
    assert part["ETag"]
    # s3fs, as people's code uses it: a file past the quota fails with the quota's message.
    import s3fs

    creds = ensure_user_identity(store.rt, name)
    fs = s3fs.S3FileSystem(key=creds.key, secret=creds.secret,
                           client_kwargs={"endpoint_url": endpoint_url(store.rt), "region_name": "us-east-1"})
    with pytest.raises(Exception, match="quota"):
        with fs.open(f"scratch/{name}/s3fs.bin", "wb", block_size=5 * MB) as f:
            for _ in range(3):
                f.write(b"s" * (4 * MB))
    assert not admin_client(store.rt).list_objects_v2(Bucket="scratch", Prefix=f"{name}/s3fs").get("Contents")


def test_someone_elses_refused_writes_do_not_use_up_my_quota(store):
    """Uploads into my prefix with another person's key are refused by the store and must not count."""
    victim, _, victim_client = person(store)
    attacker, _, attacker_client = person(store)
    for _ in range(3):
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            attacker_client.put_object(Bucket="scratch", Key=f"{victim}/junk.bin", Body=b"j" * (5 * MB))
    victim_client.put_object(Bucket="scratch", Key=f"{victim}/mine.bin", Body=b"m" * (7 * MB))


def test_dot_segments_cannot_move_an_upload_out_of_the_prefix_it_is_counted_for(store):
    """A key like ``x/../<me>/f`` names prefix ``x/`` to the quota check, but a server that cleans paths
    would store it under ``<me>/``: such uploads are refused outright."""
    import socket

    name, _, _ = person(store)
    with socket.create_connection(("127.0.0.1", store.rt.config.storage.port), timeout=10) as sock:
        sock.sendall(f"PUT /scratch/x/../{name}/f HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
                     "Authorization: AWS4-HMAC-SHA256 Credential=NOBODY/20260101/us-east-1/s3/aws4_request\r\n"
                     "\r\nabcd".encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 400") and "InvalidObjectName" in answer, answer
