"""When to ask for a certificate, asking once (locked, checked first, backing off), and installing it live.

The record in ``tls/renewal.json`` says what happened last; ``status`` shows it, and the back-off reads it so
that neither the renewal timer nor repeated ``up`` runs can hammer a CA: after a failure the next attempt waits
``retry_after``, doubling with each further failure up to a day. ``pangeohub certs renew --force`` is the
operator's way to try now.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time

from pangeohub.errors import PangeoError
from pangeohub.tls import acme
from pangeohub.tls.domain import check_points_here, check_port80, domain
from pangeohub.tls.store import CertInfo, RenewalRecord, check_pair, install, read_installed, tls_paths

MAX_BACKOFF = 86400.0


def backoff(config, failures: int) -> float:
    return min(config.hub.https.acme.retry_after * 2 ** max(failures - 1, 0), MAX_BACKOFF)


def next_renewal(config, info: CertInfo | None, record: RenewalRecord) -> float:
    """When the next attempt may happen: when the certificate is due, but not before the back-off ends."""
    if info is None:
        due = 0.0
    else:
        # Never more than a third of the lifetime before expiry: a renew_before longer than a short-lived
        # certificate's whole life would make every check renew again, hammering the CA.
        lifetime = info.not_after - info.not_before
        due = info.not_after - min(config.hub.https.acme.renew_before, lifetime / 3)
    return max(due, record.next_attempt)


def usable(info: CertInfo | None, name: str) -> bool:
    return info is not None and name in info.names and info.not_after > time.time()


class _Lock:
    """One request at a time: the renewal timer and `certs renew` may meet."""

    def __init__(self, path, wait: float):
        self.path, self.wait = path, wait

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise PangeoError("another certificate request is running", "wait for it; see `pangeohub certs status`")
                time.sleep(0.5)

    def __exit__(self, *exc):
        os.close(self.fd)


def obtain(rt, force: bool = False, listener_running: bool = True) -> CertInfo:
    """Ask the CA now (ACME mode): preflight checks, one lego run, install, reload the proxy, record it."""
    config = rt.config
    paths = tls_paths(rt)
    paths.ensure()
    with _Lock(paths.lock, wait=acme.LEGO_TIMEOUT + 30):
        record = RenewalRecord.load(paths)
        now = time.time()
        if not force and record.next_attempt > now:
            raise PangeoError(
                f"the last certificate request failed ({record.last_error}); the next one is not before "
                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(record.next_attempt))} (back-off, so that the CA's "
                "rate limits are never hit)",
                "fix the cause, then: pangeohub certs renew --force",
            )
        record.last_attempt = now
        try:
            name = domain(config)
            here = check_points_here(config, name)
            with _listener(rt, listener_running):
                check_port80(config, name, here, paths)
                cert_pem, key_pem = acme.obtain(config, name, paths)
            info = check_pair(cert_pem, key_pem, "the issued certificate", "its key")
        except PangeoError as exc:
            record.failures += 1
            record.last_error = exc.what
            record.next_attempt = now + backoff(config, record.failures)
            record.save(paths)
            raise
        install(paths, cert_pem, key_pem)
        record.failures, record.last_error, record.next_attempt, record.last_success = 0, "", 0.0, time.time()
        record.save(paths)
    reload_proxy(rt)
    return info


def install_files(rt) -> CertInfo:
    """Own-certificate mode: check the operator's pair, copy it under the state dir (0600), reload the proxy."""
    https = rt.config.hub.https
    pems = []
    for what, path in (("certificate", https.cert_file), ("key", https.key_file)):
        try:
            pems.append(path.read_bytes())
        except OSError as exc:
            raise PangeoError(f"hub.https.{'cert_file' if what == 'certificate' else 'key_file'} {path}: cannot read "
                              f"the {what} ({exc.strerror})", f"give the path of a readable PEM {what} file") from None
    info = check_pair(pems[0], pems[1], str(https.cert_file), str(https.key_file))
    if info.not_after < time.time():
        raise PangeoError(f"the certificate {https.cert_file} expired on "
                          f"{time.strftime('%Y-%m-%d', time.gmtime(info.not_after))}",
                          "get a new one, put it in place and run: pangeohub certs renew")
    paths = tls_paths(rt)
    install(paths, pems[0], pems[1])
    record = RenewalRecord.load(paths)
    record.last_attempt = record.last_success = time.time()
    record.last_error, record.failures, record.next_attempt = "", 0, 0.0
    record.save(paths)
    reload_proxy(rt)
    return info


def ensure_certificate(rt) -> CertInfo | None:
    """Before the proxy starts: a certificate for the domain must be in place, obtained now if need be."""
    config = rt.config
    mode = config.hub.tls_mode
    if mode == "off":
        return None
    if mode == "files":
        return install_files(rt)
    info = read_installed(tls_paths(rt))
    if usable(info, domain(config)):
        return info
    from pangeohub.services.supervisor import supervisor_pid

    # `up --detach` asks here once, then again in the background supervisor: that second call finds it done.
    return obtain(rt, listener_running=supervisor_pid(rt) is not None)


def renew_if_due(rt) -> CertInfo | None:
    """The renewal timer's step: ask only when due and past any back-off."""
    config = rt.config
    paths = tls_paths(rt)
    info = read_installed(paths)
    if time.time() < next_renewal(config, info, RenewalRecord.load(paths)):
        return None
    return obtain(rt)


def reload_proxy(rt) -> bool:
    """SIGHUP to the running proxy (see proxy_tls.js): new handshakes get the new certificate, open ones stay."""
    import psutil

    try:
        pid, created = rt.paths.pidfile("proxy").read_text().split()
        proc = psutil.Process(int(pid))
        # A pidfile left by a proxy that is gone may name another process now: SIGHUP would end most of them.
        if abs(proc.create_time() - float(created)) > 0.01:
            return False
        proc.send_signal(signal.SIGHUP)
        return True
    except (FileNotFoundError, ValueError, psutil.Error):
        return False


def _listener(rt, running: bool):
    import contextlib

    if running:
        return contextlib.nullcontext()
    from pangeohub.tls.web import serving

    return serving(rt)
