"""Scratch on Kubernetes, without a cluster: the object store pod's own entry point runs real SeaweedFS (here on
loopback, as POD_IP), and the hub's spawn hook of one machine (pangeohub.storage.hook.scratch_hook), given the
hub pod's runtime, makes each person a key that reaches only their own prefix, through the store's Service
address instead of a local namespace.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import botocore.exceptions
import pytest

from pangeohub.config import parse_config
from pangeohub.storage.admin import s3_client
from pangeohub.storage.hook import scratch_hook
from pangeohub.storage.identities import Credentials
from pangeohub.targets.kubernetes.manifests import objectstore as objectstore_manifests
from pangeohub.targets.kubernetes.objectstore import (ADMIN_KEY_ENV, ADMIN_SECRET_ENV, DATA_ENV, KubeRuntime,
                                                      StoreAddress)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("k8s-store")
    # Any ports (gRPC ones included, not port + 10000): the hub reaches the store with each given explicitly.
    ports = dict(zip(["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_internal",
                      "s3_grpc"], _free_ports(8)))
    s3 = _free_ports(1)[0]
    config = parse_config(json.dumps({"state_dir": str(root / "hub-state"),
                                      "storage": {"port": s3, "ports": ports}}))
    # The StatefulSet's environment, as rendered; the admin key as `deploy` puts it in the Secret.
    container = objectstore_manifests(config)[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    admin = Credentials("PHADMINTESTKEY000000", "s" * 40)
    env.update({ADMIN_KEY_ENV: admin.key, ADMIN_SECRET_ENV: admin.secret, "POD_IP": "127.0.0.1",
                DATA_ENV: str(root / "data"), "PATH": os.environ["PATH"]})
    log = open(root / "store.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "pangeohub.targets.kubernetes.objectstore"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        client = s3_client(endpoint, admin)
        deadline = time.monotonic() + 90
        while True:  # ready once the pod's setup made the scratch bucket
            try:
                client.head_bucket(Bucket="scratch")
                break
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                assert proc.poll() is None, (root / "store.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (root / "store.log").read_text()[-3000:]
                time.sleep(0.5)
        rt = KubeRuntime(config=config)
        rt.store = StoreAddress(s3=endpoint, host="127.0.0.1", master_port=ports["master"],
                                master_grpc=ports["master_grpc"], filer_port=ports["filer"],
                                filer_grpc=ports["filer_grpc"])
        yield SimpleNamespace(rt=rt, admin=admin, endpoint=endpoint)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _spawner(rt, name):
    # What the hook reads of PangeoKubeSpawner: its runtime and its user's name.
    return SimpleNamespace(runtime=rt, user=SimpleNamespace(name=name))


def _put(env, key):
    creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    client = s3_client(env["AWS_ENDPOINT_URL_S3"], creds)
    try:
        client.put_object(Bucket="scratch", Key=key, Body=b"x")
        return "ok"
    except botocore.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"]


def test_each_person_gets_a_key_for_their_own_prefix_only(store):
    alice = asyncio.run(scratch_hook(_spawner(store.rt, "alice"), None))
    bob = asyncio.run(scratch_hook(_spawner(store.rt, "bob"), None))
    assert alice["AWS_ENDPOINT_URL_S3"] == store.endpoint  # the Service, not loopback of the hub pod
    assert alice["PANGEO_SCRATCH"] == "s3://scratch/alice/"
    assert alice["AWS_ACCESS_KEY_ID"] != bob["AWS_ACCESS_KEY_ID"]
    assert store.admin.key not in json.dumps([alice, bob])
    assert _put(alice, "alice/result.zarr/.zgroup") == "ok"
    assert _put(alice, "bob/stolen") == "AccessDenied"
    assert _put(bob, "bob/mine") == "ok"


def test_a_second_start_keeps_the_key(store):
    first = asyncio.run(scratch_hook(_spawner(store.rt, "carol"), None))
    again = asyncio.run(scratch_hook(_spawner(store.rt, "carol"), None))
    assert first["AWS_ACCESS_KEY_ID"] == again["AWS_ACCESS_KEY_ID"]
    assert _put(again, "carol/x") == "ok"
