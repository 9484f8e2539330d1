"""The HTTPS hub's plain-HTTP side: ACME challenges and the redirect on hub.https.http_port, and the renewal
timer. Restarting it loses nothing (the proxy keeps serving HTTPS), so the supervisor may do so freely."""

from __future__ import annotations

import http.client
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
        """Ready when the port answers with our redirect: another program holding the port is not us."""
        ip = self.rt.config.hub.ip
        host = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
        from pangeohub.tls.domain import domain
        from pangeohub.tls.web import https_base

        base = https_base(domain(self.rt.config), self.rt.config.hub.https.port)
        conn = http.client.HTTPConnection(host, self.port, timeout=2)
        try:
            conn.request("GET", "/.pangeohub-probe")
            response = conn.getresponse()
            return response.status == 301 and response.getheader("Location") == f"{base}/.pangeohub-probe"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
