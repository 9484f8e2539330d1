"""Object storage as people use it: real SeaweedFS, real users, code run in their own kernels.

Attacks run where an attacker would run them: in another user's kernel, with that user's own credentials.
"""

import json
import time

import pytest
from harness import Platform

from pangeohub.storage.admin import admin_client
from pangeohub.storage.credentials import CredentialStore, admin_credentials
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

EXPIRY = 60  # seconds: the shortest expiry SeaweedFS keeps (whole minutes)


@pytest.fixture(scope="module")
def store():
    """A platform with a short scratch expiry and a catalog bucket every user may read.

    An object written right at the start lets the expiry test (last in this file) wait less: it has been
    ageing while the other tests ran.
    """
    hub = Platform(extra={"storage": {"expiry": "1m", "readable_buckets": ["catalog"]}})
    try:
        hub.up()
        admin = admin_client(hub.rt)
        admin.put_object(Bucket="scratch", Key="ageing/old.txt", Body=b"old")
        assert admin.get_object(Bucket="scratch", Key="ageing/old.txt")["Body"].read() == b"old"
        admin.put_object(Bucket="catalog", Key="shared.txt", Body=b"for everyone")
        hub.old_written = time.monotonic()
        yield hub
    finally:
        hub.close()


@pytest.fixture(scope="module")
def two_users(store):
    """Two people with running servers: (name, token) each."""
    return store.started_user(), store.started_user()


def run_as(platform, name, token, code, timeout=180):
    async def go():
        async with UserSim(platform.url, name, token=token, timeout=timeout) as user:
            return await user.run(code)

    result = run_sync(go())
    assert result.ok, f"{result.error}\n{result.stderr[-2000:]}"
    return result


def json_out(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


KERNEL_WORK = """
import json, os
import fsspec, numpy as np, xarray as xr
scratch = os.environ["PANGEO_SCRATCH"]
xr.Dataset({"t": (("x",), np.arange(100.0))}).to_zarr(scratch + "out.zarr", mode="w")
total = float(xr.open_zarr(scratch + "out.zarr").t.sum())
with fsspec.open(scratch + "note.txt", "w") as f:
    f.write("mine")
with fsspec.open(scratch + "note.txt") as f:
    note = f.read().decode()
with fsspec.open("s3://catalog/shared.txt") as f:
    catalog = f.read().decode()
print(json.dumps({"scratch": scratch, "total": total, "note": note, "catalog": catalog,
                  "key": os.environ["AWS_ACCESS_KEY_ID"],
                  "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS", "FSSPEC"))}}))
"""


def test_zarr_and_fsspec_reach_scratch_with_no_storage_options(store, two_users):
    admin = admin_client(store.rt)
    (name, token), _ = two_users

    out = json_out(run_as(store, name, token, KERNEL_WORK))

    assert out["scratch"] == f"s3://scratch/{name}/"
    assert out["total"] == 4950.0 and out["note"] == "mine" and out["catalog"] == "for everyone"
    # The kernel holds the user's own key, the one root keeps for them, and nothing of the admin's.
    assert out["key"] == CredentialStore(store.rt.paths.root).get(name).key
    admin_creds = admin_credentials(store.rt)
    assert not any(admin_creds.key in v or admin_creds.secret in v for v in out["env"].values())
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket="scratch", Prefix=f"{name}/")["Contents"]]
    assert f"{name}/note.txt" in keys and f"{name}/out.zarr/zarr.json" in keys


