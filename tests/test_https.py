"""HTTPS with a real ACME CA (Debian's pebble) and a DNS server the test controls (pebble-challtestsrv).

The platform obtains a certificate for a test name that resolves, through that DNS server only, to 127.0.0.1;
browsers are played by clients that trust pebble's root and resolve the name the same way. Nothing leaves
the machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import stat
import uuid

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver
from cryptography import x509

from harness import Platform, free_port, require_root
from pangeohub.usersim import UserSim, run_sync
from tls_helpers import LocalCA, Pebble

pytestmark = [pytest.mark.platform, pytest.mark.skipif(bool(require_root()), reason=str(require_root()))]

DOMAIN = "hub.pangeo.test"
ELSEWHERE = "elsewhere.pangeo.test"


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
        connector = aiohttp.TCPConnector(resolver=Loopback(), ssl=self.ssl)
        self.session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             timeout=aiohttp.ClientTimeout(total=self.timeout))
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


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    http_port = free_port()
    ca = Pebble(tmp_path_factory.mktemp("pebble"), http_port)
    ca.add_a(DOMAIN, "127.0.0.1")
    ca.add_a(ELSEWHERE, "192.0.2.10")  # TEST-NET-1: not this machine; never contacted
    ca.http_port = http_port
    roots = tmp_path_factory.mktemp("roots") / "pebble-root.pem"
    try:
        yield ca, roots
    finally:
        ca.close()


def acme_hub(ca: Pebble, domain: str, http_port: int | None = None) -> dict:
    return {"hub": {"domain": domain, "https": {
        "port": free_port(), "http_port": http_port or ca.http_port,
        "acme": {"directory": ca.directory, "email": "ops@pangeo.test", "directory_ca": str(ca.tls_ca.cert_file),
                 "resolver": ca.resolver}}}}


@pytest.fixture(scope="module")
def hub(acme):
    ca, roots = acme
    platform = Platform(extra=acme_hub(ca, DOMAIN))
    try:
        platform.up()
        roots.write_text(ca.roots_pem())
        platform.https_port = platform.config_data["hub"]["https"]["port"]
        platform.roots = str(roots)
        yield platform
    finally:
        platform.close()


def test_acme_certificate_is_served_with_a_chain_to_the_ca(hub):
    cert = served_certificate(hub.https_port, DOMAIN, cafile=hub.roots)  # raises unless the chain verifies
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [DOMAIN]
    for name in ("cert.pem", "key.pem"):
        path = hub.root / "state" / "tls" / "live" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    status = json.loads(hub.cli("status", "--json").stdout)
    assert status["url"] == f"https://{DOMAIN}:{hub.https_port}/"
    assert status["https"]["serial"] == format(cert.serial_number, "x")
    assert status["https"]["expires"] and status["https"]["next_renewal"] and not status["https"]["last_error"]
    text = hub.cli("status").stdout
    assert "expires" in text and "renewal      next" in text


def test_login_over_https_sets_secure_cookies_and_hsts(hub):
    name, password = hub.add_user()

    async def go():
        async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, password=password, cafile=hub.roots) as user:
            async with user.session.get(f"{user.base}/hub/login") as resp:
                assert resp.status == 200
                hsts = resp.headers.get("Strict-Transport-Security", "")
            await user.login()
            cookies = {c.key: c for c in user.session.cookie_jar}
            return hsts, cookies

    hsts, cookies = run_sync(go())
    assert re.fullmatch(r"max-age=\d{7,}", hsts)
    login = [c for key, c in cookies.items() if key.startswith("jupyterhub-")]
    assert login and all(c["secure"] for c in login), {k: dict(c) for k, c in cookies.items()}


def test_plain_http_redirects_to_https_without_serving_anything(hub):
    port = hub.config_data["hub"]["https"]["http_port"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # A forged Host must not make the redirect point elsewhere (no open redirect).
        sock.sendall(b"GET /hub/login?next=%2Fhub%2F HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        reply = sock.makefile("rb").read().decode()
    assert reply.startswith("HTTP/1.0 301") or reply.startswith("HTTP/1.1 301"), reply
    assert f"Location: https://{DOMAIN}:{hub.https_port}/hub/login?next=%2Fhub%2F\r\n" in reply
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /hub/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\na=b&c")
        reply = sock.makefile("rb").read().decode()
    assert " 308 " in reply.splitlines()[0] and "Set-Cookie" not in reply


def test_hub_sees_the_client_address_and_ignores_a_forged_forwarded_for(hub):
    """A local user connecting to the TLS port with a made-up X-Forwarded-For cannot pose as another address:
    the proxy terminating TLS appends the socket's own peer address, and that is what the hub uses."""
    probe = uuid.uuid4().hex
    request = (f"POST /hub/login?probe={probe} HTTP/1.1\r\nHost: {DOMAIN}\r\nX-Forwarded-For: 203.0.113.9\r\n"
               "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()
    # From 127.0.0.2: distinct from the proxy's own 127.0.0.1, so the hub must have taken it from the socket.
    reply = https_request(hub.https_port, DOMAIN, hub.roots, request, source="127.0.0.2")
    assert b" 403 " in reply.split(b"\r\n", 1)[0]
    lines = [line for line in hub.rt.paths.log("hub").read_text().splitlines() if probe in line]
    assert lines and all("127.0.0.2" in line for line in lines), lines
    assert not any("203.0.113.9" in line for line in lines)


def started_user(hub) -> tuple[str, str]:
    name, password = hub.add_user()

    async def go():
        async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, password=password, cafile=hub.roots) as user:
            await user.login()
            await user.start_server()
            return user.token

    return name, run_sync(go())


