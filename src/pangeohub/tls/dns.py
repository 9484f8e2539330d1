"""What a name resolves to, through this machine's resolver or a DNS server the operator names.

A named server (``hub.https.acme.resolver``) shows what the CA will see, which a local /etc/hosts entry can
hide. The standard library cannot ask a given server, so this sends one plain A query over UDP itself.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import struct

from pangeohub.errors import PangeoError


def resolve(name: str, resolver: str | None = None, timeout: float = 3.0) -> list[str]:
    """IPv4 and IPv6 addresses of ``name``; [] when it does not resolve."""
    if resolver:
        return query_a(name, resolver, timeout)
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({info[4][0] for info in infos})


def _server(resolver: str) -> tuple[str, int]:
    host, _, port = resolver.rpartition(":") if resolver.count(":") == 1 else (resolver, "", "53")
    try:
        ipaddress.ip_address(host)
        return host, int(port or 53)
    except ValueError:
        raise PangeoError(f"hub.https.acme.resolver {resolver!r} is not 'address' or 'address:port'",
                          "e.g. resolver: 1.1.1.1") from None


def query_a(name: str, resolver: str, timeout: float) -> list[str]:
    server = _server(resolver)
    ident = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, server)
            reply, _ = sock.recvfrom(4096)
        except OSError as exc:
            raise PangeoError(f"the DNS server {resolver} did not answer for {name} ({exc})",
                              "check hub.https.acme.resolver, or remove it to use this machine's resolver") from None
    got, flags, _, answers, _, _ = struct.unpack("!HHHHHH", reply[:12])
    if got != ident or flags & 0x000F not in (0, 3):  # NOERROR or NXDOMAIN; anything else is a server failure
        raise PangeoError(f"the DNS server {resolver} failed to answer for {name} (rcode {flags & 0xF})")
    offset = 12 + len(question) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(reply, offset)
        rtype, _, _, length = struct.unpack("!HHIH", reply[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[offset:offset + 4]))
        offset += length
    return sorted(set(found))


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # compression pointer: two bytes end the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1
