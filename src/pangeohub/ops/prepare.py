"""Accounts prepared in advance: what a first spawn would otherwise do while everybody waits.

``users add`` and ``users generate`` (and the load tester, which stands in for them) make each person's Linux
account, their home image (when homes have quotas) and, with the embedded object store running, their scratch
credentials, all at once (the identities go to the store in one batch). A workshop's opening minute then only starts servers. What cannot be done now
(the store is down) is done at the person's first spawn, as before.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pangeohub.resources.homes import prepare_image
from pangeohub.sysusers import ensure_account


def prepare_accounts(rt, names: list[str], workers: int = 8) -> None:
    with ThreadPoolExecutor(min(workers, max(1, len(names)))) as pool:
        accounts = list(pool.map(lambda name: ensure_account(name, rt.config.users), names))
        list(pool.map(lambda account: prepare_image(rt.config, account), accounts))
        if rt.config.storage.mode == "embedded":
            from pangeohub.storage.admin import ensure_user_identity, store_running

            if not store_running(rt):
                return
            list(pool.map(lambda name: ensure_user_identity(rt, name), names))

