"""Target: where a person's work runs (their notebook server, their Dask clusters), as one concept.

The base class owns the workflow; a target is a thin subclass that answers a few questions, the way a
JupyterHub ``Spawner`` subclass overrides ``start``/``poll``/``stop``. What a target overrides:

- ``name`` (class attribute): the ``target.kind`` that selects it.
- ``problems()``: what in the config this target cannot honour, one line each, found offline.
- ``services(runtime)``: the processes the supervisor runs on this machine for the target (beside the
  proxy, the hub, the object store and the gateway, which every target has).
- ``spawner_class`` / ``gateway_backend_class`` (class attributes): import paths the rendered hub and gateway
  configs name. Those classes start, poll and stop servers and clusters; authentication, profiles, per-user
  totals, owner-only dashboards, the admin API, stop-with-server and scratch credentials are target-independent
  mixins (``pangeohub.hub``, ``pangeohub.gateway``) every target's classes reuse.
- ``addresses()``: the hub API, the S3 endpoint and the gateway as seen from a person's server.
- ``provision(user, ...)``: make a person ready to run (account, home, limits, environment).

Everything else (config, secrets, rendering, supervision) is the platform's and does not vary by target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import pwd

    from pangeohub.config import Config


@dataclass(frozen=True)
class Addresses:
    """How a person's server reaches the platform's parts (which may differ from how this machine does)."""

    hub_api: str  # JupyterHub's REST API, ending in /hub/api
    s3_endpoint: str  # the object store's S3 endpoint ("" when storage is off)
    gateway: str  # the Dask Gateway's HTTP address, as its client's DASK_GATEWAY__ADDRESS wants it
    gateway_proxy: str  # the gateway's scheduler proxy, gateway://host:port


class Target:
    name: ClassVar[str] = ""
    #: Import path of the JupyterHub spawner class that starts a person's server on this target.
    spawner_class: ClassVar[str] = ""
    #: Import path of the dask-gateway-server backend class that runs a person's Dask clusters here.
    gateway_backend_class: ClassVar[str] = ""

    def __init__(self, config: "Config"):
        self.config = config

    def problems(self) -> list[str]:
        """Config options this target cannot honour, one line each (empty: none). Offline: no process runs."""
        return []

    def notes(self) -> list[str]:
        """How this target differs from what a reader of the config might expect, said once at `up`."""
        return []

    def services(self, runtime) -> list:
        """Extra supervised processes (``pangeohub.services.base.Service``), started just before the hub."""
        return []

    def addresses(self) -> Addresses:
        raise NotImplementedError

    def s3_endpoint_at(self, host: str) -> str:
        """The S3 endpoint a person's server uses when the platform's own object store is reached at ``host``:
        an external store's endpoint as configured, none when storage is off."""
        storage = self.config.storage
        if storage.mode == "external":
            return storage.external.endpoint_url
        return f"http://{host}:{storage.port}" if storage.mode == "embedded" else ""

    def account(self, user: str) -> "pwd.struct_passwd":
        """The account a hub user's server and clusters run as, made if the target makes accounts."""
        raise NotImplementedError

    async def provision(self, spawner, account: "pwd.struct_passwd") -> dict[str, str]:
        """Prepare everything a person's server needs before it starts (home, limits, storage, catalog) and
        return the environment it gets. The default runs every feature's spawn hook, in order."""
        from pangeohub.hub.hooks import run_spawn_hooks

        return await run_spawn_hooks(spawner, account)
