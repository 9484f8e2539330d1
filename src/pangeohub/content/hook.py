"""The spawn hook that brings a person's workshop material up to date before their server starts.

It never fails a spawn: each repository's pull is bounded by its timeout (the config makes their sum less than
``hub.start_timeout``), and a repository that cannot be reached leaves a notice beside its folder and a warning
in the hub's log. Target-independent where the hub reaches the homes (local, and Slurm's shared homes).
"""

from __future__ import annotations

from pangeohub.content.runner import describe, for_person, pull_as


async def content_hook(spawner, account) -> dict[str, str]:
    config = spawner.runtime.config
    groups = {group.name for group in getattr(spawner.user, "groups", [])}
    sources = for_person(config, groups)
    if not sources:
        return {}
    try:
        results = await pull_as(account, sources, config.users.umask)
    except Exception as exc:  # noqa: BLE001 (the material is a convenience; the server starts regardless)
        spawner.log.warning("Workshop material for %s not pulled: %s", spawner.user.name, exc)
        return {}
    for result in results:
        log = spawner.log.warning if result["status"] == "failed" else spawner.log.info
        log("Workshop material for %s: %s", spawner.user.name, describe(result))
    return {}
