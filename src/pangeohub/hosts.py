"""What a host name in a URL says about where the traffic goes."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """True for 'localhost' and any loopback address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
