"""The usage sampler's entry in JupyterHub's services (pure: no I/O)."""

from __future__ import annotations

import json

from pangeohub.config import Config

SERVICE = "pangeohub-usage"
# Read only: who runs what since when, and their groups; the sampler changes nothing in the hub.
SCOPES = ["list:users", "read:users", "read:servers", "read:groups"]


def usage_services(config: Config) -> tuple[list[dict], list[dict]]:
    """(services, roles) to add to the hub's config; none when accounting is off or the hub runs elsewhere."""
    if not config.usage.enabled or config.target.kind == "kubernetes":
        return [], []
    service = {
        "name": SERVICE,
        "command": [str(config.install_dir / "bin" / "python"), "-m", "pangeohub.usage.sampler"],
        # The settings travel with the service, as the spawner gets them: nothing else to read or keep in step.
        "environment": {"PANGEOHUB_SETTINGS": json.dumps(config.model_dump(mode="json"), sort_keys=True)},
    }
    return [service], [{"name": SERVICE, "scopes": SCOPES, "services": [SERVICE]}]
