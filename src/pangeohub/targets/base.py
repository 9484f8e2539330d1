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
- ``addresses()``: the hub API, the S3 endpoint and the gateway as seen from a person's server;
  ``service_host()``: the address on this machine the hub API and the object store listen on for them.
- ``provision(user, ...)``: make a person ready to run (account, home, limits, environment), by running
  ``spawn_hooks()``: the target-independent hooks plus the target's own.
- ``preflight(rt)``: live checks ``up`` runs before starting anything; ``reconcile(rt)``: bring the target's
  own records (jobs) in line with the hub's once the hub is up; ``status(rt)``: what ``status`` shows of it.

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

    def service_host(self) -> str:
        """The address on this machine where the hub's API and the object store's S3 port listen for people's
        servers (the proxy and the platform's own tools reach the hub there too)."""
        return "127.0.0.1"

    def gateway_config(self, paths) -> dict[str, dict]:
        """The target's own sections of the gateway's traitlets config (its backend's traits, by class name),
        merged over the platform's (``pangeohub.render.gateway``)."""
        return {}

    def gateway_account(self) -> str | None:
        """The Linux account the gateway runs as (None: root, which starts each cluster as its owner)."""
        return None

    def preflight(self, rt) -> None:
        """Live checks before ``up`` starts anything: raise a ``PangeoError`` for what cannot work."""

    def reconcile(self, rt) -> None:
        """Once the hub is up (after every start or restart): end what runs for people the hub does not know."""

    def status(self, rt) -> dict | None:
        """What ``pangeohub status --json`` shows of the target (None: nothing beyond the services)."""
        return None

    def server_note(self, user: str) -> str | None:
        """Something an admin should know about a person's server (``users list``), e.g. why it stopped."""
        return None

    def format_status(self, info: dict) -> list[str]:
        """``status()`` as lines for a person to read."""
        return []

    def s3_endpoint_at(self, host: str) -> str:
        """The S3 endpoint a person's server uses when the platform's own object store is reached at ``host``:
        an external store's endpoint as configured, none when storage is off."""
        storage = self.config.storage
        if storage.mode == "external":
            return storage.external.endpoint_url
        return f"http://{host}:{storage.port}" if storage.mode == "embedded" else ""

    def prepare_person(self, user: str) -> None:
        """Make what a person needs before their first spawn (`users add`, `users generate`), so that a
        workshop's opening minute only starts servers. Nothing by default: the spawn does it."""

    def test_accounts(self) -> list[str] | None:
        """The existing accounts `check` and `loadtest` must use, where the target cannot make people (None:
        they make temporary people and remove them afterwards)."""
        return None

    def account(self, user: str) -> "pwd.struct_passwd":
        """The account a hub user's server and clusters run as, made if the target makes accounts."""
        raise NotImplementedError

    async def provision(self, spawner, account: "pwd.struct_passwd") -> dict[str, str]:
        """Prepare everything a person's server needs before it starts (home, limits, storage, catalog) and
        return the environment it gets: runs ``spawn_hooks()`` in order."""
        from pangeohub.hub.hooks import run_spawn_hooks

        return await run_spawn_hooks(spawner, account, self.spawn_hooks())

    def spawn_hooks(self) -> list:
        """The spawn hooks a server gets here (``pangeohub.hub.hooks``): every target's, plus its own first."""
        from pangeohub.hub.hooks import shared_spawn_hooks

        return shared_spawn_hooks()
