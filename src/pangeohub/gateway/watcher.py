"""Stop a user's clusters when their notebook server is gone (``gateway.stop_with_server``).

Done here, in the gateway, by asking the hub who has a server: that one check covers every way a server ends
(stopped by the user or an admin, culled by jupyterhub-idle-culler, crashed, removed with its user), needs no
code in the hub's stop path (where a slow gateway would delay stops), and clusters whose owner had no server
when the gateway restarted are caught too. A failed check stops nothing.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp


async def users_with_servers(session: aiohttp.ClientSession, hub_api: str, token: str) -> set[str] | None:
    """Names of users with a running or starting default server; None if the hub could not be asked."""
    names: set[str] = set()
    offset = 0
    while True:
        url = f"{hub_api}/users?state=active&limit=200&offset={offset}"
        try:
            async with session.get(url, headers={"Authorization": f"token {token}"}) as resp:
                if resp.status != 200:
                    return None
                page = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return None
        items = page.get("items", []) if isinstance(page, dict) else page
        names.update(u["name"] for u in items if "" in (u.get("servers") or {}))
        if len(items) < 200:
            return names
        offset += len(items)


async def stop_orphans(backend, session: aiohttp.ClientSession, token: str) -> list[str]:
    owners = {c.username for c in backend.db.active_clusters()}
    if not owners:
        return []
    alive = await users_with_servers(session, backend.hub_api_url, token)
    if alive is None:
        return []
    stopped = []
    for cluster in list(backend.db.active_clusters()):
        if cluster.username not in alive:
            backend.log.info("Stopping cluster %s: the notebook server of %s is not running",
                             cluster.name, cluster.username)
            await backend.stop_cluster(cluster.name)
            stopped.append(cluster.name)
    return stopped


async def stop_with_server_loop(backend) -> None:
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    period = float(backend.gw.stop_with_server_period)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            await asyncio.sleep(period)
            try:
                await stop_orphans(backend, session, token)
            except asyncio.CancelledError:
                raise
            except Exception:
                backend.log.warning("Checking for clusters without a server failed", exc_info=True)
