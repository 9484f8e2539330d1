"""Which local account a TCP client of the hub is: only the proxy may speak for another address.

The hub's own port listens where people's servers reach its API (loopback on one machine, the cluster network on
Slurm), so any person's kernel can connect to it directly and send an ``X-Forwarded-For`` of its choosing: with
it, a guesser escapes the per-address login throttle, or locks a person out by claiming their address. The
proxy runs as root; a person's processes never do. So a forwarded address is believed only when the connection
comes from a socket on this machine that belongs to root, found in the kernel's socket table
(``/proc/net/tcp``, ``tcp6``) by its two ends; a connection from another machine (a compute node) or from
anybody else's socket is taken for what it is, its own address.
"""

from __future__ import annotations

import socket
import struct

TRUSTED_UID = 0  # the proxy's (the supervisor runs every platform service as root)


def _hex_address(ip: str, port: int) -> tuple[str, str]:
    """An address as the kernel prints it in /proc/net/tcp{,6}: the raw 32-bit words in host order."""
    if ":" in ip:
        ip = ip.split("%", 1)[0]
        words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, ip))
        return "".join(f"{word:08X}" for word in words) + f":{port:04X}", "/proc/net/tcp6"
    (word,) = struct.unpack("=I", socket.inet_aton(ip))
    return f"{word:08X}:{port:04X}", "/proc/net/tcp"


def socket_owner(peer: tuple, local: tuple) -> int | None:
    """The uid owning the socket at ``peer`` connected to our ``local`` end, if it is on this machine."""
    peer_hex, table = _hex_address(peer[0], peer[1])
    local_hex, _ = _hex_address(local[0], local[1])
    if peer[0].startswith("::ffff:") and "." in peer[0]:  # a v4 client on a dual-stack socket
        peer_hex, table = _hex_address(peer[0][7:], peer[1])
        local_hex, _ = _hex_address(local[0][7:] if local[0].startswith("::ffff:") else local[0], local[1])
    try:
        with open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[1] == peer_hex and fields[2] == local_hex:
                    return int(fields[7])
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return None


def from_proxy(request) -> bool:
    """Whether this request came straight from the platform's proxy (a root socket on this machine)."""
    stream = getattr(getattr(request, "connection", None), "stream", None)
    sock = getattr(stream, "socket", None)
    if sock is None:
        return False
    try:
        peer, local = sock.getpeername(), sock.getsockname()
    except OSError:
        return False
    if not isinstance(peer, tuple):  # a unix socket: only what may open its path reaches it
        return True
    return socket_owner(peer, local) == TRUSTED_UID
