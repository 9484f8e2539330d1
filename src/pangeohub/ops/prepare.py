"""Accounts prepared in advance: what a first spawn would otherwise do while everybody waits.

``users add`` and ``users generate`` (and the load tester, which stands in for them) make each person's Linux
account and what its target keeps for it (on one machine: the home image, when homes have quotas) and, with
the embedded object store running, their scratch credentials, all at once (the identities go to the store in
one batch). A workshop's opening minute then only starts servers. What cannot be done now (the store is
down) is done at the person's first spawn, as before.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def prepare_accounts(rt, names: list[str], workers: int = 8) -> None:
    target = rt.target
    with ThreadPoolExecutor(min(workers, max(1, len(names)))) as pool:
        list(pool.map(target.prepare_person, names))  # what the target makes of a person ahead of a spawn
        if rt.config.storage.mode == "embedded":
            from pangeohub.storage.admin import ensure_user_identity, store_running

            if not store_running(rt):
                return
            list(pool.map(lambda name: ensure_user_identity(rt, name), names))