def test_gateway_public_address_and_api_through_https(hub):
    name, token = started_user(hub)
    result = run_sync(_run_https(hub, name, token, "import os\nfrom dask_gateway import Gateway\n"
                                 "print(os.environ['DASK_GATEWAY__PUBLIC_ADDRESS'])\n"
                                 "with Gateway() as gw: print(gw.list_clusters())"))
    assert result.ok, result.error
    assert result.stdout.split() == [f"https://{DOMAIN}:{hub.https_port}/services/dask-gateway", "[]"]
    reply = https_request(hub.https_port, DOMAIN, hub.roots,
                          f"GET /services/dask-gateway/api/health HTTP/1.1\r\nHost: {DOMAIN}\r\n"
                          "Connection: close\r\n\r\n".encode())
    assert b" 200 " in reply.split(b"\r\n", 1)[0], reply[:300]


async def _run_https(hub, name, token, code):
    async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, token=token, cafile=hub.roots) as user:
        return await user.run(code)


def test_forced_renewal_keeps_an_open_kernel_websocket(hub):
    name, token = started_user(hub)
    old = served_certificate(hub.https_port, DOMAIN, cafile=hub.roots)

    async def go():
        async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, token=token, cafile=hub.roots) as user:
            kernel = await user.start_kernel()
            url = f"{user.user_url}/api/kernels/{kernel}/channels".replace("https", "wss", 1)
            async with user.session.ws_connect(url, headers=user._auth) as ws:
                before = await _kernel_info(ws, name)
                renewed = await asyncio.to_thread(hub.cli, "certs", "renew", "--force")
                after = await _kernel_info(ws, name)  # the same connection, still open
                ws_serial = x509.load_der_x509_certificate(
                    ws.get_extra_info("ssl_object").getpeercert(binary_form=True)).serial_number
            await user.stop_kernel(kernel)
            return before, after, renewed.stdout, ws_serial

    before, after, output, ws_serial = run_sync(go())
    new = served_certificate(hub.https_port, DOMAIN, cafile=hub.roots)
    assert before == after == "kernel_info_reply"
    assert ws_serial == old.serial_number  # the websocket kept its TLS session through the renewal
    assert new.serial_number != old.serial_number
    assert format(new.serial_number, "x") in output
    assert json.loads(hub.cli("status", "--json").stdout)["https"]["serial"] == format(new.serial_number, "x")


