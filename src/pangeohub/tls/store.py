"""Where certificates live under the state dir, what is in them, and the renewal record ``status`` shows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pangeohub.errors import PangeoError
from pangeohub.secrets import write_private


@dataclass(frozen=True)
class TlsPaths:
    root: Path  # <state>/tls, 0700

    @property
    def cert(self) -> Path:
        return self.root / "live" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.root / "live" / "key.pem"

    @property
    def lego(self) -> Path:
        """lego's own store (ACME account key, issued certificates)."""
        return self.root / "lego"

    @property
    def webroot(self) -> Path:
        """Answers to ACME challenges; the port-80 listener serves ``.well-known/acme-challenge/`` from it."""
        return self.root / "webroot"

    @property
    def challenges(self) -> Path:
        return self.webroot / ".well-known" / "acme-challenge"

    @property
    def record(self) -> Path:
        return self.root / "renewal.json"

    @property
    def lock(self) -> Path:
        return self.root / "renew.lock"

    def ensure(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)
        for sub in (self.cert.parent, self.lego, self.challenges):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)


def tls_paths(rt) -> TlsPaths:
    return TlsPaths(rt.paths.root / "tls")


@dataclass
class CertInfo:
    subject: str
    names: list[str]
    issuer: str
    serial: str
    not_before: float
    not_after: float


def load_chain(pem: bytes, source: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        chain = []
    if not chain:
        raise PangeoError(f"{source} holds no PEM certificate", "give the certificate chain in PEM form "
                          "(-----BEGIN CERTIFICATE-----), the server's certificate first")
    return chain


def cert_info(cert: x509.Certificate) -> CertInfo:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    return CertInfo(subject=cert.subject.rfc4514_string(), names=list(names), issuer=cert.issuer.rfc4514_string(),
                    serial=format(cert.serial_number, "x"), not_before=cert.not_valid_before_utc.timestamp(),
                    not_after=cert.not_valid_after_utc.timestamp())


def read_installed(paths: TlsPaths) -> CertInfo | None:
    try:
        return cert_info(load_chain(paths.cert.read_bytes(), str(paths.cert))[0])
    except (FileNotFoundError, PangeoError):
        return None


def check_pair(cert_pem: bytes, key_pem: bytes, cert_source: str, key_source: str) -> CertInfo:
    """The certificate's public key must be the key's: a mismatch makes every handshake fail."""
    chain = load_chain(cert_pem, cert_source)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PangeoError(f"{key_source} is not an unencrypted PEM private key ({exc})",
                          "give the key in PEM form without a passphrase") from None
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != chain[0].public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo):
        raise PangeoError(
            f"the key {key_source} does not belong to the certificate {cert_source} "
            f"(subject {chain[0].subject.rfc4514_string()})",
            "give the key the certificate was issued for (compare `openssl x509 -pubkey` and `openssl pkey -pubout`)",
        )
    return cert_info(chain[0])


def install(paths: TlsPaths, cert_pem: bytes, key_pem: bytes) -> None:
    """Key first, then certificate, each atomically and 0600: the proxy never reads a half-written file."""
    paths.ensure()
    write_private(paths.key, key_pem.decode())
    write_private(paths.cert, cert_pem.decode())


@dataclass
class RenewalRecord:
    """What the last attempts did; read by ``status`` and by the back-off."""

    last_attempt: float = 0.0
    last_success: float = 0.0
    last_error: str = ""
    failures: int = 0  # consecutive
    next_attempt: float = 0.0  # 0: when the certificate is due

    @classmethod
    def load(cls, paths: TlsPaths) -> "RenewalRecord":
        try:
            data = json.loads(paths.record.read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (FileNotFoundError, ValueError, TypeError):
            return cls()

    def save(self, paths: TlsPaths) -> None:
        paths.ensure()
        write_private(paths.record, json.dumps(asdict(self), indent=2) + "\n")

