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
- ``spawn_hooks()``: the target's own steps that make a person ready to run (home, limits), which
  ``pangeohub.hub.hooks.provision`` runs before the target-independent ones.
- ``preflight(rt)``: live checks ``up`` runs before starting anything; ``reconcile(rt)``: bring the target's
  own records (jobs) in line with the hub's once the hub is up; ``status(rt)``: what ``status`` shows of it.
- A person's lifecycle: ``ready_home(user)`` (their account and home as a spawn makes them, for a restore),
  ``release_person(...)`` (what removing them ends and deletes here), ``leftovers(rt, ...)`` and
  ``release_leftover(...)`` (what an interrupted removal left that only this target knows how to find).

Everything else (config, secrets, rendering, supervision) is the platform's and does not vary by target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import pwd

    from pangeohub.config import Config


@dataclass(frozen=True)
class Leftover:
    """Something of a person an interrupted run left behind (``pangeohub.leftovers``)."""

    kind: str  # "unfinished removal" | "temporary account" | "home mount" | "runtime dir"
    name: str  # the Linux account (or, for a temporary account, the hub user) it belonged to
    path: str = ""
    keep_home: bool = False  # an unfinished `users remove --keep-home` is finished as that, keeping the home

    def describe(self) -> str:
        return f"{self.kind} of {self.name}" + (f" ({self.path})" if self.path else "")


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

    def spawn_hooks(self) -> list:
        """The target's own spawn hooks (``pangeohub.hub.hooks``), run before every target's: e.g. the home and
        limits a later hook writes into."""
        return []

    # -- a person's lifecycle ----------------------------------------------------------------------------
    def ready_home(self, user: str) -> "pwd.struct_passwd":
        """The person's account with their home as a spawn makes it (a restore puts files back into it)."""
        return self.account(user)

    def release_person(self, user: str, keep_home: bool, step) -> bool:
        """End everything of ``user`` that runs as their Linux account and remove what the platform made for
        them here: every process (none may survive: the uid is freed next), the account, the home (unless
        ``keep_home``). ``step(what, func, *args)`` runs one part and records its failure without stopping the
        others. Returns whether a Linux account existed. This default is for targets whose people are Linux
        accounts the platform makes with its own homes (local, Slurm with platform accounts)."""
        import os
        import shutil
        from pathlib import Path

        from pangeohub.names import system_name
        from pangeohub.targets.sysusers import lock_account, our_account, remove_account

        users = self.config.users
        linux = system_name(user, users.system_prefix)
        entry = our_account(linux)
        if keep_home:
            step("processes", lock_account, user, users)
            existed = False  # the account stays
        else:
            existed = bool(step("Linux account", remove_account, user, users, keep_home=True))
        # Where useradd made it; a removal finished at the next `up` no longer has the account to ask.
        home = Path(entry.pw_dir) if entry else users.home_root / linux
        step("home", self.release_home, linux, not keep_home)
        # Only a home the platform made is deleted (never a site's directory an entry may point at), and
        # never while something is mounted there. rmtree removes by descriptor: a link inside is not followed.
        if not keep_home and home == users.home_root / linux and not os.path.ismount(home):
            shutil.rmtree(home, ignore_errors=True)
        return existed

    def release_home(self, linux: str, delete: bool) -> None:
        """What this target keeps of a person beside the account and home directory (mounts, images, cgroups,
        runtime files): released once their processes are gone; deleted too with ``delete``."""

    def leftovers(self, rt, accounts: set[str], unfinished: set[str]) -> list[Leftover]:
        """What only this target can find of accounts that are gone (``accounts``: the names in /etc/passwd),
        beyond removals already being finished (``unfinished``)."""
        return []

    def release_leftover(self, rt, item: Leftover) -> None:
        """Release one of ``leftovers()``."""

