"""Scheduler preload: the dashboard accepts only clients holding the cluster's certificate.

distributed serves the dashboard over TLS when ``distributed.scheduler.dashboard.tls.*`` is set, but builds a
server context that never asks for a client certificate, so any account on the machine could read it over
loopback. Requiring the certificate (which only the owner and the gateway hold) closes that.
"""

from __future__ import annotations

import ssl


def dask_setup(scheduler) -> None:
    server = getattr(scheduler, "http_server", None)
    context = getattr(server, "ssl_options", None)
    if isinstance(context, ssl.SSLContext):
        # Tornado wraps each new connection with this context, so the change applies from now on.
        context.verify_mode = ssl.CERT_REQUIRED
