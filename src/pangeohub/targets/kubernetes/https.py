"""``hub.domain`` and ``hub.https`` on the chart: the values of ``proxy.https`` and the URLs people are given.

ACME maps to the chart's ``letsencrypt`` type: its autohttps pod (traefik) asks the CA configured here for a
certificate for the domain and renews it itself. Own certificate files map to the chart's ``secret`` type, not
``manual``: ``manual`` would put the private key into the values file (and Helm's release history), and
reading it would make `render` depend on files of the operator's machine. With ``secret`` the rendered files
name only the TLS Secret; `pangeohub deploy kubernetes` creates it from hub.https.cert_file/key_file.
Pure: nothing here reads a file or the network.
"""

from __future__ import annotations

from pangeohub.config import Config
from pangeohub.render.gateway import SERVICE_PREFIX
from pangeohub.tls.web import https_base

TLS_SECRET = "pangeohub-https"
AUTO_NAME = "pangeo"  # as on one machine (pangeohub.tls.domain)


def https_on(config: Config) -> bool:
    return config.hub.tls_mode != "off"


def domain(config: Config) -> str | None:
    """The name in use. 'auto' is spelled out from hub.https.public_address only: on a cluster the address is
    the load balancer's, which this machine cannot look up (None then; mapping refuses that config)."""
    name = config.hub.domain
    if name != "auto":
        return name
    address = config.hub.https.public_address
    if not address:
        return None
    return f"{AUTO_NAME}.{address.replace('.', '-').replace(':', '-')}.sslip.io"


def public_url(config: Config) -> str | None:
    """The hub as people reach it, ending in '/'; None when only the cluster knows (the Service's address)."""
    if config.hub.public_url:
        return config.hub.public_url.rstrip("/") + "/"
    name = domain(config)
    if name is None:
        return None
    return (https_base(name, 443) if https_on(config) else f"http://{name}") + "/"


def gateway_public_address(config: Config) -> str:
    """Where dashboard links point: absolute with the hub's URL when it is known, so that a link copied out of
    a notebook opens over HTTPS; else relative to the page (daskhub's value)."""
    base = public_url(config)
    return f"{base.rstrip('/')}{SERVICE_PREFIX}/" if base else f"{SERVICE_PREFIX}/"


def proxy_https(config: Config) -> dict:
    """The chart's proxy.https (empty when HTTPS is off: the chart's default, plain HTTP on port 80)."""
    hub = config.hub
    if not https_on(config):
        return {}
    values = {"enabled": True, "hosts": [domain(config)]}
    if hub.tls_mode == "acme":
        acme = hub.https.acme
        values.update({"type": "letsencrypt", "letsencrypt": {
            "contactEmail": acme.email, "acmeServer": acme.effective_directory}})
    else:
        values.update({"type": "secret", "secret": {"name": TLS_SECRET, "crt": "tls.crt", "key": "tls.key"}})
    return values


def hub_config(config: Config) -> dict:
    """hub.config additions: JupyterHub's public URL (absolute redirects, OAuth callbacks, Secure cookies) and
    HSTS on the hub's pages, as on one machine (pangeohub.tls.render)."""
    url = public_url(config)
    if not https_on(config) or url is None:
        return {}
    return {"JupyterHub": {
        "public_url": url,
        # hub.config replaces the chart's tornado_settings as a whole: its slow_spawn_timeout is kept.
        "tornado_settings": {"slow_spawn_timeout": 0, "headers": {
            "Strict-Transport-Security": f"max-age={int(config.hub.https.hsts_max_age)}"}},
    }}


def traefik(config: Config) -> dict:
    """The autohttps pod's HSTS (ACME only: with own files the proxy itself terminates TLS, no traefik)."""
    if config.hub.tls_mode != "acme":
        return {}
    return {"hsts": {"maxAge": int(config.hub.https.hsts_max_age)}}
