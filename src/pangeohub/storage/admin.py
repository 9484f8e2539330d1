"""Admin-side operations on the embedded store, run as root (in the hub's spawn hook, the CLI, tests)."""

from __future__ import annotations

import os
import threading
import time

from pangeohub.errors import PangeoError
from pangeohub.storage.client import s3_client
from pangeohub.storage.credentials import CredentialStore
from pangeohub.storage.identities import Credentials, configure_command, user_actions
from pangeohub.storage.runner import run_shell
from pangeohub.storage.weed import LOOPBACK, StoreLayout, shell_command

# s3.configure reads, changes and writes the whole identity configuration: two at once could lose one.
_CONFIGURE_LOCK = threading.Lock()
# Commands waiting for the lock. Whoever gets it runs all of them in one `weed shell` (a Go process that
# costs ~0.4 s of CPU to start): 60 people spawning at once then start a handful of shells, not 60.
_pending: list[tuple[str, threading.Event, list]] = []
_PENDING_LOCK = threading.Lock()


def _configure(rt, command: str, pid: int | None = None) -> None:
    """Run ``weed shell`` commands that change identities, batched with those of concurrent callers."""
    done, failure = threading.Event(), []
    with _PENDING_LOCK:
        _pending.append((command, done, failure))
    with _CONFIGURE_LOCK:
        if not done.is_set():
            with _PENDING_LOCK:
                batch = list(_pending)
                _pending.clear()
            try:
                text = "".join(text for text, _, _ in batch)
                remote = getattr(rt, "run_weed_shell", None)
                if remote is not None:  # a store in a cluster (targets.kubernetes.objectstore): its Service
                    remote(text)
                else:
                    run_shell(pid or _weed_pid(rt), shell_command(rt.python_bin("weed"), rt.config.storage), text)
            except Exception as exc:  # every caller of the batch hears of it, not only this one
                for _, _, errors in batch:
                    errors.append(exc)
            finally:
                for _, event, _ in batch:
                    event.set()
    if failure:
        raise failure[0]


def endpoint_url(rt) -> str:
    storage = rt.config.storage
    if getattr(rt, "s3_endpoint", None):  # a store in a cluster: its Service
        return rt.s3_endpoint
    if storage.mode == "external":
        return storage.external.endpoint_url
    return f"http://{LOOPBACK}:{storage.port}"




def admin_client(rt):
    from pangeohub.storage.credentials import admin_credentials

    return s3_client(endpoint_url(rt), admin_credentials(rt))


def _weed_pid(rt) -> int:
    path = StoreLayout.under(rt.paths.root).weed_pid
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        raise PangeoError(
            "the object store is not running, so scratch credentials cannot be created",
            "start it with `pangeohub up` (or `pangeohub restart objectstore`); see `pangeohub logs objectstore`",
        ) from None


def store_running(rt) -> bool:
    """Whether the embedded store's server is up (its pidfile names a live process)."""
    try:
        os.kill(_weed_pid(rt), 0)
    except (PangeoError, ProcessLookupError):
        return False
    return True


def _key_works(rt, user: str, creds: Credentials) -> bool:
    """Whether the store knows ``creds`` (asks it as the user; any answer but 'unknown key' counts)."""
    import botocore.exceptions

    client = s3_client(endpoint_url(rt), creds)
    try:
        client.list_objects_v2(Bucket=rt.config.storage.scratch.bucket, Prefix=f"{user}/", MaxKeys=1)
        return True
    except botocore.exceptions.ClientError as exc:
        return exc.response.get("Error", {}).get("Code") not in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
    except botocore.exceptions.BotoCoreError as exc:
        raise PangeoError(
            f"the object store at {endpoint_url(rt)} cannot be reached ({exc}), so {user!r} gets no scratch space",
            "check `pangeohub status` and `pangeohub logs objectstore`",
        ) from None


def ensure_user_identity(rt, user: str, wait: float = 30.0) -> Credentials:
    """``user``'s scratch credentials, made (or re-made, e.g. after the store's data was wiped) when needed."""
    storage = rt.config.storage
    creds, created = CredentialStore(rt.paths.root).ensure(user)
    if not created and _key_works(rt, user, creds):
        return creds
    command = configure_command(user, creds, user_actions(user, storage.scratch.bucket, storage.readable_buckets))
    _configure(rt, command)
    # The S3 gateway learns of the new identity from the filer's change feed, a moment later.
    deadline = time.monotonic() + wait
    while not _key_works(rt, user, creds):
        if time.monotonic() > deadline:
            raise PangeoError(
                f"the object store did not accept the new scratch credentials of {user!r} within {wait:.0f}s",
                "see `pangeohub logs objectstore`; restarting it (`pangeohub restart objectstore`) keeps all data",
            )
        time.sleep(0.2)
    return creds


def forget_user(rt, user: str, delete_data: bool) -> None:
    """On `pangeohub users remove`: revoke the key, and unless kept, delete the scratch objects, so that a
    later user of the same name starts with neither."""
    from pangeohub.storage.identities import user_identity_name

    storage = rt.config.storage
    if storage.mode != "embedded":
        return
    store = CredentialStore(rt.paths.root)
    creds = store.get(user)
    store.remove(user)
    try:
        pid = _weed_pid(rt)
    except PangeoError:
        return  # not running: the identity is replaced when the name is used again (new key, same name)
    _configure(rt, f"s3.configure -user {user_identity_name(user)} -delete -apply\n", pid)
    deadline = time.monotonic() + 30
    while creds is not None and _key_works(rt, user, creds) and time.monotonic() < deadline:
        time.sleep(0.2)  # the gateway drops the key when the filer's change feed reaches it
    if delete_data:
        import botocore.exceptions

        client = admin_client(rt)
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=storage.scratch.bucket, Prefix=f"{user}/"):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=storage.scratch.bucket, Delete={"Objects": keys})
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise PangeoError(
                f"could not delete the scratch objects of {user!r}: {exc}",
                f"they expire after storage.scratch.expiry; or delete s3://{storage.scratch.bucket}/{user}/ as admin",
            ) from None
