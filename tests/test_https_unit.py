"""HTTPS pieces that need no running platform: the plain-HTTP warning, the port-80 listener, back-off, names."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest

from harness import cli, free_port
from pangeohub.config import parse_config
from pangeohub.errors import PangeoError
from pangeohub.render.hub import HubSecrets, render_hub_config
from pangeohub.paths import StatePaths
from pangeohub.tls import domain as tls_domain
from pangeohub.tls.renew import backoff, next_renewal
from pangeohub.tls.store import CertInfo, RenewalRecord
from pangeohub.tls.web import HttpListener


def test_plain_http_on_the_network_is_warned_about_loudly(tmp_path):
    exposed = tmp_path / "exposed.yaml"
    exposed.write_text("hub:\n  ip: 0.0.0.0\n")
    proc = cli("config", "validate", str(exposed))
    assert "WARNING: HTTPS is off and the hub listens on 0.0.0.0:8000" in proc.stderr
    assert "set hub.domain" in proc.stderr
    private = tmp_path / "private.yaml"
    private.write_text("hub:\n  ip: 127.0.0.1\n")
    assert "WARNING" not in cli("config", "validate", str(private)).stderr
    named = tmp_path / "named.yaml"
    named.write_text("hub:\n  domain: hub.example.org\n  https:\n    acme:\n      email: a@example.org\n")
    assert "WARNING" not in cli("config", "validate", str(named)).stderr


@pytest.fixture
def listener(tmp_path):
    challenges = tmp_path / "webroot" / ".well-known" / "acme-challenge"
    challenges.mkdir(parents=True)
    (challenges / "tok_EN-1").write_text("tok_EN-1.thumb")
    (tmp_path / "webroot" / "secret").write_text("not for the world")
    server = HttpListener("127.0.0.1", free_port(), challenges, "https://hub.example.org")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(url: str):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.headers


def test_listener_answers_challenges_and_redirects_the_rest(listener):
    assert _get(f"{listener}/.well-known/acme-challenge/tok_EN-1")[:2] == (200, "tok_EN-1.thumb")
    status, _, headers = _get(f"{listener}/user/alice/lab?x=1")
    assert status == 301 and headers["Location"] == "https://hub.example.org/user/alice/lab?x=1"


@pytest.mark.parametrize("path", ["../secret", "..%2Fsecret", "%2e%2e/secret", "nope"])
def test_listener_serves_nothing_outside_the_challenge_folder(listener, path):
    assert _get(f"{listener}/.well-known/acme-challenge/{path}")[0] == 404


def _raw(url: str, request_line: str) -> str:
    """The reply's head to a request line sent as is (clients would normalise a target like '@evil/x')."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"{request_line}\r\nHost: hub.example.org\r\nContent-Length: 0\r\n\r\n".encode())
        return sock.recv(4096).decode()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_listener_redirects_only_to_its_own_host_whatever_the_target(listener, method):
    for target, expected in (("@evil.example/x", "https://hub.example.org/"),
                             ("/hub/login?next=/x", "https://hub.example.org/hub/login?next=/x")):
        reply = _raw(listener, f"{method} {target} HTTP/1.1")
        location = [line for line in reply.splitlines() if line.lower().startswith("location:")]
        assert location == [f"Location: {expected}"], reply


def test_failures_back_off_doubling_up_to_a_day():
    config = parse_config("hub:\n  domain: hub.example.org\n  https:\n    acme:\n      email: a@example.org\n")
    assert [backoff(config, n) for n in (1, 2, 3)] == [3600, 7200, 14400]
    assert backoff(config, 30) == 86400
    cert = CertInfo("", ["hub.example.org"], "", "1", 1_000_000_000.0 - 90 * 86400, 1_000_000_000.0)
    due = 1_000_000_000.0 - 30 * 86400
    assert next_renewal(config, cert, RenewalRecord()) == due
    assert next_renewal(config, cert, RenewalRecord(next_attempt=due + 60)) == due + 60
    # A certificate living 6 days is renewed 2 days before it ends, not every check (renew_before is 30 days).
    short = CertInfo("", ["hub.example.org"], "", "1", 1_000_000_000.0 - 6 * 86400, 1_000_000_000.0)
    assert next_renewal(config, short, RenewalRecord()) == 1_000_000_000.0 - 2 * 86400


def test_auto_domain_is_made_from_the_public_address():
    config = parse_config("hub:\n  domain: auto\n  https:\n    public_address: 192.171.139.83\n"
                          "    acme:\n      email: a@example.org\n")
    assert tls_domain.domain(config) == "pangeo.192-171-139-83.sslip.io"


def test_auto_domain_without_a_public_address_says_how_to_fix_it(monkeypatch):
    monkeypatch.setattr(tls_domain, "local_addresses", lambda: {"127.0.0.1", "10.0.0.5"})
    config = parse_config("hub:\n  domain: auto\n  https:\n    acme:\n      email: a@example.org\n")
    with pytest.raises(PangeoError, match="no interface has one .*10.0.0.5") as info:
        tls_domain.domain(config)
    assert "hub.https.public_address" in info.value.fix


def test_hub_config_with_https_has_public_url_and_hsts():
    config = parse_config("hub:\n  domain: hub.example.org\n  https:\n    acme:\n      email: a@example.org\n")
    hub = render_hub_config(config, StatePaths(config.state_dir), HubSecrets("t"), "https://hub.example.org/")
    assert hub["JupyterHub"]["public_url"] == "https://hub.example.org/"
    assert hub["JupyterHub"]["tornado_settings"]["headers"]["Strict-Transport-Security"] == "max-age=31536000"
    plain = render_hub_config(parse_config(""), StatePaths(config.state_dir), HubSecrets("t"))
    assert "public_url" not in plain["JupyterHub"]
