"""What HTTPS costs at the proxy, and what a certificate swap costs.

Starts configurable-http-proxy twice on loopback, as the platform runs it: plain HTTP (stock), and HTTPS
through ``pangeohub/tls/proxy_tls.js`` with a certificate from a CA made on the spot. Both forward to one tiny
HTTP target. Prints, for each: requests per second over one kept-alive connection, new connections per
second (TCP + TLS handshake + one request), and for HTTPS the time from SIGHUP until a new connection gets the
new certificate. Needs no root and no platform.

    /opt/pangeohub/bin/python benchmarks/https.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import free_port  # noqa: E402
from tls_helpers import LocalCA  # noqa: E402
from pangeohub.tls.proxy import LAUNCHER  # noqa: E402

NAME = "bench.pangeo.test"


class Target(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def start_proxy(chp: str, port: int, api_port: int, target: int, tls: tuple[Path, Path] | None, log: Path):
    argv = [chp, "--ip", "127.0.0.1", "--port", str(port), "--api-ip", "127.0.0.1", "--api-port", str(api_port),
            "--default-target", f"http://127.0.0.1:{target}", "--log-level", "warn"]
    if tls:
        argv = ["node", str(LAUNCHER), str(Path(chp).resolve()), *argv[1:], "--ssl-key", str(tls[1]),
                "--ssl-cert", str(tls[0])]
    proc = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": "bench"})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"proxy did not start:\n{log.read_text()}")


def _connect(port: int, ctx: ssl.SSLContext | None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else delayed ACKs, not the proxy, set the pace
    return ctx.wrap_socket(raw, server_hostname=NAME) if ctx else raw


def keepalive_rps(port: int, ctx, seconds: float) -> float:
    sock = _connect(port, ctx)
    request = f"GET /x HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode()
    count, end = 0, time.perf_counter() + seconds
    reader = sock.makefile("rb")
    while time.perf_counter() < end:
        sock.sendall(request)
        while reader.readline() not in (b"\r\n", b""):
            pass
        reader.read(2)
        count += 1
    sock.close()
    return count / seconds


def new_connection_rps(port: int, ctx, seconds: float) -> float:
    request = f"GET /x HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode()
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sock = _connect(port, ctx)
        sock.sendall(request)
        while sock.recv(65536):
            pass
        sock.close()
        count += 1
    return count / seconds


def serial_of(port: int, ctx) -> int:
    from cryptography import x509

    with _connect(port, ctx) as sock:
        return x509.load_der_x509_certificate(sock.getpeercert(binary_form=True)).serial_number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    chp = str(Path(sys.prefix) / "node" / "node_modules" / ".bin" / "configurable-http-proxy")
    work = Path(tempfile.mkdtemp(prefix="pangeohub-bench-https-"))
    ca = LocalCA(work / "ca")
    cert, key, _ = ca.issue("hub", dns=[NAME])
    ctx = ssl.create_default_context(cafile=str(ca.cert_file))
    target = ThreadingHTTPServer(("127.0.0.1", free_port()), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    procs = []
    try:
        plain_port, tls_port = free_port(), free_port()
        procs.append(start_proxy(chp, plain_port, free_port(), target.server_address[1], None, work / "plain.log"))
        procs.append(start_proxy(chp, tls_port, free_port(), target.server_address[1], (cert, key), work / "tls.log"))
        print(f"load average {os.getloadavg()[0]:.2f}, {args.seconds:.0f} s per figure")
        for label, port, context in (("http (stock)", plain_port, None), ("https", tls_port, ctx)):
            print(f"{label:<14} keep-alive {keepalive_rps(port, context, args.seconds):7.0f} req/s   "
                  f"new connection {new_connection_rps(port, context, args.seconds):6.0f} conn/s")
        old = serial_of(tls_port, ctx)
        _, _, new = ca.issue("hub", dns=[NAME])
        started = time.perf_counter()
        procs[1].send_signal(signal.SIGHUP)
        while serial_of(tls_port, ctx) == old:
            time.sleep(0.005)
        print(f"certificate swap: new certificate served {1000 * (time.perf_counter() - started):.0f} ms after SIGHUP "
              f"(serial {new:x}); a restart instead would drop every open connection")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        target.shutdown()


if __name__ == "__main__":
    main()
