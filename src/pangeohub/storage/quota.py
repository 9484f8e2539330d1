"""Per-person scratch quota, enforced where S3 requests enter the store.

SeaweedFS's own quotas are per bucket and applied after the fact by a periodic loop (the bucket turns
read-only once over), so nothing upstream refuses the one PUT that would take a person's prefix past a limit.
The S3 port's forwarder therefore reads each request's head: an upload into ``<scratch>/<name>/`` whose size
would take ``name``'s usage past the quota is answered with an S3 ``QuotaExceeded`` error and never reaches
SeaweedFS; every other request is forwarded byte for byte (head and body as sent, so signatures still verify),
and bodies are streamed, never buffered.

Usage per person is listed once through SeaweedFS (admin identity), then kept up to date in memory: each
accepted upload adds its size at once (so two uploads racing cannot both slip under the limit), a delete or a
completed/aborted multipart upload drops the figure so the next upload lists again, and a figure older than
``REFRESH`` seconds is listed again (an upload that failed upstream is over-counted only until then). Only
uploads signed with the owner's own key (or the admin's) count: others' are refused by SeaweedFS anyway and
must not eat someone's quota.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

REFRESH = 300.0
_CREDENTIAL = re.compile(r"Credential\s*=\s*([^/,\s]+)/")
_V2_KEY = re.compile(r"\bAWS\s+([^:\s]+):")


def human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}{unit}".replace(".0" + unit, unit)
    return f"{size}B"


def error_response(status: int, code: str, message: str, resource: str = "") -> bytes:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{}</Code><Message>{}</Message>'
            '<Resource>{}</Resource></Error>'.format(code, escape(message), escape(resource))).encode()
    reason = {400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


class Request:
    """The parts of one HTTP request head the quota needs."""

    def __init__(self, head: bytes):
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        url = urlsplit(self.target)
        self.query = parse_qs(url.query, keep_blank_values=True)
        bucket, _, self.key = unquote(url.path).lstrip("/").partition("/")
        self.bucket = bucket

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.header("transfer-encoding") or "").lower()

    def content_length(self) -> int | None:
        """The body's length on the wire; ValueError when the head is ambiguous (a smuggling attempt)."""
        values = set(self.headers.get("content-length", []))
        if len(values) > 1:
            raise ValueError("conflicting Content-Length headers")
        return int(values.pop()) if values else None

    def access_keys(self) -> set[str]:
        """Every access key the request names (SigV4 or V2, header or presigned query)."""
        authorization = " ".join(self.headers.get("authorization", []))
        keys = set(_CREDENTIAL.findall(authorization)) | set(_V2_KEY.findall(authorization))
        keys |= {value.split("/")[0] for value in self.query.get("X-Amz-Credential", [])}
        keys |= set(self.query.get("AWSAccessKeyId", []))
        return keys

    def clean_key(self) -> str | None:
        """The key with no '.', '..' or empty segments, or None when it has any: a server that cleans paths
        could store such a key under another prefix than the one it seems to name."""
        parts = self.key.split("/")
        if any(part in (".", "..") for part in parts) or "" in parts[:-1]:
            return None
        return self.key


