"""The usage service's HTTP server, listening before its heavy imports are done.

JupyterHub waits, at every start, for each managed service with a URL to answer HTTP below 500 before it starts
the next one and gives the proxy its routes, and the web side imports jupyterhub.services.auth (which pulls in
the hub's ORM: ~1 s of CPU, 2-4 s on a busy machine). So the port answers at once while the imports run on a
thread, and then the same listener hands requests to the real application: the service's own root (what the hub
asks, what an admin opens) says "starting" with 200 and reloads itself each second; everything else (the
metrics, the API) answers 503 with Retry-After, which Prometheus and clients treat as a failed try. A 503 on
the root too held every hub start (and every `pangeohub restart hub`) up by those seconds.
"""

from __future__ import annotations

import asyncio
import os

from tornado import httputil, web
from tornado.httpserver import HTTPServer

from pangeohub.usage.render import SERVICE


class _Starting(web.RequestHandler):
    def prepare(self):
        if self.request.path.rstrip("/") == f"/services/{SERVICE}" and self.request.method in ("GET", "HEAD"):
            self.finish('<!DOCTYPE html><meta http-equiv="refresh" content="1"><title>Usage</title>'
                        "<p>The usage page is starting: this page reloads itself in a second.</p>\n")
            return
        self.set_status(503)
        self.set_header("Retry-After", "1")
        self.finish("the usage service is starting: try again in a second\n")


class _Switch(httputil.HTTPServerConnectionDelegate):
    """Passes each new connection's requests to whichever application is current."""

    def __init__(self, app: web.Application):
        self.app = app

    def start_request(self, server_conn, request_conn):
        return self.app.start_request(server_conn, request_conn)

    def on_close(self, server_conn):
        self.app.on_close(server_conn)


async def serve(state, port: int, hub_pid: int) -> None:
    switch = _Switch(web.Application([(r".*", _Starting)], log_function=lambda handler: None))
    # Loopback only: people reach it through the hub's proxy, which the hub points at this URL.
    HTTPServer(switch).listen(port, address="127.0.0.1")

    def build():
        from pangeohub.usage.web import make_app

        return make_app(state)

    switch.app = await asyncio.get_running_loop().run_in_executor(None, build)
    while os.getppid() == hub_pid != 1:
        await asyncio.sleep(1)
