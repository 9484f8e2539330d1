"""The HTTPS hub's plain-HTTP side: ACME challenges and the redirect on hub.https.http_port, and the renewal
timer. Restarting it loses nothing (the proxy keeps serving HTTPS), so the supervisor may do so freely."""

from __future__ import annotations

import socket
import sys

from pangeohub.services.base import Service


class TlsService(Service):
    name = "tls"
    restart_dependants = False  # the proxy and hub hold no state about it

    @property
    def port(self) -> int:
        return self.rt.config.hub.https.http_port

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "pangeohub"]
        if self.rt.config_file:
            argv += ["--config", str(self.rt.config_file)]
        return argv + ["certs", "serve"]

    def probe(self) -> bool:
        ip = self.rt.config.hub.ip
        host = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
        try:
            with socket.create_connection((host, self.port), timeout=2):
                return True
        except OSError:
            return False
