"""Kernel ports nobody else is handed in the meantime: a kernel provisioner for the single-user servers.

Fixes an upstream race. jupyter_client picks a kernel's five TCP ports by binding port 0 and closing the
socket; the kernel binds them a moment later. Port 0 hands out ports from the machine's ephemeral range, the
same range every outgoing connection takes its local port from. When many people start at once (a workshop's
first minute: hundreds of connections and dozens of kernels), one of those ports is often taken in between and
the kernel dies with "Address already in use" (1 kernel in 60 in `pangeohub loadtest`).

This provisioner chooses the ports itself, below the ephemeral range, from a block that belongs to the
server's Linux account (its uid picks the block), so that only that person's own kernels choose from it; this
server also remembers what it handed out recently, for kernels still starting. Where the machine's ephemeral
range overlaps the blocks, it leaves the choice to upstream.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from jupyter_client.provisioning import LocalProvisioner

FIRST_PORT = 20000
BLOCK_SIZE = 48  # ports per account: enough for 9 kernels starting at once
BLOCKS = 256  # the blocks end at 32288, below Linux's default ephemeral range (32768-60999)
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "hb_port", "control_port")
RECENT = 120.0  # seconds a handed-out port stays reserved for a kernel that has not bound it yet

_lock = threading.Lock()
_handed_out: dict[int, float] = {}


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        low, high = (int(part) for part in open(path).read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def block_of(uid: int) -> range:
    start = FIRST_PORT + (uid % BLOCKS) * BLOCK_SIZE
    return range(start, start + BLOCK_SIZE)


def usable() -> bool:
    low, high = ephemeral_range()
    last = FIRST_PORT + BLOCKS * BLOCK_SIZE - 1
    return last < low or FIRST_PORT > high


def _free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def choose_ports(ip: str, count: int, uid: int | None = None, now: float | None = None) -> list[int] | None:
    """``count`` ports of this account's block that are free now and not recently handed out; None if the
    block has not that many (the caller then falls back to upstream's choice)."""
    uid = os.getuid() if uid is None else uid
    now = time.monotonic() if now is None else now
    chosen: list[int] = []
    with _lock:
        for port, when in list(_handed_out.items()):
            if now - when > RECENT:
                del _handed_out[port]
        for port in block_of(uid):
            if port not in _handed_out and _free(ip, port):
                chosen.append(port)
                if len(chosen) == count:
                    for taken in chosen:
                        _handed_out[taken] = now
                    return chosen
    return None


class BlockPortProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernels get their ports from the account's own block (see the module)."""

    async def pre_launch(self, **kwargs):
        km = self.parent
        if km is not None and km.transport == "tcp" and not km.cache_ports and usable():
            if all(getattr(km, name) == 0 for name in PORT_NAMES):
                # Upstream records which ports it chose itself (those it re-chooses when a kernel that never
                # came up is restarted); record them as such before filling them in.
                km._record_random_port_names()
                ports = choose_ports(km.ip or "127.0.0.1", len(PORT_NAMES))
                if ports is not None:
                    for name, port in zip(PORT_NAMES, ports):
                        setattr(km, name, port)
        return await super().pre_launch(**kwargs)
