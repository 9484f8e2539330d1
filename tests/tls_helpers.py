"""Test CAs for the HTTPS tests: a locally made CA (own-certificate mode, pebble's own TLS) and a real ACME CA,
Debian's pebble, with pebble-challtestsrv as the DNS server it validates names through. Everything listens on
127.0.0.1 only; names resolve only through that DNS server, so nothing leaves the machine."""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import free_port
from pangeohub.usersim import UserSim


class LocalCA:
    """A CA made on the spot; issues server certificates for names and addresses."""

    def __init__(self, directory: Path, name: str = "pangeohub test CA"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_file = self.dir / "ca.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, dns: list[str] = (), ips: list[str] = (),
              lifetime: tuple[int, int] = (-300, 10 * 86400)) -> tuple[Path, Path, int]:
        """(chain file, key file, serial) of a new server certificate, valid from/until now + ``lifetime`` s."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (list(dns) + list(ips))[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now + datetime.timedelta(seconds=lifetime[0]))
                .not_valid_after(now + datetime.timedelta(seconds=lifetime[1]))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(self.key, hashes.SHA256()))
        chain, keyfile = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        keyfile.chmod(0o600)
        return chain, keyfile, serial


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{proc.args[0]} did not listen on {port}:\n{log.read_text()}")


class Pebble:
    """pebble (ACME CA) + pebble-challtestsrv (DNS) on loopback. ``http_port`` is where pebble validates HTTP-01."""

    def __init__(self, directory: Path, http_port: int):
        if not (shutil.which("pebble") and shutil.which("pebble-challtestsrv")):
            raise RuntimeError("pebble is not installed (install.py --dev installs it)")
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        # pebble's directory needs a TLS certificate of its own; Debian's package ships none.
        self.tls_ca = LocalCA(self.dir / "pebble-tls", "pebble directory test CA")
        cert, key, _ = self.tls_ca.issue("pebble", dns=["localhost"], ips=["127.0.0.1"])
        self.port, self.mgmt_port = free_port(), free_port()
        self.dns_port, self.dns_mgmt_port = free_port(), free_port()
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                             "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                             "certificate": str(cert), "privateKey": str(key),
                             "httpPort": http_port, "tlsPort": free_port(),
                             "ocspResponderURL": "", "externalAccountBindingRequired": False}}
        (self.dir / "pebble.json").write_text(json.dumps(config))
        self.procs = []
        dns_log = self.dir / "challtestsrv.log"
        dns = subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{self.dns_mgmt_port}",
             # No default answers: a name resolves only once a test gives it an address.
             "-defaultIPv4", "", "-defaultIPv6", ""],
            stdout=open(dns_log, "wb"), stderr=subprocess.STDOUT)
        self.procs.append(dns)
        _wait_port(self.dns_mgmt_port, dns, dns_log)
        log = self.dir / "pebble.log"
        # No random sleeps before validation, no random nonce rejections: tests wait less and flake less.
        env = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        pebble = subprocess.Popen(["pebble", "-config", str(self.dir / "pebble.json"),
                                   "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                                  stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
        self.procs.append(pebble)
        _wait_port(self.port, pebble, log)
        self.log = log

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def add_a(self, host: str, address: str) -> None:
        body = json.dumps({"host": host.rstrip(".") + ".", "addresses": [address]}).encode()
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.dns_mgmt_port}/add-a", data=body),
                               timeout=5).read()

    def roots_pem(self) -> str:
        """pebble's root CA (made fresh at each start): what a browser would have to trust."""
        ctx = ssl.create_default_context(cafile=str(self.tls_ca.cert_file))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/roots/0", context=ctx, timeout=5) as resp:
            return resp.read().decode()

    def orders(self) -> int:
        """How many certificate orders pebble has seen (from its log): proves a refusal never reached the CA."""
        return self.log.read_text(errors="replace").count("/order-plz")

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Loopback(AbstractResolver):
    """Resolve every name to 127.0.0.1, as the test DNS does for the hub's name."""

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        pass


class HttpsUser(UserSim):
    """A person whose browser trusts ``cafile`` and finds the hub's name on loopback."""

    def __init__(self, *args, cafile: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.ssl = ssl.create_default_context(cafile=cafile)

    async def __aenter__(self):
        local = (self.source_address, 0) if self.source_address else None
        connector = aiohttp.TCPConnector(resolver=Loopback(), ssl=self.ssl, local_addr=local)
        self.session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self.headers)
        return self


def served_certificate(port: int, name: str, cafile: str | None = None, source: str = "127.0.0.1"):
    """The certificate a new TLS connection gets (verified against ``cafile`` when given)."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def https_request(port: int, name: str, cafile: str, request: bytes, source: str = "127.0.0.1") -> bytes:
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(request)
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return data
