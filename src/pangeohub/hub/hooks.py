"""Spawn hooks: what each feature adds to a user's server before it starts.

A hook is ``async def hook(spawner, account: pwd.struct_passwd) -> dict[str, str]``: it runs in the hub as
root after the user's Linux account exists and before the server process starts; it may prepare files
(owned by the user) and returns environment variables for the server (its kernels and terminals inherit
them). ``spawner.runtime`` gives the platform's config, paths and secrets.
"""

from __future__ import annotations

import pwd
import time
from typing import Awaitable, Callable

SpawnHook = Callable[[object, pwd.struct_passwd], Awaitable[dict[str, str]]]


def shared_spawn_hooks() -> list[SpawnHook]:
    """The hooks of features every target has, in the order they run; a target puts its own (home, limits)
    before them (``Target.spawn_hooks``, see ``provision``). Imported lazily: the hub loads them at first spawn."""
    from pangeohub.catalog.quickstart import quickstart_hook
    from pangeohub.catalog.setup import catalog_env
    from pangeohub.content.hook import content_hook
    from pangeohub.envs.kernels import environments_hook
    from pangeohub.gateway.hook import gateway_spawn_hook
    from pangeohub.storage.hook import scratch_hook

    # Workshop material last: its pulls are bounded but the slowest step, and need nothing of the others.
    return [scratch_hook, gateway_spawn_hook, catalog_env, environments_hook, quickstart_hook, content_hook]


async def provision(spawner, account: pwd.struct_passwd, target) -> dict[str, str]:
    """Prepare everything a person's server needs before it starts (home, limits, storage, catalog) and return
    the environment it gets: the target's own hooks first, then every target's."""
    return await run_spawn_hooks(spawner, account, [*target.spawn_hooks(), *shared_spawn_hooks()])


async def run_spawn_hooks(spawner, account: pwd.struct_passwd, hooks: list[SpawnHook]) -> dict[str, str]:
    env: dict[str, str] = {}
    took = []
    for hook in hooks:
        started = time.perf_counter()
        env.update(await hook(spawner, account) or {})
        took.append(f"{hook.__name__.removesuffix('_hook')} {time.perf_counter() - started:.2f}s")
    # What a slow start spent its time on, for operators reading the hub's log.
    spawner.log.info("Prepared %s: %s", account.pw_name, ", ".join(took))
    return env