class ScratchQuota:
    """Decides, per request, whether an upload into the scratch bucket fits its owner's quota."""

    def __init__(self, bucket: str, quota: int, credentials_dir: str, admin_key: str, store):
        self.bucket, self.quota, self.admin_key = bucket, quota, admin_key
        self.credentials_dir = Path(credentials_dir)
        self.store = store  # AdminStore: blocking calls, run in threads
        self.used: dict[str, tuple[int, float]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    def _owner_key(self, name: str) -> str | None:
        import json

        try:
            return json.loads((self.credentials_dir / f"{name}.json").read_text())["key"]
        except (OSError, ValueError, KeyError):
            return None

    async def _usage(self, name: str) -> int:
        async with self.locks.setdefault(name, asyncio.Lock()):
            known = self.used.get(name)
            if known is None or time.monotonic() - known[1] > REFRESH:
                known = (await asyncio.to_thread(self.store.usage, self.bucket, name), time.monotonic())
                self.used[name] = known
            return known[0]

    async def _upload_size(self, request: Request) -> int:
        decoded = request.header("x-amz-decoded-content-length")  # streamed (aws-chunked) uploads
        if decoded is not None:
            return int(decoded)
        source = request.header("x-amz-copy-source")
        if source is not None:  # a copy carries no body: the size is the source object's
            copy_range = re.match(r"bytes=(\d+)-(\d+)", request.header("x-amz-copy-source-range") or "")
            if copy_range:
                return int(copy_range.group(2)) - int(copy_range.group(1)) + 1
            bucket, _, key = unquote(source.split("?")[0]).lstrip("/").partition("/")
            return await asyncio.to_thread(self.store.size, bucket, key)
        return request.content_length() or 0

    async def check(self, request: Request) -> bytes | None:
        """None to forward the request; otherwise the S3 error response to send instead."""
        if request.bucket != self.bucket:
            return None
        if request.method == "PUT" and self.quota > 0 and request.key and request.clean_key() is None:
            return error_response(400, "InvalidObjectName", "scratch keys may not hold '.', '..' or empty "
                                  "path segments", f"/{self.bucket}/{request.key}")
        name = request.key.split("/", 1)[0] if "/" in request.key else ""
        if request.method == "POST" and "delete" in request.query:  # batch delete: keys are in the body
            self.used.clear()
            return None
        if not name:
            return None
        if request.method == "DELETE" or (request.method == "POST" and "uploadId" in request.query):
            self.used.pop(name, None)  # delete, abort or complete: list again on the next upload
            return None
        if request.method != "PUT" or self.quota <= 0:
            return None
        keys = request.access_keys()
        if keys and not keys & {self._owner_key(name), self.admin_key}:
            return None  # signed with someone else's key only: SeaweedFS refuses it; it must not count
        size = await self._upload_size(request)
        used = await self._usage(name)
        if used + size > self.quota:
            return error_response(
                403, "QuotaExceeded",
                f"scratch quota exceeded: s3://{self.bucket}/{name}/ holds {human(used)} and this upload adds "
                f"{human(size)}, over the quota of {human(self.quota)} (storage.scratch.quota); delete objects "
                "there to make room, or ask the administrator for a larger quota",
                f"/{self.bucket}/{request.key}",
            )
        self.used[name] = (used + size, self.used[name][1])
        return None


class AdminStore:
    """Sizes asked of SeaweedFS with the admin identity, through the public S3 port (reads pass straight on)."""

    def __init__(self, endpoint: str, key: str, secret: str):
        from pangeohub.storage.client import s3_client
        from pangeohub.storage.identities import Credentials

        self.client = s3_client(endpoint, Credentials(key=key, secret=secret))

    def usage(self, bucket: str, name: str) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{name}/")
        return sum(obj["Size"] for page in pages for obj in page.get("Contents", []))

    def size(self, bucket: str, key: str) -> int:
        import botocore.exceptions

        try:
            return self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except botocore.exceptions.ClientError:
            return 0  # no such source: SeaweedFS answers the copy with its own error


async def _copy_exact(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, length: int,
                      chunk: int) -> None:
    """Copy (or with no writer, drain) exactly ``length`` body bytes, a chunk at a time."""
    while length > 0:
        data = await reader.read(min(chunk, length))
        if not data:
            raise asyncio.IncompleteReadError(b"", length)
        length -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunk: int) -> None:
    """Copy one chunked body (RFC 9112 7.1) as sent, so the next request on the connection is seen too."""
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                writer.write(trailer)
            writer.write(trailer)
            await writer.drain()
            return
        await _copy_exact(reader, writer, size + 2, chunk)


async def relay_requests(client_r: asyncio.StreamReader, up_w: asyncio.StreamWriter,
                         client_w: asyncio.StreamWriter, quota: ScratchQuota, chunk: int) -> None:
    """Client to SeaweedFS, one request at a time (responses flow back on their own pipe).

    S3 clients wait for each response before the next request on a connection, so a refusal written here
    cannot interleave with a response still on its way.
    """
    try:
        while True:
            try:
                head = await client_r.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            request = Request(head)
            try:
                length = None if request.chunked else request.content_length()
                refusal = await quota.check(request)
            except ValueError as exc:
                refusal = error_response(400, "InvalidRequest", f"malformed request: {exc}")
                length = None
            if refusal is not None:
                if length and "100-continue" not in (request.header("expect") or "").lower():
                    # The body is on its way: read it, so that the client sees the error, not a reset.
                    await _copy_exact(client_r, None, length, chunk)
                client_w.write(refusal)
                await client_w.drain()
                return
            up_w.write(head)
            if request.chunked:
                await _copy_chunked(client_r, up_w, chunk)
            elif length:
                await _copy_exact(client_r, up_w, length, chunk)
            else:
                await up_w.drain()
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        try:
            if up_w.can_write_eof():
                up_w.write_eof()
        except OSError:
            pass