ATTACK = """
import json, os, socket, urllib.request
import botocore.exceptions, botocore.session, fsspec
from botocore.config import Config

victim, state_dir, internal_ports = {victim!r}, {state_dir!r}, {internal_ports!r}
s3 = botocore.session.get_session().create_client("s3", config=Config(s3={{"addressing_style": "path"}}))
key = victim + "/secret.txt"

def attempt(call):
    try:
        out = call()
    except botocore.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"]
    except (PermissionError, FileNotFoundError, OSError) as exc:
        return type(exc).__name__
    return "allowed" if out is None else out

def batch_delete():
    out = s3.delete_objects(Bucket="scratch", Delete={{"Objects": [{{"Key": key}}]}})
    return "allowed" if out.get("Deleted") else "refused:" + ",".join(e["Code"] for e in out.get("Errors", []))

def seaweed_port(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{{port}}/", timeout=3) as resp:
            return "SeaweedFS" in resp.headers.get("Server", "")
    except urllib.error.HTTPError as exc:
        return "SeaweedFS" in exc.headers.get("Server", "")
    except OSError:
        return False

results = {{
    "list_prefix": attempt(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket="scratch", Prefix=victim + "/").get("Contents", [])]),
    "list_bucket": attempt(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket="scratch").get("Contents", [])]),
    "list_top": attempt(lambda: s3.list_objects_v2(Bucket="scratch", Delimiter="/").get("CommonPrefixes")),
    "read": attempt(lambda: s3.get_object(Bucket="scratch", Key=key)["Body"].read().decode()),
    "head": attempt(lambda: s3.head_object(Bucket="scratch", Key=key) and None),
    "overwrite": attempt(lambda: s3.put_object(Bucket="scratch", Key=key, Body=b"owned") and None),
    "delete": attempt(lambda: s3.delete_object(Bucket="scratch", Key=key) and None),
    "batch_delete": batch_delete(),
    "copy_out": attempt(lambda: s3.copy_object(Bucket="scratch", Key=os.environ["PANGEO_SCRATCH"][len("s3://scratch/"):] + "stolen", CopySource="scratch/" + key) and None),
    "multipart_in": attempt(lambda: s3.create_multipart_upload(Bucket="scratch", Key=victim + "/mp") and None),
    "s3fs_ls": attempt(lambda: fsspec.filesystem("s3").ls("scratch/" + victim + "/")),
    "s3fs_rm": attempt(lambda: fsspec.filesystem("s3").rm("scratch/" + key) or None),
    "buckets": attempt(lambda: [b["Name"] for b in s3.list_buckets()["Buckets"]]),
    "private_bucket_read": attempt(lambda: s3.get_object(Bucket="private", Key="admin.txt")["Body"].read().decode()),
    "private_bucket_list": attempt(lambda: s3.list_objects_v2(Bucket="private").get("Contents")),
    "catalog_write": attempt(lambda: s3.put_object(Bucket="catalog", Key="planted.txt", Body=b"x") and None),
    "catalog_delete": attempt(lambda: s3.delete_object(Bucket="catalog", Key="shared.txt") and None),
    "create_bucket": attempt(lambda: s3.create_bucket(Bucket="mine") and None),
    "delete_bucket": attempt(lambda: s3.delete_bucket(Bucket="scratch") and None),
    "bucket_policy": attempt(lambda: s3.put_bucket_policy(Bucket="scratch", Policy='{{"Statement": []}}') and None),
    "credential_file": attempt(lambda: open(state_dir + "/storage/credentials/" + victim + ".json").read()),
    "store_files": attempt(lambda: os.listdir(state_dir + "/objectstore")),
    "internal_ports": [p for p in internal_ports if seaweed_port(p)],
}}
print(json.dumps(results))
"""


def test_another_users_credentials_cannot_touch_my_scratch_or_other_buckets(store, two_users):
    rt = store.rt
    admin = admin_client(rt)
    admin.create_bucket(Bucket="private")
    admin.put_object(Bucket="private", Key="admin.txt", Body=b"admins only")
    (victim, victim_token), (attacker, attacker_token) = two_users
    run_as(store, victim, victim_token,
           "import fsspec, os\nwith fsspec.open(os.environ['PANGEO_SCRATCH'] + 'secret.txt', 'w') as f: f.write('precious')")

    ports = rt.config.storage.ports
    code = ATTACK.format(victim=victim, state_dir=str(rt.paths.root),
                         internal_ports=[ports.master, ports.volume, ports.filer, ports.s3_internal])
    results = json_out(run_as(store, attacker, attacker_token, code))

    refused = {name: value for name, value in results.items() if value in ("AccessDenied", "PermissionError")}
    for name in ("list_prefix", "list_bucket", "list_top", "read", "overwrite", "delete", "copy_out",
                 "multipart_in", "s3fs_ls", "private_bucket_read", "private_bucket_list",
                 "catalog_write", "catalog_delete", "create_bucket", "delete_bucket", "bucket_policy",
                 "credential_file", "store_files"):
        assert name in refused, f"{name}: {results[name]!r} (all: {results})"
    assert results["head"] == "403"
    assert results["batch_delete"].startswith("refused:AccessDenied")
    assert results["buckets"] == ["catalog"]  # only what they may read: not even the names of the others
    assert results["internal_ports"] == []  # SeaweedFS's own servers are out of reach
    # s3fs swallows the per-key errors of a batch delete, so "s3fs_rm" returns quietly: what counts is that
    # everything the victim and the admin had is intact.
    assert admin.get_object(Bucket="scratch", Key=f"{victim}/secret.txt")["Body"].read() == b"precious"
    assert admin.get_object(Bucket="catalog", Key="shared.txt")["Body"].read() == b"for everyone"
    stolen = admin.list_objects_v2(Bucket="scratch", Prefix=f"{attacker}/").get("Contents", [])
    assert not [o for o in stolen if o["Key"].endswith("stolen")]


