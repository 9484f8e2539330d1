"""What the hub pod does once at start, before JupyterHub runs (the chart's ``hub.extraConfig``).

On one machine `pangeohub up` prepares the state directory and the login mode's generated secrets (the shared
password); in the cluster the hub does it on its own volume, where they survive restarts and upgrades.
"""

from __future__ import annotations

from pangeohub.auth.render import prepare_auth
from pangeohub.config import Config
from pangeohub.paths import StatePaths


def setup(c) -> None:
    config = Config.model_validate(c.PangeoKubeSpawner.settings)
    paths = StatePaths(config.state_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    for sub in (paths.secrets, paths.hub):
        sub.mkdir(mode=0o700, exist_ok=True)
    prepare_auth(config, paths)
