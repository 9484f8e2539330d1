"""Object storage without a running platform: config rules, identities, credentials, the SeaweedFS command."""

import json
import stat
import sys
from pathlib import Path

import pytest
from harness import cli

from pangeohub.config import parse_config
from pangeohub.config.model import StorageSection
from pangeohub.config.storage import ScratchSection
from pangeohub.errors import PangeoError
from pangeohub.storage.credentials import CredentialStore
from pangeohub.storage.hook import scratch_env
from pangeohub.storage.identities import Credentials, configure_command, static_config, user_actions
from pangeohub.storage.ttl import seaweed_ttl
from pangeohub.storage.weed import StoreLayout, server_command, setup_commands

CONFIGS = Path(__file__).parent / "config"


@pytest.mark.parametrize("given, ttl", [("7d", "1w"), ("3d", "3d"), ("90m", "90m"), ("36h", "36h"), ("12w", "12w"),
                                        ("300m", "5h"), ("1m", "1m"), (14 * 86400, "2w")])
def test_expiry_becomes_a_seaweedfs_ttl(given, ttl):
    assert seaweed_ttl(ScratchSection(expiry=given).expiry) == ttl


@pytest.mark.parametrize("given", ["90s", "30s", "0", "256w"])
def test_expiry_that_seaweedfs_cannot_keep_is_refused(given):
    with pytest.raises(PangeoError, match="storage.scratch.expiry.*whole minutes"):
        parse_config(f"storage: {{scratch: {{expiry: '{given}'}}}}")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("storage*.yaml")), ids=lambda p: p.name)
def test_storage_config_files_through_the_cli(path):
    proc = cli("config", "validate", str(path), check=False)
    if ".ok." in path.name:
        assert proc.returncode == 0, proc.stderr
        return
    reason = path.name.split(".error.")[1].removesuffix(".yaml")
    expected = {
        "expiry-seconds": "storage.scratch.expiry (got '90s')",
        "bucket-name": "storage.scratch.bucket (got 'My_Scratch'): 'My_Scratch' is not an S3 bucket name",
        "external-missing": "mode is 'external' but `external`",
        "port-clash": "storage.port and hub.port are both 9000",
        "memory-limit-too-small": "storage.memory_limit (got '256M'): 256M is below the 512M SeaweedFS needs",
        "scratch-quota-not-a-size": "storage.scratch.quota (got 'plenty'): 'plenty' is not a size",
    }[reason]
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_users_actions_reach_only_their_own_prefix():
    actions = user_actions("al", "scratch", ["catalog"])
    assert actions == ["Read:scratch/al/*", "Write:scratch/al/*", "List:scratch/al/*", "Tagging:scratch/al/*",
                       "Read:catalog", "List:catalog"]
    # 'al/*' must not cover 'alice/': the slash before '*' is what keeps prefixes apart.
    assert not any(a.startswith(("Read:scratch/al*", "Write:scratch/al*")) for a in actions)
    assert not any(a.split(":")[0] == "Admin" or a in ("Read", "Write", "List") for a in actions)


def test_only_the_admin_identity_is_in_the_static_config():
    admin = Credentials("ADMINKEY", "adminsecret")
    identities = static_config(admin)["identities"]
    assert [i["name"] for i in identities] == ["pangeohub-admin"]
    assert "Admin" in identities[0]["actions"]


def test_configure_command_replaces_the_identity_exactly():
    text = configure_command("bob", Credentials("K", "S"), ["Read:scratch/bob/*"])
    first, second = text.strip().splitlines()
    assert first == "s3.configure -user user-bob -delete -apply"
    assert second == "s3.configure -user user-bob -access_key K -secret_key S -actions Read:scratch/bob/* -apply"


def test_credentials_are_private_files_and_stable(tmp_path):
    store = CredentialStore(tmp_path)
    creds, created = store.ensure("alice")
    again, created_again = store.ensure("alice")
    assert created and not created_again and again == creds
    assert len(creds.key) == 20 and creds.key.isupper() and len(creds.secret) == 40
    assert stat.S_IMODE(store.path("alice").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "storage").stat().st_mode) == 0o700
    assert store.ensure("bob")[0] != creds


def test_user_environment_carries_only_the_users_own_key():
    env = scratch_env("http://127.0.0.1:9", "scratch", "alice", Credentials("USERKEY", "usersecret"))
    assert env["PANGEO_SCRATCH"] == "s3://scratch/alice/"
    assert env["AWS_ACCESS_KEY_ID"] == "USERKEY" and env["AWS_SECRET_ACCESS_KEY"] == "usersecret"
    assert json.loads(env["FSSPEC_S3"])["endpoint_url"] == env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9"


def test_unsigned_bodies_only_on_loopback():
    def s3_config(endpoint):
        env = scratch_env(endpoint, "scratch", "alice", Credentials("USERKEY", "usersecret"))
        return json.loads(env["FSSPEC_S3"])["config_kwargs"]["s3"]

    assert s3_config("http://127.0.0.1:8333") == {"addressing_style": "path", "payload_signing_enabled": False}
    assert s3_config("http://10.0.0.5:8333") == {"addressing_style": "path"}
    assert s3_config("https://s3.example.org") == {"addressing_style": "path"}


def test_every_seaweedfs_port_is_explicit_and_extras_are_off(tmp_path):
    storage = StorageSection()
    argv = server_command(Path(sys.prefix) / "bin" / "weed", storage, StoreLayout.under(tmp_path))
    flags = dict(arg.lstrip("-").split("=", 1) for arg in argv if arg.startswith("-") and "=" in arg)
    for server in ("master", "volume", "filer", "s3"):
        assert f"{server}.port" in flags and f"{server}.port.grpc" in flags, server
    assert flags["s3.port.iceberg"] == "0" and flags["s3.port.lance"] == "0"
    assert flags["master.telemetry"] == "false" and flags["master.electionTimeout"] == "1s"
    assert flags["dir"].startswith(str(tmp_path))
    assert "fs.configure -locationPrefix=/buckets/scratch/ -ttl=1w -apply" in setup_commands(storage)


def test_external_endpoint_prefers_a_users_own_credentials(tmp_path):
    from pangeohub.config import Config
    from pangeohub.secrets import write_private
    from pangeohub.services.runtime import Runtime
    from pangeohub.storage.external import external_credentials

    shared = tmp_path / "shared.json"
    rt = Runtime(config=Config(state_dir=tmp_path / "state", storage={
        "mode": "external", "external": {"endpoint_url": "https://s3.example.org/", "credentials_file": str(shared)}}))
    with pytest.raises(PangeoError, match="credentials_file .* does not exist"):
        external_credentials(rt, "alice")
    write_private(shared, Credentials("SHARED", "s").to_json())
    own = CredentialStore(rt.paths.root)
    write_private(own.path("alice"), Credentials("ALICE", "a").to_json())
    assert external_credentials(rt, "alice").key == "ALICE"
    assert external_credentials(rt, "bob").key == "SHARED"
    assert rt.config.storage.external.endpoint_url == "https://s3.example.org"
    assert "objectstore" not in [s.name for s in rt.services()]  # nothing embedded to run
