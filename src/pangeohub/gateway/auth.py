"""PangeoGatewayAuthenticator: dask-gateway-server's JupyterHubAuthenticator that refuses ended accounts.

Upstream fixes, both of which let an ended person keep starting clusters as their Linux account:
- It asks the hub only whether the token is valid, never whether the account may still be used: an expired
  account's token (until the expiry service revokes it) started clusters. Here the hub is asked too
  (``GET /hub/api/pangeohub/users/NAME/account``, served by ``pangeohub.auth.sessions``), with the gateway's
  own service token.
- It answers a token the hub refuses (403 in JupyterHub 6: a revoked token) with 500 "Permission failure",
  which reads as the gateway's fault: here it is 401, as for any unknown token.
- It caches a successful check in a cookie for ``cache_max_age`` (300 s): a token revoked at expiry, removal or
  a password change kept working through the cookie. Every request is checked here (the checks are two local
  requests to the hub; a client makes a handful per cluster).
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized
from traitlets import default

ACCOUNT_API = "/pangeohub/users/{name}/account"


class PangeoGatewayAuthenticator(JupyterHubAuthenticator):
    @default("cache_max_age")
    def _default_cache_max_age(self):
        return 0  # no cached authentication: see the module's docstring

    async def authenticate(self, request):
        try:
            user = await super().authenticate(request)
        except web.HTTPInternalServerError:
            raise unauthorized("jupyterhub") from None
        if ":" in user.name:  # a hub service (kind:name), not a person: nothing of an account to end
            return user
        url = f"{self.jupyterhub_api_url}{ACCOUNT_API.format(name=urllib.parse.quote(user.name, safe=''))}"
        resp = await self.session.get(url, headers={"Authorization": f"token {self.jupyterhub_api_token}"},
                                      ssl=self.ssl_context)
        if resp.status != 200:
            # Fail closed: an account the hub cannot vouch for starts nothing.
            self.log.warning("Cannot check the account of %s with the hub: %s", user.name, resp.status)
            raise web.HTTPBadGateway(reason="Cannot check the account with JupyterHub")
        if not (await resp.json()).get("usable"):
            self.log.warning("Refused %s: the account has ended (expired, pending or locked)", user.name)
            raise web.HTTPForbidden(reason=f"The account {user.name} has ended")
        return user