def test_many_first_spawns_at_once_each_get_a_working_key_for_their_own_prefix_only(store):
    """Identities made at the same moment are written together (one `weed shell` for many): none may be lost
    or mixed up with another's."""
    from concurrent.futures import ThreadPoolExecutor

    import botocore.exceptions

    from pangeohub.storage.admin import endpoint_url, ensure_user_identity, s3_client

    rt = store.rt
    names = [f"crowd{i}x{time.monotonic_ns() % 10000}" for i in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:  # as the hub's spawn hooks run, in worker threads
        keys = dict(zip(names, pool.map(lambda name: ensure_user_identity(rt, name), names)))
    assert len({creds.key for creds in keys.values()}) == len(names)
    for index, name in enumerate(names):
        client = s3_client(endpoint_url(rt), keys[name])
        client.put_object(Bucket="scratch", Key=f"{name}/mine.txt", Body=name.encode())
        neighbour = names[(index + 1) % len(names)]
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            client.put_object(Bucket="scratch", Key=f"{neighbour}/not-mine.txt", Body=b"x")
    admin = admin_client(rt)
    for name in names:
        assert admin.get_object(Bucket="scratch", Key=f"{name}/mine.txt")["Body"].read() == name.encode()
        assert not admin.list_objects_v2(Bucket="scratch", Prefix=f"{name}/not-mine").get("Contents")


def test_removing_a_user_revokes_their_key_and_deletes_their_scratch(store):
    import botocore.exceptions

    from pangeohub.storage.admin import endpoint_url, ensure_user_identity, s3_client

    rt = store.rt
    name, _ = store.add_user()
    creds = ensure_user_identity(rt, name)  # what the spawn hook does on first spawn
    client = s3_client(endpoint_url(rt), creds)
    client.put_object(Bucket="scratch", Key=f"{name}/data.bin", Body=b"x")

    store.cli("users", "remove", name)

    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
        client.list_objects_v2(Bucket="scratch", Prefix=f"{name}/")
    assert not admin_client(rt).list_objects_v2(Bucket="scratch", Prefix=f"{name}/").get("Contents")
    assert CredentialStore(rt.paths.root).get(name) is None


def test_expiry_deletes_old_objects_and_keeps_new_ones(store):
    admin = admin_client(store.rt)
    time.sleep(max(0.0, store.old_written + EXPIRY / 2 - time.monotonic()))  # when run alone: let it age
    admin.put_object(Bucket="scratch", Key="ageing/new.txt", Body=b"new")
    written = time.monotonic()

    def keys():
        return {o["Key"] for o in admin.list_objects_v2(Bucket="scratch", Prefix="ageing/").get("Contents", [])}

    while "ageing/old.txt" in keys():
        assert time.monotonic() - store.old_written < 3 * EXPIRY, "the old object outlived its expiry by far"
        time.sleep(2)
    assert time.monotonic() - written < EXPIRY, "too slow to tell: the new object is as old as the expiry"
    assert keys() == {"ageing/new.txt"}
    assert admin.get_object(Bucket="scratch", Key="ageing/new.txt")["Body"].read() == b"new"
    with pytest.raises(admin.exceptions.NoSuchKey):
        admin.get_object(Bucket="scratch", Key="ageing/old.txt")


def test_scratch_survives_restarts_of_the_store_and_of_the_platform(fresh_platform):
    fresh_platform.up()
    name, token = fresh_platform.started_user()
    write = "import fsspec, os\nwith fsspec.open(os.environ['PANGEO_SCRATCH'] + 'kept.txt', 'w') as f: f.write('kept')"
    read = "import fsspec, os\nprint(fsspec.open(os.environ['PANGEO_SCRATCH'] + 'kept.txt').open().read().decode())"
    run_as(fresh_platform, name, token, write)

    fresh_platform.cli("restart", "objectstore")
    # The running server keeps its credentials: the identity lives in the store, not in its memory.
    assert run_as(fresh_platform, name, token, read).stdout.strip() == "kept"

    fresh_platform.down()
    fresh_platform.up()

    async def respawn():
        async with UserSim(fresh_platform.url, name, token=token) as user:
            await user.start_server()

    run_sync(respawn())
    assert run_as(fresh_platform, name, token, read).stdout.strip() == "kept"
