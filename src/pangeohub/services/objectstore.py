"""The embedded object store (SeaweedFS) as a supervised service, started before the hub.

The process is ``pangeohub.storage.runner``: SeaweedFS in a private network namespace, its S3 API forwarded
to ``127.0.0.1:<storage.port>``. Data lives under ``<state_dir>/objectstore`` and survives restarts.
"""

from __future__ import annotations

import json
import socket
import sys

from pangeohub.secrets import write_private
from pangeohub.services.base import Service
from pangeohub.storage.credentials import CredentialStore, admin_credentials
from pangeohub.storage.identities import static_config
from pangeohub.storage.weed import StoreLayout, server_command, setup_commands, shell_command


class ObjectStoreService(Service):
    name = "objectstore"
    start_timeout = 90.0
    stop_timeout = 30.0

    @property
    def port(self) -> int:
        return self.rt.config.storage.port

    @property
    def layout(self) -> StoreLayout:
        return StoreLayout.under(self.rt.paths.root)

    def prepare(self) -> None:
        layout = self.layout
        layout.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        layout.root.chmod(0o700)
        layout.data.mkdir(mode=0o700, exist_ok=True)
        write_private(layout.s3_config, json.dumps(static_config(admin_credentials(self.rt)), indent=2) + "\n")
        storage = self.rt.config.storage
        weed = self.rt.python_bin("weed")
        admin = admin_credentials(self.rt)
        quota = storage.scratch.quota
        if quota is None:  # by default a person may keep as much in scratch as in their home
            quota = self.rt.config.homes.quota
        plan = {
            "weed": server_command(weed, storage, layout),
            "shell": shell_command(weed, storage),
            "setup": setup_commands(storage),
            "env": {
                **super().env(),
                # Go's soft memory limit: SeaweedFS collects garbage harder near it instead of growing.
                "GOMEMLIMIT": f"{storage.memory_limit // (1 << 20)}MiB",
                "HOME": str(layout.root),
            },
            "cwd": str(layout.root),
            "s3_socket": str(layout.s3_socket),
            "metrics_socket": str(layout.metrics_socket),
            "metrics_port": storage.ports.metrics,
            "port": storage.port,
            # Loopback for the platform's own tools; the target's address too when servers run elsewhere.
            "hosts": sorted({"127.0.0.1", self.rt.target.service_host()}),
            "weed_pid": str(layout.weed_pid),
            "start_timeout": self.start_timeout,
            # Checked by the S3 port's forwarder (pangeohub.storage.quota); the plan file is root-only.
            "scratch_quota": {
                "quota": int(quota), "bucket": storage.scratch.bucket,
                "credentials_dir": str(CredentialStore(self.rt.paths.root).dir),
                "admin_key": admin.key, "admin_secret": admin.secret,
            },
        }
        write_private(layout.plan, json.dumps(plan, indent=2) + "\n")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pangeohub.storage.runner", str(self.layout.plan)]

    def cwd(self):
        return self.layout.root

    def probe(self) -> bool:
        """The forwarded S3 port answers HTTP (it opens only after buckets and expiry are set up)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return sock.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False
