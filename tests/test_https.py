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
import stat
import time
import uuid

import pytest
from cryptography import x509

from harness import Platform, free_port, require_root
from pangeohub.tls.store import TlsPaths, install
from pangeohub.usersim import SimError, run_sync
from tls_helpers import HttpsUser, LocalCA, Pebble, https_request, served_certificate

pytestmark = [pytest.mark.platform, pytest.mark.skipif(bool(require_root()), reason=str(require_root()))]

DOMAIN = "hub.pangeo.test"
ELSEWHERE = "elsewhere.pangeo.test"


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
                 "resolver": ca.resolver, "check_every": "1s"}}}}


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


def test_workshop_sheets_print_the_https_address(hub, tmp_path):
    hub.cli("users", "generate", "--count", "1", "--prefix", f"{hub.prefix[:-1]}ws", "--out", str(tmp_path))
    url = f"https://{DOMAIN}:{hub.https_port}/"
    sheets = [p.read_text() for p in tmp_path.iterdir()]
    assert len(sheets) == 2 and all(url in text and "http://" not in text for text in sheets)


def test_login_and_server_over_https_set_only_secure_cookies_and_hsts(hub):
    name, password = hub.add_user()

    async def go():
        async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, password=password, cafile=hub.roots) as user:
            async with user.session.get(f"{user.base}/hub/login") as resp:
                assert resp.status == 200
                hsts = resp.headers.get("Strict-Transport-Security", "")
            await user.login()
            await user.start_server()
            # A browser opening the server: OAuth through the hub, then the server's own cookies.
            async with user.session.get(f"{user.user_url}/lab") as resp:
                assert resp.status == 200 and str(resp.url).startswith(f"https://{DOMAIN}:"), resp.url
            return hsts, list(user.session.cookie_jar)

    hsts, cookies = run_sync(go())
    assert re.fullmatch(r"max-age=\d{7,}", hsts)
    names = {(c.key, c["path"]) for c in cookies}
    assert {(f"jupyterhub-user-{name}", "/"), ("jupyterhub-session-id", "/"), ("_xsrf", "/hub/")} <= names, names
    # Every cookie, the servers' own _xsrf token included (jupyter-server sets it without the hub's cookie
    # options), travels over HTTPS only.
    assert ("_xsrf", "/") in names, names
    insecure = [c.output() for c in cookies if not c["secure"]]
    assert not insecure, insecure


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


def test_login_throttling_counts_the_real_client_address_over_https(hub):
    """Guesses from one place lock that place only, whatever forwarding headers they claim: the proxy that
    terminates TLS tells the hub the address of the connection."""
    name, password = hub.add_user()
    limit = hub.rt.config.auth.failed_login_limit

    def attempt(secret, source, headers=None):
        async def go():
            async with HttpsUser(f"https://{DOMAIN}:{hub.https_port}", name, password=secret, cafile=hub.roots,
                                 source_address=source, headers=headers) as user:
                try:
                    await user.login()
                except SimError as exc:
                    return "refused" if "refused" in str(exc) else str(exc)
            return "accepted"

        return run_sync(go())

    for step in range(limit):
        forged = {"X-Real-Ip": f"10.9.8.{step}", "X-Forwarded-For": f"10.7.6.{step}"}
        assert attempt("not-the-password", "127.0.0.7", forged) == "refused"
    assert attempt(password, "127.0.0.7", {"X-Forwarded-For": "10.7.6.200"}) == "refused"
    assert attempt(password, "127.0.0.8") == "accepted"
    assert f"Login lockout: '{name}' from 127.0.0.7 locked" in hub.rt.paths.log("hub").read_text()


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


def test_the_renewal_timer_replaces_a_certificate_that_is_due(hub, tmp_path):
    """No operator involved: a certificate near its end (here one that lives an hour and ends in ten minutes)
    is replaced by the timer, and new connections get the new one."""
    ca = LocalCA(tmp_path / "ca")
    cert, key, fake_serial = ca.issue("due", dns=[DOMAIN], lifetime=(-50 * 60, 10 * 60))
    install(TlsPaths(hub.root / "state" / "tls"), cert.read_bytes(), key.read_bytes())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = json.loads(hub.cli("status", "--json").stdout)["https"]
        if report["serial"] != format(fake_serial, "x"):
            break
        time.sleep(1)
    assert report["serial"] != format(fake_serial, "x"), hub.rt.paths.log("tls").read_text()[-2000:]
    served = served_certificate(hub.https_port, DOMAIN, cafile=hub.roots)  # pebble's again, verified
    assert format(served.serial_number, "x") == report["serial"] and not report["last_error"]
    assert "renewed: serial" in hub.rt.paths.log("tls").read_text()


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


def test_a_ca_refusal_is_reported_in_its_own_words_and_nothing_untrusted_is_served(acme):
    """Checks pass here, but the CA's validation fails (it looks for the challenge on a port where this
    platform does not answer): `up` stops with what the CA said, and no certificate of any kind is served."""
    ca, _ = acme
    ca.add_a("refused.pangeo.test", "127.0.0.1")
    platform = Platform(extra=acme_hub(ca, "refused.pangeo.test", free_port()))
    try:
        proc = platform.cli("up", "--detach", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"the CA at {ca.directory} refused a certificate for refused.pangeo.test: " in proc.stderr
        assert "urn:ietf:params:acme:error" in proc.stderr
        assert not (platform.root / "state" / "tls" / "live" / "cert.pem").exists()
        with pytest.raises(ConnectionRefusedError):
            served_certificate(platform.config_data["hub"]["https"]["port"], "refused.pangeo.test")
        assert "LAST ERROR" in platform.cli("certs", "status").stdout
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
