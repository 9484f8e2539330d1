"""What HTTPS changes in JupyterHub's config (pure: config in, traitlets dict out)."""

from __future__ import annotations

from pangeohub.config import Config


def render_https(config: Config, public_url: str) -> dict:
    """The hub's public URL (absolute redirects, OAuth, ``Secure`` cookies) and HSTS on its pages."""
    hub = config.hub
    if hub.tls_mode == "off":
        return {}
    return {
        "JupyterHub": {
            # JupyterHub marks its cookies Secure when its public URL is https, whatever a request says.
            "public_url": public_url,
            "bind_url": public_url,
            "tornado_settings": {"headers": {
                # Browsers that saw the hub once over HTTPS never try plain HTTP for it again.
                "Strict-Transport-Security": f"max-age={int(hub.https.hsts_max_age)}",
            }},
        },
    }


def merge(target: dict, extra: dict) -> dict:
    """Deep-merge ``extra`` into ``target``: other features' settings in the same dicts are kept."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = value
    return target
