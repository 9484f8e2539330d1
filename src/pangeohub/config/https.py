"""``hub.domain`` and ``hub.https``: the name people reach the hub at, and how its certificate is obtained."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pangeohub.config.base import Port, Section, check_port
from pangeohub.units import Duration

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# A DNS name: labels of letters, digits and inner hyphens, at least two labels (a CA refuses single labels).
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")


class AcmeSection(Section):
    directory: str = Field(
        LETS_ENCRYPT,
        description="ACME directory URL of the certificate authority (Let's Encrypt by default; any ACME CA works).",
    )
    staging: bool = Field(
        False,
        description="Use Let's Encrypt's staging directory (untrusted certificates, generous rate limits) for a "
        "first try; set it back to false once the staging certificate was obtained.",
    )
    email: str | None = Field(
        None, description="Contact e-mail given to the CA (expiry warnings, account recovery). Needed in mode "
        "'acme': the ACME account is registered under it."
    )
    directory_ca: Path | None = Field(
        None,
        description="PEM file of the CA that signed the ACME directory's own TLS certificate, when it is not "
        "publicly trusted. Only for a private or test CA (pebble in the test suite).",
    )
    resolver: str | None = Field(
        None,
        description="DNS server ('address' or 'address:port') used to check that hub.domain points at this machine "
        "before asking the CA. Default: this machine's resolver. Set a public one (e.g. 1.1.1.1) to see what the "
        "CA will see.",
    )
    renew_before: Duration = Field(
        "30d", description="Renew a certificate this long before it expires (Let's Encrypt's last 30 of 90 days); "
        "at most a third of the certificate's lifetime."
    )
    check_every: Duration = Field(
        "5m", description="How often the renewal timer looks whether the certificate is due (a file read; the CA "
        "is asked only when due)."
    )
    retry_after: Duration = Field(
        "1h",
        description="Wait after a failed attempt before the next one; it doubles with each further failure up to "
        "a day, so that failures never run into the CA's rate limits.",
    )

    @property
    def effective_directory(self) -> str:
        return LETS_ENCRYPT_STAGING if self.staging and self.directory == LETS_ENCRYPT else self.directory

    @field_validator("directory")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL, e.g. " + LETS_ENCRYPT)
        return value

    @model_validator(mode="after")
    def _staging_is_lets_encrypt(self) -> "AcmeSection":
        if self.staging and self.directory != LETS_ENCRYPT:
            raise ValueError(f"staging selects Let's Encrypt's staging directory, but directory is {self.directory}: "
                             "give your CA's staging directory URL as directory instead, and drop staging")
        return self

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("not an e-mail address, e.g. admin@example.org")
        return value

    @field_validator("directory_ca")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


class HttpsSection(Section):
    mode: Literal["acme", "files", "off"] | None = Field(
        None,
        description="How the hub gets its certificate. 'acme': from an ACME CA (Let's Encrypt by default) for "
        "hub.domain, renewed automatically. 'files': your own certificate and key (cert_file, key_file). 'off': "
        "plain HTTP on hub.port. Default: 'acme' when hub.domain is set, else 'off'.",
    )
    port: Port = Field(443, description="HTTPS port the proxy listens on when HTTPS is on.")
    http_port: Port = Field(
        80,
        description="Plain-HTTP port when HTTPS is on: it answers the CA's challenges and redirects "
        "everything else to HTTPS.",
    )
    cert_file: Path | None = Field(
        None, description="mode 'files': PEM certificate chain (the server's certificate first)."
    )
    key_file: Path | None = Field(None, description="mode 'files': PEM private key of that certificate.")
    hsts_max_age: Duration = Field(
        "365d", description="How long browsers remember to use only HTTPS for this name (Strict-Transport-Security)."
    )
    public_address: str | None = Field(
        None,
        description="The address the world reaches this machine at, when it is not on one of its interfaces "
        "(a cloud's NAT). Used by hub.domain 'auto' and accepted by the DNS check.",
    )
    acme: AcmeSection = Field(default_factory=AcmeSection)

    _ports = field_validator("port", "http_port")(check_port)

    @model_validator(mode="after")
    def _files(self) -> "HttpsSection":
        if self.mode == "files" and (self.cert_file is None or self.key_file is None):
            raise ValueError("mode 'files' needs cert_file and key_file (PEM paths)")
        for path in (self.cert_file, self.key_file):
            if path is not None and not path.is_absolute():
                raise ValueError(f"{path}: certificate and key paths must be absolute")
        if self.port == self.http_port:
            raise ValueError(f"port and http_port are both {self.port}: each needs its own port")
        return self


def check_domain(value: str | None) -> str | None:
    if value is None or value == "auto":
        return value
    value = value.lower().rstrip(".")
    if not DOMAIN_RE.match(value):
        raise ValueError("not a DNS name like hub.example.org (or 'auto' for <name>.<address>.sslip.io)")
    return value
