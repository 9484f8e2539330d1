"""The usage service's web side, behind the hub's proxy at ``/services/usage/``.

- ``metrics``: Prometheus's text format, for an admin's API token (or any token holding the hub's
  ``read:metrics`` scope, as the hub's own /hub/metrics asks) in ``Authorization: token ...``: the hub's own
  metrics (fetched from /hub/metrics with this service's token), the object store's, and ours (metrics.py).
  No token: 401; someone else's: 403.
- the admin page (page.py) and its plots, for admins logged in to the hub (JupyterHub's service OAuth, so the
  browser session works); anyone else gets 403.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from functools import partial

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from pangeohub.usage.metrics import platform_metrics
from pangeohub.usage.objectstore_metrics import objectstore_metrics
from pangeohub.usage.render import SERVICE

log = logging.getLogger(SERVICE)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Base(HubOAuthenticated, web.RequestHandler):
    def initialize(self, state):
        self.state = state

    async def who(self) -> dict | None:
        """The hub's model of whoever the request's token or OAuth cookie names, whatever their scopes (this
        service decides: JupyterHub's own check would turn a person's token into 'no user', a 401)."""
        return await self.hub_auth.get_user(self, sync=False)

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        reason = self._reason
        if status_code == 403:
            reason = "the usage page and metrics are for the platform's admins only"
        elif status_code == 401:
            reason = "an admin's API token is needed: send it as 'Authorization: token <token>' (`pangeohub token`)"
        self.finish(f"{status_code}: {reason}\n")


class MetricsHandler(Base):
    async def get(self):
        model = await self.who()
        if model is None:
            self.set_header("WWW-Authenticate", "token")
            raise web.HTTPError(401)
        if not (model.get("admin") or "read:metrics" in model.get("scopes", [])):
            raise web.HTTPError(403)
        loop = asyncio.get_running_loop()
        ours, problem = await loop.run_in_executor(None, partial(platform_metrics, self.state.config,
                                                                 self.state.latest))
        hub, store = await asyncio.gather(hub_metrics(), loop.run_in_executor(None, partial(
            objectstore_metrics, self.state.config)))
        self.set_header("Content-Type", CONTENT_TYPE)
        if problem:  # said first, where whoever opens the endpoint by hand reads it
            self.write("".join(f"# ERROR {line}\n" for line in problem.splitlines()))
        self.write(ours)
        self.write(prefixed(hub, b"jupyterhub_"))
        self.write(prefixed(store, b"seaweedfs_"))


# Every Prometheus client library exports its process's figures under the same names (process_cpu_seconds_total,
# go_*, python_*): passed through side by side they would be one series with two values. Each source's get
# its prefix, as if a relabelling rule had run.
_GENERIC = re.compile(rb"^(# (?:HELP|TYPE) )?((?:process|python|go|promhttp)_)", re.MULTILINE)


def prefixed(text: bytes, prefix: bytes) -> bytes:
    return _GENERIC.sub(lambda m: (m.group(1) or b"") + prefix + m.group(2), text)


async def hub_metrics() -> bytes:
    """JupyterHub's own /hub/metrics, fetched with this service's token (role scope read:metrics)."""
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/").rsplit("/api", 1)[0] + "/metrics"
    try:
        response = await AsyncHTTPClient().fetch(url, headers={
            "Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"}, request_timeout=10)
        return response.body if response.body.endswith(b"\n") else response.body + b"\n"
    except (HTTPClientError, OSError) as exc:  # a hub restarting: the next scrape has them
        return f"# the hub's metrics could not be read: {exc}\n".encode()


class PageHandler(Base):
    @web.authenticated
    async def get(self):
        from pangeohub.usage.page import render_page

        if not self.current_user.get("admin"):
            raise web.HTTPError(403)
        loop = asyncio.get_running_loop()
        status, html = await loop.run_in_executor(None, render_page, self.state.config)
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)


class PlotHandler(Base):
    @web.authenticated
    async def get(self, by):
        from pangeohub.usage.page import plot_png

        if not self.current_user.get("admin"):
            raise web.HTTPError(403)
        png = await asyncio.get_running_loop().run_in_executor(None, plot_png, self.state.config, by)
        if png is None:
            raise web.HTTPError(503, "the usage database cannot be read: see the page")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "no-store")
        self.finish(png)


def _log_request(handler):
    # Scrapes every few seconds would bury the hub's log: only what went wrong is logged.
    if handler.get_status() >= 400:
        log.warning("%s %s %s", handler.get_status(), handler.request.method, handler.request.uri)


def make_app(state) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE}/")
    args = {"state": state}
    return web.Application([
        (prefix, PageHandler, args),
        (prefix + "metrics", MetricsHandler, args),
        (prefix + r"plot-(person|group)\.png", PlotHandler, args),
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (prefix.rstrip("/"), web.RedirectHandler, {"url": prefix}),
    ], cookie_secret=os.urandom(32), log_function=_log_request)
