"""Administering a hub from elsewhere: ``pangeohub --hub-url URL users list``.

On Kubernetes (and on any hub behind a load balancer) the operator does not sit on the hub's machine, and
has neither its state dir nor its secrets. What the hub's REST API can do is done through it, with the
operator's own admin token, through the same public address people use (the hub's proxy also carries
``/services/dask-gateway/``, where the gateway's operator API accepts an admin's hub token). What needs the
hub's own disk (passwords of pangeohub's account store, homes, backups) is refused with the way to run it
there: ``pangeohub exec kubernetes -- ...``.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass

from pangeohub.errors import PangeoError
from pangeohub.hosts import is_loopback
from pangeohub.hubapi import HubAPI
from pangeohub.secrets import read_token_file

URL_ENV = "PANGEOHUB_HUB_URL"
TOKEN_ENV = "PANGEOHUB_TOKEN"
GATEWAY_PREFIX = "/services/dask-gateway"  # as rendered on every target (render.gateway.SERVICE_PREFIX)
MAKE_TOKEN = ("make one on the hub's machine with `pangeohub token NAME` "
              "(on Kubernetes: `pangeohub exec kubernetes -- token NAME`)")


@dataclass(frozen=True)
class RemoteHub:
    base: str  # the hub as people open it, without a trailing slash: https://hub.example.org
    token: str

    def api(self, timeout: float = 30.0) -> HubAPI:
        return HubAPI(url=f"{self.base}/hub/api", token=self.token, timeout=timeout,
                      unreachable_fix=f"check the address (--hub-url, ${URL_ENV}) and that the hub is up; a "
                                      "certificate from a CA of your own: SSL_CERT_FILE=/path/to/ca.pem")

    @property
    def gateway(self) -> str:
        return f"{self.base}{GATEWAY_PREFIX}"


def connect(url: str, token: str | None, token_file: str | None, insecure: bool) -> RemoteHub:
    """The hub at ``url``, checked for shape and transport before any token is sent."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PangeoError(f"--hub-url {url!r} is not a web address",
                          "give the hub's address as people open it, e.g. --hub-url https://hub.example.org")
    if parts.query or parts.fragment:
        raise PangeoError(f"--hub-url {url!r} carries a query or fragment", "give only scheme, host, port and path")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # An admin token is the whole hub: whoever reads it off the wire can act as the admin. Refused, as
        # curl and kubectl refuse an unverified server unless told; a tunnel to loopback needs no flag.
        if not insecure:
            raise PangeoError(
                f"--hub-url {url} is plain http to {parts.hostname}: the admin token would travel in clear",
                "use the hub's https:// address, reach it through an SSH tunnel on 127.0.0.1, "
                "or add --insecure if this network is trusted",
            )
        print(f"warning: sending the admin token in clear to {parts.hostname} (--insecure)", file=sys.stderr)
    return RemoteHub(base=urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/"))),
                     token=_token(token, token_file))


def _token(token: str | None, token_file: str | None) -> str:
    """--token, else --token-file, else $PANGEOHUB_TOKEN: the first given wins."""
    if token_file and not token:
        token = read_token_file(token_file, "--token-file", "the admin's API token")
    token = (token or os.environ.get(TOKEN_ENV, "")).strip()
    if not token:
        raise PangeoError(f"a remote hub needs an admin's API token: none given (--token-file, ${TOKEN_ENV})",
                          MAKE_TOKEN)
    return token


def require_admin(api: HubAPI) -> dict:
    """The token's owner, refused unless an admin of that hub (the only one who may run these commands)."""
    model = api.whoami()
    if model.get("kind") != "user" or not model.get("admin"):
        owner = f"{model.get('kind', 'owner')} {model.get('name')!r}"
        raise PangeoError(f"the token belongs to {owner}, who is not an admin of the hub at {api.url}",
                          f"give an admin's token; {MAKE_TOKEN}")
    return model


def not_remote(command: str, why: str = "it needs the hub's own state dir") -> PangeoError:
    """The refusal of a command that cannot work through the REST API, naming where it does."""
    return PangeoError(
        f"`pangeohub {command}` cannot act on a remote hub (--hub-url): {why}",
        f"run it on the hub's machine, or in the hub pod: pangeohub exec kubernetes -- {command}",
    )
