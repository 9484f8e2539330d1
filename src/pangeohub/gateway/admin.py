"""The operator's view of every cluster (upstream's API only ever shows a user their own).

Served by the gateway's private API on loopback and checked against a secret only root can read; the
``pangeohub clusters`` command is its only client.
"""

from __future__ import annotations

import hmac
import os
import time

from aiohttp import web

from pangeohub.gateway import ADMIN_PATH, limits

TOKEN_ENV = "PANGEOHUB_GATEWAY_ADMIN_TOKEN"


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


class AdminAPI:
    def __init__(self, backend, app: web.Application):
        self.backend = backend
        self.token = os.environ.get(TOKEN_ENV, "")
        app.router.add_get(ADMIN_PATH, self.list)
        app.router.add_delete(ADMIN_PATH, self.stop)

    def _check(self, request: web.Request) -> None:
        given = request.headers.get("Authorization", "").partition(" ")[2]
        if not self.token or not hmac.compare_digest(given, self.token):
            raise web.HTTPUnauthorized(reason="pangeohub admin token required")

    async def list(self, request: web.Request) -> web.Response:
        self._check(request)
        now = time.time()
        rows = [cluster_row(c, now) for c in self.backend.db.active_clusters()]
        return web.json_response(sorted(rows, key=lambda r: (r["user"], -r["age"])))

    async def stop(self, request: web.Request) -> web.Response:
        """Stop by ``?name=`` or every cluster of ``?user=``; answers with the names stopped."""
        self._check(request)
        name, user = request.query.get("name"), request.query.get("user")
        if bool(name) == bool(user):
            raise web.HTTPBadRequest(reason="give exactly one of name= or user=")
        targets = [c for c in self.backend.db.active_clusters()
                   if (name and c.name == name) or (user and c.username == user)]
        for cluster in targets:
            await self.backend.stop_cluster(cluster.name)
        return web.json_response([c.name for c in targets])
