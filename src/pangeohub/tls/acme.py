"""Obtain a certificate from an ACME CA with lego (Debian's `lego` package).

lego does the protocol (account, order, HTTP-01 challenge through our webroot, finalisation) and nothing
else: it runs once per request, so when and how often the CA is asked stays with ``renew.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from pangeohub.errors import PangeoError
from pangeohub.tls.store import TlsPaths

LEGO_TIMEOUT = 300  # seconds for one whole request; a CA that takes longer is failing


def lego_binary() -> str:
    found = shutil.which("lego")
    if not found:
        raise PangeoError("lego (the ACME client behind hub.https.mode 'acme') is not installed",
                          "run the installer again (sudo python3 install.py), or: apt-get install lego")
    return found


def obtain(config, name: str, paths: TlsPaths) -> tuple[bytes, bytes]:
    """A new certificate (chain PEM, key PEM) for ``name``, or PangeoError with what the CA said."""
    acme = config.hub.https.acme
    paths.ensure()
    argv = [lego_binary(), "--accept-tos", "--server", acme.effective_directory, "--path", str(paths.lego),
            "--domains", name, "--key-type", "ec256", "--http", "--http.webroot", str(paths.webroot)]
    if acme.email:
        argv += ["--email", acme.email]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(paths.lego)}
    if acme.directory_ca:
        # lego's own variable: trust this CA for the directory's HTTPS (private or test CAs only).
        env["LEGO_CA_CERTIFICATES"] = str(acme.directory_ca)
    # `run` always orders a new certificate; whether one is due is decided before we get here.
    try:
        proc = subprocess.run(argv + ["run"], capture_output=True, text=True, timeout=LEGO_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise PangeoError(f"the CA at {acme.effective_directory} did not issue a certificate for {name} within "
                          f"{LEGO_TIMEOUT}s", "see `pangeohub certs status`; the next attempt backs off") from None
    if proc.returncode:
        raise PangeoError(f"the CA at {acme.effective_directory} refused a certificate for {name}: "
                          f"{_reason(proc.stdout + proc.stderr)}",
                          f"fix what the CA reports (it must reach {name} on port 80 from the internet); the next "
                          "attempt backs off (or try now: pangeohub certs renew --force)")
    cert, key = paths.lego / "certificates" / f"{name}.crt", paths.lego / "certificates" / f"{name}.key"
    for path in (cert, key):
        os.chmod(path, 0o600)
    return cert.read_bytes(), key.read_bytes()


def _reason(output: str) -> str:
    """lego's last error line, without its timestamp: the CA's own words ('urn:ietf:params:acme:error:...')."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines[-1:] or ["(no output)"]
    line = errors[-1]
    return line.split("] ", 1)[-1] if line.startswith("20") else line
