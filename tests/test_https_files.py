"""HTTPS with the operator's own certificate and key (hub.https.mode: files), from a CA made for the test."""

from __future__ import annotations

import json

import pytest

from harness import Platform, free_port, require_root
from tls_helpers import LocalCA, served_certificate

pytestmark = [pytest.mark.platform, pytest.mark.skipif(bool(require_root()), reason=str(require_root()))]


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
