"""SeaweedFS's Prometheus metrics, out of its private network namespace through a root-only Unix socket.

The metrics port is inside the namespace with SeaweedFS's other unauthenticated ports (runner.py says why);
a thread of the runner joins that namespace (setns applies to the calling thread only) and answers each
connection on ``metrics.sock`` with one request relayed to the metrics port. The socket lives in the object
store's 0700 directory, so only root (the usage service) reaches it.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000


def _join_net_namespace(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the object store's network namespace")
    finally:
        os.close(fd)


def _relay_one(client: socket.socket, port: int) -> None:
    with client:
        client.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 8192:
            chunk = client.recv(4096)
            if not chunk:
                return
            request += chunk
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
                upstream.sendall(request)
                while data := upstream.recv(1 << 16):
                    client.sendall(data)
        except OSError:
            client.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")


def _serve(pid: int, port: int, path: str, log) -> None:
    try:
        _join_net_namespace(pid)
        Path(path).unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        os.chmod(path, 0o600)
        server.listen(8)
    except OSError as exc:  # the S3 service does not depend on it: say so and go on without metrics
        log(f"object store metrics not relayed: {exc}")
        return
    while True:
        try:
            client, _ = server.accept()
        except OSError:
            return
        _relay_one(client, port)


def start_relay(pid: int, port: int, path: str, log) -> None:
    threading.Thread(target=_serve, args=(pid, port, path, log), name="metrics-relay", daemon=True).start()
