"""The certificate's state for `pangeohub status` and `pangeohub certs status`."""

from __future__ import annotations

import time

from pangeohub.tls.domain import domain
from pangeohub.tls.renew import next_renewal
from pangeohub.tls.store import RenewalRecord, read_installed, tls_paths


def _when(ts: float) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else None


def certificate_status(rt) -> dict:
    config = rt.config
    paths = tls_paths(rt)
    info = read_installed(paths)
    record = RenewalRecord.load(paths)
    mode = config.hub.tls_mode
    try:
        name = domain(config)
    except Exception as exc:  # 'auto' without a public address: say so rather than fail the status
        name = f"(unknown: {exc})"
    report = {
        "mode": mode,
        "domain": name,
        "directory": config.hub.https.acme.effective_directory if mode == "acme" else None,
        "names": info.names if info else [],
        "issuer": info.issuer if info else None,
        "serial": info.serial if info else None,
        "expires": _when(info.not_after) if info else None,
        "next_renewal": _when(next_renewal(config, info, record)) if mode == "acme" else None,
        "last_success": _when(record.last_success),
        "last_error": record.last_error or None,
        "failures": record.failures,
    }
    return report


def format_status(report: dict) -> list[str]:
    lines = [f"https: {report['mode']}  {report['domain']}"]
    if report["expires"]:
        lines.append(f"  certificate  serial {report['serial']}  expires {report['expires']}  ({report['issuer']})")
    else:
        lines.append("  certificate  none yet")
    if report["mode"] == "acme":
        lines.append(f"  renewal      next {report['next_renewal'] or 'now'}  last success {report['last_success'] or '-'}")
    if report["last_error"]:
        lines.append(f"  LAST ERROR   {report['last_error']} ({report['failures']} failure(s) in a row)")
    return lines


def plain_http_warning(config) -> str | None:
    """A loud line when passwords would cross the network in clear: HTTPS off on a non-loopback address."""
    import ipaddress

    hub = config.hub
    if hub.tls_mode != "off" or ipaddress.ip_address(hub.ip).is_loopback:
        return None
    return (f"WARNING: HTTPS is off and the hub listens on {hub.ip}:{hub.port}: passwords, tokens and cookies cross "
            "the network in clear.\n  fix: set hub.domain (a DNS name for this machine, or 'auto') to get a "
            "certificate, or hub.ip: 127.0.0.1 to keep the hub on this machine (admin guide: 'Give your hub a name "
            "and HTTPS')")