async def _kernel_info(ws, username: str) -> str:
    msg_id = uuid.uuid4().hex
    await ws.send_str(json.dumps({
        "header": {"msg_id": msg_id, "username": username, "session": uuid.uuid4().hex,
                   "msg_type": "kernel_info_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [], "content": {}}))
    async with asyncio.timeout(60):
        async for frame in ws:
            msg = json.loads(frame.data)
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["channel"] == "shell":
                return msg["header"]["msg_type"]
    return "closed"


def test_a_domain_that_resolves_elsewhere_is_refused_before_the_ca_is_asked(acme):
    ca, _ = acme
    platform = Platform(extra=acme_hub(ca, ELSEWHERE, free_port()))
    try:
        orders = ca.orders()
        proc = platform.cli("up", "--detach", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert (f"hub.domain {ELSEWHERE} resolves (asked {ca.resolver}) to 192.0.2.10, which is not this machine "
                "(its addresses: ") in proc.stderr
        assert "127.0.0.1" in proc.stderr.split("its addresses:")[1]
        assert ca.orders() == orders
        # The failure is recorded and backs off: a second `up` does not even look, and status shows why.
        again = platform.cli("up", "--detach", check=False)
        assert again.returncode == 2 and "the next one is not before" in again.stderr
        status = platform.cli("certs", "status").stdout
        assert "LAST ERROR" in status and "192.0.2.10" in status
    finally:
        platform.close()


def test_a_domain_that_does_not_resolve_is_refused(acme):
    ca, _ = acme
    platform = Platform(extra=acme_hub(ca, "nowhere.pangeo.test", free_port()))
    try:
        proc = platform.cli("up", "--detach", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"hub.domain nowhere.pangeo.test does not resolve (asked {ca.resolver})" in proc.stderr
        assert "create a DNS A record nowhere.pangeo.test" in proc.stderr
    finally:
        platform.close()


# -- own certificate files ---------------------------------------------------------------------------------
def files_hub(cert, key) -> dict:
    return {"hub": {"domain": "own.pangeo.test", "https": {"mode": "files", "cert_file": str(cert), "key_file": str(key),
                                                         "port": free_port(), "http_port": free_port()}}}


def test_own_certificate_files_are_served_and_reloaded_without_restart(tmp_path):
    ca = LocalCA(tmp_path / "ca")
    cert, key, serial = ca.issue("own", dns=["own.pangeo.test"])
    platform = Platform(extra=files_hub(cert, key))
    try:
        platform.up()
        port = platform.config_data["hub"]["https"]["port"]
        assert served_certificate(port, "own.pangeo.test", cafile=str(ca.cert_file)).serial_number == serial
        proxy_pid = json.loads(platform.cli("status", "--json").stdout)["services"]["proxy"]["pid"]
        _, _, renewed = ca.issue("own", dns=["own.pangeo.test"])  # the operator replaces the files
        platform.cli("certs", "renew")
        assert served_certificate(port, "own.pangeo.test", cafile=str(ca.cert_file)).serial_number == renewed
        assert json.loads(platform.cli("status", "--json").stdout)["services"]["proxy"]["pid"] == proxy_pid
    finally:
        platform.close()


def test_missing_certificate_file_is_a_clear_error(tmp_path):
    ca = LocalCA(tmp_path / "ca")
    _, key, _ = ca.issue("own", dns=["own.pangeo.test"])
    platform = Platform(extra=files_hub(tmp_path / "nope.pem", key))
    try:
        proc = platform.cli("up", "--detach", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"hub.https.cert_file {tmp_path / 'nope.pem'}: cannot read the certificate" in proc.stderr
    finally:
        platform.close()


def test_key_that_does_not_match_the_certificate_is_a_clear_error(tmp_path):
    ca = LocalCA(tmp_path / "ca")
    cert, _, _ = ca.issue("one", dns=["own.pangeo.test"])
    _, other_key, _ = ca.issue("two", dns=["own.pangeo.test"])
    platform = Platform(extra=files_hub(cert, other_key))
    try:
        proc = platform.cli("up", "--detach", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"the key {other_key} does not belong to the certificate {cert}" in proc.stderr
    finally:
        platform.close()
