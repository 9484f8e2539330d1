"""PangeoSlurmSpawner: a person's server as a Slurm job on a compute node, as that person.

The platform's target-independent spawner parts over the Slurm job mechanics:
- ``PlatformSpawner``: the platform's config, the person's account (``SlurmTarget.account``: a site account
  by name, or one the platform makes) and the spawn hooks (``SlurmTarget.spawn_hooks``: this target's own
  ``slurm_hook``, then scratch credentials, the gateway's environment, the catalog and the quickstart);
- ``ProfilesMixin``: the profile form and API choice, the same as on one machine;
- ``ProvenStart``: the hub routes to the server only once it has proven, over the network, that it is this
  person's (HMAC of its API token): a process of someone else on the node's port is never mistaken for it;
- ``SlurmServerJob``: batchspawner's ``SlurmSpawner`` with what it gets wrong fixed (see ``jobs``).
"""

from __future__ import annotations

from pathlib import Path

from pangeohub.hub.platformspawner import PlatformSpawner
from pangeohub.hub.profiles import ProfilesMixin
from pangeohub.hub.serverproof import ProvenStart
from pangeohub.targets.slurm.jobs import SlurmServerJob


def log_dir(home: str) -> str:
    """Where a person's server jobs write their output: a private directory in their own home."""
    return str(Path(home) / ".pangeohub" / "slurm")


class PangeoSlurmSpawner(PlatformSpawner, ProfilesMixin, ProvenStart, SlurmServerJob):
    @property
    def log_dir(self) -> str:
        return log_dir(self.account.pw_dir)
