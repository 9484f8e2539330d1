"""The plain-HTTP listener of an HTTPS hub: ACME challenge answers, and a redirect to HTTPS for the rest.

Nothing else is served over plain HTTP, so no password or cookie can travel in clear by accident.
"""

from __future__ import annotations

import contextlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHALLENGE = "/.well-known/acme-challenge/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # ACME tokens are base64url: no '/', no '..'


def https_base(domain: str, port: int) -> str:
    return f"https://{domain}" + ("" if port == 443 else f":{port}")


def redirect_to(redirect_base: str, path: str) -> str:
    """Our HTTPS address with the request's path. The host is ours, not the request's (a forged Host header
    cannot make this an open redirect), and a target that is not a path (``@evil.example/x``, which would
    read as ``https://hub@evil.example/x``) becomes ``/``."""
    return redirect_base + (path if path.startswith("/") else "/")


def make_handler(challenges: Path, redirect_base: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "pangeohub"
        sys_version = ""

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path.startswith(CHALLENGE):
                token = self.path[len(CHALLENGE):].split("?", 1)[0]
                try:
                    body = (challenges / token).read_bytes() if _TOKEN.match(token) else None
                except OSError:
                    body = None
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            # Permanent: browsers remember it.
            self.send_response(301)
            self.send_header("Location", redirect_to(redirect_base, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def do_POST(self):  # noqa: N802
            self.send_response(308)  # keeps the method, but a form must never be posted in clear: tell the client
            self.send_header("Location", redirect_to(redirect_base, self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002
            pass  # tokens and paths are not worth a log line per request

    return Handler


class HttpListener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ip: str, port: int, challenges: Path, redirect_base: str):
        import socket

        self.address_family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        super().__init__((ip, port), make_handler(challenges, redirect_base))


def listener_for(rt) -> HttpListener:
    from pangeohub.tls.domain import domain
    from pangeohub.tls.store import tls_paths

    https = rt.config.hub.https
    paths = tls_paths(rt)
    paths.ensure()
    return HttpListener(rt.config.hub.ip, https.http_port, paths.challenges, https_base(domain(rt.config), https.port))


@contextlib.contextmanager
def serving(rt):
    """The listener in a thread, for a first certificate obtained before the platform's services start."""
    from pangeohub.errors import PangeoError

    try:
        server = listener_for(rt)
    except OSError as exc:
        port = rt.config.hub.https.http_port
        raise PangeoError(f"cannot listen on {rt.config.hub.ip}:{port} for the CA's challenge ({exc.strerror})",
                          f"stop the program holding port {port} (see `ss -ltnp 'sport = :{port}'`), or choose "
                          "another hub.https.http_port that the CA can reach") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
