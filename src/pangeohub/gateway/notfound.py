"""Another person's cluster looks like no cluster at all, through the gateway's API.

Fixes upstream's answers: for a name that does not exist, dask-gateway says 404 "Cluster <name> not found"
(and 204 to a DELETE); for a cluster that exists but belongs to someone else, 403 "User bob lacks
permissions to view cluster <name>". Anyone could tell which cluster names are in use, and whose. Here both
get the not-found answer. The dashboards behind the hub already do the same (``dashboard``).
"""

from __future__ import annotations

from aiohttp import web


@web.middleware
async def others_clusters_look_missing(request: web.Request, handler):
    response = await handler(request)
    name = request.match_info.get("cluster_name")
    if response.status != 403 or name is None:
        return response
    if request.method == "DELETE":
        return web.Response(status=204)
    return web.json_response({"error": f"Cluster {name} not found"}, status=404)


def install(app: web.Application) -> None:
    app.middlewares.append(others_clusters_look_missing)
