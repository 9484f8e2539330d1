"""The embedded object store's own Prometheus metrics (SeaweedFS's), read through the runner's relay socket
(pangeohub.storage.metrics_relay). Empty for an external S3 service: its metrics are its operator's."""

from __future__ import annotations

import socket

from pangeohub.storage.weed import StoreLayout


def objectstore_metrics(config, timeout: float = 10.0) -> bytes:
    if config.storage.mode != "embedded":
        return b""
    path = StoreLayout.under(config.state_dir).metrics_socket
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            response = b""
            while chunk := sock.recv(1 << 16):
                response += chunk
    except OSError as exc:  # the object store restarting: the next scrape has them
        return f"# the object store's metrics could not be read: {exc}\n".encode()
    head, _, body = response.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if status.split(" ")[1:2] != ["200"]:
        return f"# the object store's metrics answered: {status}\n".encode()
    return body if body.endswith(b"\n") or not body else body + b"\n"
