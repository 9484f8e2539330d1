"""Renderers are pure: the same config gives the same files. Snapshots show every change in review.

Regenerate after an intended change with PANGEOHUB_UPDATE_SNAPSHOTS=1 and read the diff.
"""

import json
import os
from pathlib import Path

from pangeohub.config import parse_config
from pangeohub.paths import StatePaths
from pangeohub.render.hub import HubSecrets, render_hub_config

SNAPSHOTS = Path(__file__).parent / "snapshots"
CONFIG = """
state_dir: /srv/pangeo/state
hub:
  port: 8000
  admin_users: [alice]
users:
  system_prefix: "pangeo-"
"""


def _check(name: str, rendered: dict) -> None:
    text = json.dumps(rendered, indent=2, sort_keys=True) + "\n"
    path = SNAPSHOTS / name
    if os.environ.get("PANGEOHUB_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; if intended, regenerate with PANGEOHUB_UPDATE_SNAPSHOTS=1"


def test_hub_config_snapshot():
    config = parse_config(CONFIG)
    rendered = render_hub_config(config, StatePaths(config.state_dir), HubSecrets(admin_service_token="TOKEN"))
    _check("hub_config.json", rendered)


def test_hub_config_keeps_secrets_out_except_the_service_token():
    config = parse_config(CONFIG)
    rendered = json.dumps(render_hub_config(config, StatePaths(config.state_dir), HubSecrets("TOKEN")))
    assert rendered.count("TOKEN") == 1
    # The crypt key (JUPYTERHUB_CRYPT_KEY) reaches the hub only through its environment.
    assert "cookie_secret_file" in rendered and "crypt_key" not in rendered.lower()


def test_config_reference_in_docs_is_current():
    from pangeohub.render.docs import render_config_reference

    committed = (Path(__file__).parent.parent / "docs" / "config-reference.md").read_text()
    assert committed == render_config_reference(), "regenerate: pangeohub config docs > docs/config-reference.md"


def test_prometheus_config_snapshot():
    from pangeohub.render.prometheus import command, render_prometheus

    config = parse_config(CONFIG + "monitoring: {prometheus: true, retention: 90d}\n")
    root = config.state_dir / "prometheus"
    rendered = {"prometheus.yml": render_prometheus(config, root / "token"),
                "command": command("/usr/bin/prometheus", config, root / "prometheus.yml", root / "web.yml",
                                   root / "data")}
    _check("prometheus.json", rendered)
    # The token travels as a file Prometheus reads, never in the config or the command line.
    assert "credentials_file" in json.dumps(rendered) and "credentials\"" not in json.dumps(rendered)
