"""Which local account a TCP client of the hub is: only the proxy may speak for another address.

The hub's own port listens where people's servers reach its API (loopback on one machine, the cluster network on
Slurm), so any person's kernel can connect to it directly and send an ``X-Forwarded-For`` of its choosing: with
it, a guesser escapes the per-address login throttle, or locks a person out by claiming their address. The
proxy runs as root; a person's processes never do. So a forwarded address is believed only when the connection
comes from a socket on this machine that belongs to root, found in the kernel's socket table by its two ends; a
connection from another machine (a compute node) or from anybody else's socket is taken for what it is, its own
address.

The socket is looked up by its four-tuple through the kernel's sock_diag netlink interface (what ``ss`` uses):
one hash lookup. Reading ``/proc/net/tcp`` instead makes the kernel print every socket on the machine, ~20 ms of
the hub's event loop per login with 300 servers and their kernels. The table still answers whenever sock_diag
does not find the socket: the kernel says "not found" in the same words when it has no inet_diag at all, and the
proxy's own connections, the common case, are always found.
"""

from __future__ import annotations

import socket
import struct

TRUSTED_UID = 0  # the proxy's (the supervisor runs every platform service as root)


def _hex_address(ip: str, port: int) -> tuple[str, str]:
    """An address as the kernel prints it in /proc/net/tcp{,6}: the raw 32-bit words in host order."""
    if ":" in ip:
        words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, ip))
        return "".join(f"{word:08X}" for word in words) + f":{port:04X}", "/proc/net/tcp6"
    (word,) = struct.unpack("=I", socket.inet_aton(ip))
    return f"{word:08X}:{port:04X}", "/proc/net/tcp"


def _unmapped(address: tuple) -> tuple[str, int]:
    """A v4 client on a dual-stack socket (``::ffff:a.b.c.d``) as the v4 address its socket really has."""
    ip = address[0].split("%", 1)[0]
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return ip, address[1]


def socket_owner(peer: tuple, local: tuple) -> int | None:
    """The uid owning the socket at ``peer`` connected to our ``local`` end, if it is on this machine."""
    peer, local = _unmapped(peer), _unmapped(local)
    try:
        return _diag_owner(peer, local)
    except OSError:  # not found, or no sock_diag: the socket table, slower
        return _table_owner(peer, local)


# sock_diag (linux/sock_diag.h, linux/inet_diag.h): one SOCK_DIAG_BY_FAMILY request naming the socket exactly.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NO_COOKIE = 0xFFFFFFFF
_UID_OFFSET = 16 + 4 + 48 + 12  # nlmsghdr, inet_diag_msg's family/state/timer/retrans, its sockid, 3 counters


def _diag_owner(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    # The socket seen from its own side: its source is our peer, its destination our end.
    sockid = (struct.pack("!HH", peer[1], local[1]) + socket.inet_pton(family, peer[0]).ljust(16, b"\0")
              + socket.inet_pton(family, local[0]).ljust(16, b"\0") + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE))
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    message = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0) + request
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
        diag.settimeout(2)
        diag.send(message)
        answer = diag.recv(4096)
    (kind,) = struct.unpack_from("=H", answer, 4)
    if kind != _SOCK_DIAG_BY_FAMILY:  # NLMSG_ERROR: no such socket, or no inet_diag in this kernel
        raise OSError("sock_diag did not find the socket")
    (uid,) = struct.unpack_from("=I", answer, _UID_OFFSET)
    return uid


def _table_owner(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    peer_hex, table = _hex_address(*peer)
    local_hex, _ = _hex_address(*local)
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
