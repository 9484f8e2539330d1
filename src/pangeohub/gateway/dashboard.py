"""The Dask dashboard, for its owner only.

Upstream puts ``/clusters/<name>/`` on its proxy with no authentication at all. Here the gateway's own web app
serves that path: a browser logs in through the hub (OAuth, no consent page), a program may send its hub API
token; either way only the cluster's owner gets through. Missing clusters and other people's clusters get the
same 404, so nobody learns which cluster names exist. Behind this handler the dashboard itself demands the
cluster's TLS certificate (scheduler_preload.py), so it cannot be reached around the gateway either.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import ssl
import time
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from pangeohub.render.gateway import ACCESS_SCOPE, SERVICE_NAME, SERVICE_PREFIX

COOKIE = "pangeohub-dask-dashboard"
STATE_COOKIE = "pangeohub-dask-oauth-state"
COOKIE_AGE = 12 * 3600
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "cookie", "authorization",
               "proxy-authorization", "te", "trailer", "content-length"}


class DashboardProxy:
    def __init__(self, backend, app: web.Application):
        self.backend = backend
        self.secret = os.environ.get("PANGEOHUB_GATEWAY_COOKIE_SECRET", secrets.token_hex(32)).encode()
        self.hub_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.session = aiohttp.ClientSession(auto_decompress=False)
        self._contexts: dict[str, ssl.SSLContext] = {}
        app.router.add_get("/oauth_callback", self.oauth_callback)
        app.router.add_route("*", "/clusters/{cluster_name}", self.handle)
        app.router.add_route("*", "/clusters/{cluster_name}/{tail:.*}", self.handle)

    async def close(self) -> None:
        await self.session.close()

    @property
    def hub_api(self) -> str:
        return self.backend.hub_api_url

    # -- who is asking ---------------------------------------------------------------------------------
    def _sign(self, value: str) -> str:
        return hmac.new(self.secret, value.encode(), hashlib.sha256).hexdigest()

    def _cookie_user(self, request: web.Request) -> str | None:
        raw = request.cookies.get(COOKIE, "")
        try:
            name, expires, signature = raw.rsplit("|", 2)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._sign(f"{name}|{expires}")) or float(expires) < time.time():
            return None
        return name

    async def _token_user(self, token: str) -> str | None:
        async with self.session.get(f"{self.hub_api}/user", headers={"Authorization": f"token {token}"}) as resp:
            if resp.status != 200:
                return None
            model = await resp.json()
        scopes = set(model.get("scopes", []))
        if model.get("kind") != "user" or not scopes & {ACCESS_SCOPE, "access:services"}:
            return None
        return model["name"]

    async def identify(self, request: web.Request) -> str | None:
        name = self._cookie_user(request)
        if name:
            return name
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() in ("token", "jupyterhub", "bearer") and token:
            return await self._token_user(token.strip())
        return None

    # -- hub OAuth -------------------------------------------------------------------------------------
    def _login_redirect(self, request: web.Request) -> web.Response:
        state = secrets.token_urlsafe(16)
        target = f"{SERVICE_PREFIX}{request.rel_url}"
        query = urlencode({"client_id": f"service-{SERVICE_NAME}", "response_type": "code", "state": state,
                           "redirect_uri": f"{SERVICE_PREFIX}/oauth_callback"})
        response = web.HTTPFound(f"/hub/api/oauth2/authorize?{query}")
        value = f"{state}|{target}"
        response.set_cookie(STATE_COOKIE, f"{value}|{self._sign(value)}", path=SERVICE_PREFIX, httponly=True,
                            max_age=600, samesite="Lax")
        return response

    async def oauth_callback(self, request: web.Request) -> web.StreamResponse:
        try:
            state, target, signature = request.cookies.get(STATE_COOKIE, "").split("|", 2)
        except ValueError:
            raise web.HTTPForbidden(reason="login state missing: open the dashboard link again")
        if not hmac.compare_digest(signature, self._sign(f"{state}|{target}")) \
                or state != request.query.get("state"):
            raise web.HTTPForbidden(reason="login state does not match: open the dashboard link again")
        form = {"client_id": f"service-{SERVICE_NAME}", "client_secret": self.hub_token,
                "grant_type": "authorization_code", "code": request.query.get("code", ""),
                "redirect_uri": f"{SERVICE_PREFIX}/oauth_callback"}
        async with self.session.post(f"{self.hub_api}/oauth2/token", data=form) as resp:
            if resp.status != 200:
                raise web.HTTPForbidden(reason="the hub did not confirm the login")
            token = (await resp.json())["access_token"]
        name = await self._token_user(token)
        if not name:
            raise web.HTTPForbidden(reason="this account may not use Dask Gateway")
        if not target.startswith(f"{SERVICE_PREFIX}/clusters/"):
            target = f"{SERVICE_PREFIX}/api/health"
        response = web.HTTPFound(target)
        expires = str(int(time.time() + COOKIE_AGE))
        response.set_cookie(COOKIE, f"{name}|{expires}|{self._sign(f'{name}|{expires}')}", path=SERVICE_PREFIX,
                            httponly=True, max_age=COOKIE_AGE, samesite="Lax")
        response.del_cookie(STATE_COOKIE, path=SERVICE_PREFIX)
        return response

    # -- proxying --------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["cluster_name"]
        if request.match_info.get("tail") == "individual-plots.json" and request.method == "GET":
            # dask-labextension checks a dashboard link from the notebook server, without the browser's login.
            # The list of plots is the same for every cluster (and for names that do not exist), so it tells
            # nobody anything; the plots themselves load in the browser, through the login below.
            return web.json_response(individual_plots())
        user = await self.identify(request)
        if user is None:
            if request.method == "GET" and "Authorization" not in request.headers:
                return self._login_redirect(request)
            raise web.HTTPUnauthorized(reason="log in through the hub to see this dashboard")
        cluster = self.backend.db.get_cluster(name)
        if cluster is None or cluster.username != user or not cluster.dashboard_address:
            raise web.HTTPNotFound(reason=f"no running cluster {name} of yours")
        tail = request.match_info.get("tail", "")
        address = urlsplit(cluster.dashboard_address).netloc
        context = self._context(cluster)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, f"wss://{address}/{tail}", context)
        url = f"https://{address}/{tail}" + (f"?{request.query_string}" if request.query_string else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self.session.request(request.method, url, headers=headers, data=body or None, ssl=context,
                                        allow_redirects=False) as upstream:
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            location = out_headers.get("Location")
            if location and location.startswith("/"):
                out_headers["Location"] = f"{SERVICE_PREFIX}/clusters/{name}{location}"
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(65536):
                await response.write(chunk)
            await response.write_eof()
            return response

    def _context(self, cluster) -> ssl.SSLContext:
        context = self._contexts.get(cluster.name)
        if context is None:
            cert, key = self.backend.dashboard_tls_paths(cluster)
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
            context.check_hostname = False  # the certificate names the cluster, not the loopback address
            context.load_cert_chain(cert, key)
            self._contexts[cluster.name] = context
        return context

    async def _websocket(self, request: web.Request, url: str, context: ssl.SSLContext) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with self.session.ws_connect(url, ssl=context, max_msg_size=0) as upstream:
            async def pump(source, sink):
                async for msg in source:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(msg.data)
                    else:
                        break
                await sink.close()

            await asyncio.gather(pump(client, upstream), pump(upstream, client), return_exceptions=True)
        return client


def individual_plots() -> dict[str, str]:
    """What distributed's ``individual-plots.json`` lists, computed without a running scheduler."""
    import distributed.http as http
    from distributed.dashboard.scheduler import applications

    plots = {uri.strip("/").replace("-", " ").title(): uri
             for uri in applications if uri.lstrip("/").startswith("individual-") and not uri.endswith(".json")}
    static = os.path.join(os.path.dirname(http.__file__), "static")
    for entry in sorted(os.listdir(static)) if os.path.isdir(static) else []:
        if entry.startswith("individual-") and entry.endswith(".html"):
            plots[entry.replace(".html", "").replace("-", " ").title()] = f"/statics/{entry}"
    return plots
