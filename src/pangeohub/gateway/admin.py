"""The operator's view of every cluster (upstream's API only ever shows a user their own).

Added to every target's backend (local and Slurm: their database; Kubernetes: upstream's cluster list).
Served by the gateway's API, which the hub's proxy also carries at /services/dask-gateway/. Two callers get
in: ``pangeohub clusters`` on the hub's machine, with a secret only root can read; and an operator elsewhere
(``pangeohub --hub-url``), with the API token of a hub admin, which the hub itself vouches for. Upstream's
authenticator cannot be used for the second: it maps any valid token to its user, admin or not.
"""

from __future__ import annotations

import hmac

import aiohttp
import os
import time

from aiohttp import web

from pangeohub.gateway import ADMIN_PATH, limits

TOKEN_ENV = "PANGEOHUB_GATEWAY_ADMIN_TOKEN"
ADMIN_SCOPE = "admin:servers"  # clusters are a person's servers of another kind


def cluster_row(cluster, now: float) -> dict:
    workers = len(cluster.active_workers())
    cores, memory = limits.footprint(cluster.config, workers)
    return {
        "user": cluster.username,
        "name": cluster.name,
        "status": cluster.model_status.name,
        "workers": workers,
        "requested_workers": int(cluster.count or 0),
        "cores": cores,
        "memory": memory,
        "age": round(now - cluster.start_time / 1000, 1),
    }


def model_row(cluster, requested: int, now: float) -> dict:
    """The row of a cluster known only as upstream's ``models.Cluster`` (KubeBackend: no worker records; the
    workers counted are those asked for, which the backend clamps to the limits)."""
    cores, memory = limits.footprint(cluster.config, requested)
    return {
        "user": cluster.username,
        "name": cluster.name,
        "status": cluster.status.name,
        "workers": requested,
        "requested_workers": requested,
        "cores": cores,
        "memory": memory,
        "age": round(now - cluster.start_time / 1000, 1) if cluster.start_time else 0.0,
    }


async def active_rows(backend, now: float) -> list[dict]:
    """Every cluster not yet stopped, from a database-backed backend (local, Slurm) or from upstream's
    ``list_clusters`` (KubeBackend), whose default selection is the clusters pending or running."""
    if hasattr(backend, "db"):
        return [cluster_row(c, now) for c in backend.db.active_clusters()]
    requested = getattr(backend, "requested", {})
    return [model_row(c, int(requested.get(c.name, 0)), now) for c in await backend.list_clusters()]


class AdminAPI:
    def __init__(self, backend, app: web.Application):
        self.backend = backend
        self.token = os.environ.get(TOKEN_ENV, "")
        app.router.add_get(ADMIN_PATH, self.list)
        app.router.add_delete(ADMIN_PATH, self.stop)

    async def _check(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "").partition(" ")[2].strip()
        if self.token and hmac.compare_digest(given, self.token):
            return
        if not given:
            raise web.HTTPUnauthorized(reason="pangeohub admin token required")
        model = await self._hub_owner(given)
        if model is None:
            raise web.HTTPUnauthorized(reason="the hub does not know this token")
        # The token's own scopes, not its owner's role: an admin's token made for one narrow job stays narrow.
        if model.get("kind") != "user" or ADMIN_SCOPE not in model.get("scopes", []):
            raise web.HTTPForbidden(reason=f"{model.get('name')} is not a hub admin (needs {ADMIN_SCOPE})")

    async def _hub_owner(self, token: str) -> dict | None:
        # The address the gateway already trusts for people's tokens: its JupyterHub authenticator's.
        authenticator = getattr(self.backend.parent, "authenticator", None)
        hub_api = getattr(authenticator, "jupyterhub_api_url", "") or getattr(self.backend, "hub_api_url", "")
        if not hub_api:
            return None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{hub_api}/user", headers={"Authorization": f"token {token}"}) as resp:
                return await resp.json() if resp.status == 200 else None

    async def list(self, request: web.Request) -> web.Response:
        await self._check(request)
        rows = await active_rows(self.backend, time.time())
        return web.json_response(sorted(rows, key=lambda r: (r["user"], -r["age"])))

    async def stop(self, request: web.Request) -> web.Response:
        """Stop by ``?name=`` or every cluster of ``?user=``; answers with the names stopped."""
        await self._check(request)
        name, user = request.query.get("name"), request.query.get("user")
        if bool(name) == bool(user):
            raise web.HTTPBadRequest(reason="give exactly one of name= or user=")
        targets = [r["name"] for r in await active_rows(self.backend, time.time())
                   if (name and r["name"] == name) or (user and r["user"] == user)]
        for cluster in targets:
            await self.backend.stop_cluster(cluster)
        return web.json_response(targets)
