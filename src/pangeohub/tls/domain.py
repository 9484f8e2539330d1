"""The hub's name, and the checks made before any CA is asked for a certificate for it.

A CA validates a name by connecting to it: if the name points elsewhere or port 80 does not answer, the
request fails and counts against the CA's rate limits. Checking first turns that into one clear message
(what the name resolves to, what this machine's addresses are) without the CA ever being asked.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket

import psutil

from pangeohub.errors import PangeoError
from pangeohub.tls.dns import resolve
from pangeohub.tls.store import TlsPaths

AUTO_NAME = "pangeo"


def local_addresses() -> set[str]:
    found = set()
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                found.add(addr.address.split("%")[0])
    return found


def public_address(config) -> str:
    """hub.https.public_address, else the first global address on this machine's interfaces."""
    given = config.hub.https.public_address
    if given:
        return given
    for address in sorted(local_addresses()):
        ip = ipaddress.ip_address(address)
        if ip.version == 4 and ip.is_global:
            return address
    raise PangeoError(
        "hub.domain 'auto' needs this machine's public address, and no interface has one "
        f"(addresses: {', '.join(sorted(local_addresses()))})",
        "set hub.https.public_address to the address the world reaches this machine at (behind a cloud's NAT), "
        "or give hub.domain as a name",
    )


def domain(config) -> str | None:
    """The name in use: hub.domain, with 'auto' spelled out as <name>.<dashed-address>.sslip.io."""
    name = config.hub.domain
    if name != "auto":
        return name
    address = public_address(config)
    return f"{AUTO_NAME}.{address.replace('.', '-').replace(':', '-')}.sslip.io"


def check_points_here(config, name: str) -> list[str]:
    """The addresses of ``name`` that are this machine's; refuses with the reason when there are none."""
    https = config.hub.https
    resolved = resolve(name, https.acme.resolver)
    mine = local_addresses() | ({https.public_address} if https.public_address else set())
    via = f" (asked {https.acme.resolver})" if https.acme.resolver else ""
    if not resolved:
        raise PangeoError(
            f"hub.domain {name} does not resolve{via}, so no CA can reach this machine by that name",
            f"create a DNS A record {name} -> this machine's public address; this machine has: "
            f"{', '.join(sorted(mine))}",
        )
    here = [a for a in resolved if a in mine]
    if not here:
        raise PangeoError(
            f"hub.domain {name} resolves{via} to {', '.join(resolved)}, which is not this machine "
            f"(its addresses: {', '.join(sorted(mine))})",
            "point the name's DNS record at this machine (changes can take a while to spread), or set "
            "hub.https.public_address if the machine is reached through NAT at one of those addresses",
        )
    return here


def check_port80(config, name: str, addresses: list[str], paths: TlsPaths, timeout: float = 5.0) -> None:
    """Fetch a fresh token from our own challenge listener through ``name``'s addresses, as the CA will."""
    import urllib.request

    port = config.hub.https.http_port
    token = secrets.token_urlsafe(24)
    probe = paths.challenges / token
    paths.ensure()
    probe.write_text(token)
    probe.chmod(0o644)
    problems = []
    try:
        for address in addresses:
            host = f"[{address}]" if ":" in address else address
            url = f"http://{host}:{port}/.well-known/acme-challenge/{token}"
            request = urllib.request.Request(url, headers={"Host": name if port == 80 else f"{name}:{port}"})
            try:
                with _no_redirects().open(request, timeout=timeout) as response:
                    if response.read().decode(errors="replace").strip() == token:
                        return
                    problems.append(f"{address}:{port} answered with something else")
            except OSError as exc:
                problems.append(f"{address}:{port}: {getattr(exc, 'reason', exc)}")
    finally:
        probe.unlink(missing_ok=True)
    raise PangeoError(
        f"port {port} of {name} does not answer with pangeohub's challenge listener ({'; '.join(problems)}), so the "
        "CA could not validate the name",
        f"let incoming TCP port {port} through the firewall and make sure no other web server holds it",
    )


def _no_redirects():
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    return urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
