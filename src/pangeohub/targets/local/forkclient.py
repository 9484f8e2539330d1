"""Asking the fork server (``forkserver``) for a process: the root side of the wire format in ``forkchild``.

Used by the hub for servers (``fastspawn``) and by the gateway for Dask schedulers and workers (``gateway``).
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from pangeohub.targets.local.forkchild import HEADER

# Variables read when the interpreter or jupyterhub.singleuser is *imported*: a forked server imported them
# already, with the fork server's (empty) values, so a spawn that sets them must exec a fresh Python.
IMPORT_TIME_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONSAFEPATH",
                   "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONMALLOC",
                   "PYTHONWARNINGS", "PYTHONEXECUTABLE", "LD_PRELOAD", "LD_LIBRARY_PATH",
                   "JUPYTERHUB_SINGLEUSER_EXTENSION", "JUPYTERHUB_SINGLEUSER_APP")
# Limits a stock spawn inherits from the hub; forked servers get the same ones, not the fork server's.
RLIMITS = ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK",
           "RLIMIT_MEMLOCK", "RLIMIT_FSIZE")


def forkserver_socket(state_dir: Path) -> Path:
    """Where the fork server listens: a 0700 root directory under the state dir."""
    return Path(state_dir) / "run" / "forkserver" / "forkserver.sock"


def dask_socket(server_socket: Path) -> Path:
    """Where the Dask template listens, beside the fork server's own socket."""
    return server_socket.with_name("dask.sock")


class ForkUnavailable(Exception):
    """The fork server cannot take this start; the stock path can."""


async def ask(path: Path, request: dict, fds: tuple[int, int] = (1, 2), timeout: float = 60.0) -> int:
    """Send one request with ``fds`` as the new process's stdout and stderr; returns its pid once it has become
    the person.

    Non-blocking on the caller's event loop (no thread per pending start: a burst would exhaust the pool)."""
    loop = asyncio.get_running_loop()
    payload = json.dumps(request).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ForkUnavailable(f"fork server not answering at {path}: {exc}") from None
        # A few bytes with two fds into an empty socket buffer: never blocks.
        socket.send_fds(sock, [HEADER.pack(len(payload))], list(fds))
        await loop.sock_sendall(sock, payload)
        reply = b""
        async with asyncio.timeout(timeout):
            while not reply.endswith(b"\n"):
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    break
                reply += chunk
    if not reply:
        raise RuntimeError("the fork server closed the connection without starting the process")
    answer = json.loads(reply)
    if "error" in answer:
        raise RuntimeError(f"the fork server could not start the process: {answer['error']}")
    return int(answer["pid"])
