"""Failed-login throttling per (name, client address), with back-off, that an attacker cannot turn on the owner.

Counting failures per name alone let anyone who reaches the login page lock any person (the admin first) out
for the whole window with ``limit`` wrong passwords. Here:

- Failures count per name *and* client address. After ``limit`` failures within the window that pair is
  refused for one minute, then twice as long after each further failure, up to the window.
- Failures of one name from every address together beyond ``NAME_CEILING`` times the limit (guessing spread
  over many addresses) lock the name, but only for addresses it has not logged in from within
  ``KNOWN_FOR``: its owner, at their usual place, still gets in.
- A successful login forgives the failures of that address only; an admin's unlock forgives all.

The address is the one the proxy saw. configurable-http-proxy appends it to ``X-Forwarded-For``; the hub's
tornado (``xheaders``) takes that last entry as ``request.remote_ip`` but first lets a client-sent
``X-Real-Ip`` header replace it, which would let every guess claim a new address. So the address is read
as tornado reads it, without ``X-Real-Ip``, and never from the first entry of ``X-Forwarded-For``; and the
header is believed only from the proxy itself (``pangeohub.auth.peer``): anybody else who reaches the hub's
own port directly (every person's kernel can) is counted at the address they connect from.
"""

from __future__ import annotations

import time

from tornado import netutil

from pangeohub.accounts import LoginRecord
from pangeohub.auth.peer import from_proxy

BACKOFF_START = 60.0  # seconds a (name, address) pair is refused when it reaches the limit
NAME_CEILING = 10  # times the limit: failures of one name from all addresses that lock it for unknown addresses
KNOWN_FOR = 90 * 86400.0  # an address stays known-good for a name this long after a successful login


def client_address(handler) -> str:
    """The client's address as the proxy in front of the hub saw it ("unknown" without a request)."""
    request = getattr(handler, "request", None)
    if request is None:
        return "unknown"
    context = getattr(getattr(request, "connection", None), "context", None)
    peer = getattr(context, "_orig_remote_ip", None) or request.remote_ip
    trusted = getattr(context, "trusted_downstream", None) or set()
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    if not from_proxy(request):
        return peer  # a forged header from a direct client: the address it really connects from
    address = peer
    for candidate in (part.strip() for part in reversed(forwarded.split(","))):
        address = candidate
        if candidate not in trusted:
            break
    return address if netutil.is_valid_ip(address) else peer


def pair_locked_until(record: LoginRecord, limit: int, window: float) -> float:
    """Until when this (name, address) pair is refused; 0 when it is not."""
    count = len(record.failures_here)
    if count < limit:
        return 0.0
    return max(record.failures_here) + min(window, BACKOFF_START * 2 ** (count - limit))


def name_locked(record: LoginRecord, limit: int) -> bool:
    """The name is under attack from many addresses, and this address is not one its owner uses."""
    return record.failures_total >= limit * NAME_CEILING and not record.known_address


def refusal(record: LoginRecord, limit: int, window: float, now: float | None = None) -> str | None:
    """Why a login is refused before its password is even checked; None when it may be tried."""
    now = time.time() if now is None else now
    until = pair_locked_until(record, limit, window)
    if until > now:
        return f"{len(record.failures_here)} failed logins from this address, locked for {until - now:.0f}s more"
    if name_locked(record, limit):
        return (f"{record.failures_total} failed logins from all addresses: only addresses it logged in from "
                f"may try")
    return None
