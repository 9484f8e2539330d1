"""The hub REST API: the CLI's only way into the hub.

On the hub's machine it speaks as pangeohub's own admin service (its token read from the state dir); for a hub
elsewhere (``--hub-url``, see ``pangeohub.remote``) it speaks with the operator's own admin token. The same
calls either way, so that a command behaves alike wherever its operator sits.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from pangeohub.errors import PangeoError


LOCAL_FIX = "is the platform running? see `pangeohub status`"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects with every header, the token too, to any host or scheme the reply names: a
    redirect is turned into an error (above) instead."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class HubAPI:
    def __init__(self, rt=None, timeout: float = 30.0, *, url: str | None = None, token: str | None = None,
                 unreachable_fix: str = LOCAL_FIX):
        """From a Runtime (this machine's hub), or from ``url`` (a hub's REST API, ending in /hub/api) and
        ``token`` (an admin's API token). The local token is read at each call: the state dir holds it."""
        if (rt is None) == (url is None):
            raise ValueError("HubAPI needs a Runtime or a url, not both")
        self.rt = rt
        self.url = (url or rt.hub_api).rstrip("/")
        self._token = token
        self.timeout = timeout
        self.unreachable_fix = unreachable_fix

    @property
    def remote(self) -> bool:
        return self.rt is None

    def _auth(self) -> str:
        return self._token if self._token is not None else self.rt.secret("hub_admin_token")

    def request(self, method: str, path: str, body: dict | None = None, *, missing_ok: bool = False):
        """Decoded JSON of the reply (None if empty, or on 404 with ``missing_ok``)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {self._auth()}",
                     "Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                target = urllib.parse.urljoin(request.full_url, exc.headers.get("Location") or "")
                raise PangeoError(
                    f"the hub at {self.url} answered {method} {path} with a redirect ({exc.code}) to {target}; "
                    "the token is sent to no other address",
                    "give the address the hub answers on itself (--hub-url), e.g. its https:// address",
                ) from None
            if exc.code == 404 and missing_ok:
                return None
            detail = _message(exc)
            if self.remote and exc.code in (401, 403):
                raise PangeoError(
                    f"the hub at {self.url} refused {method} {path} with this token: {exc.code} {detail}",
                    "give an admin's API token (--token-file, $PANGEOHUB_TOKEN); make one on the hub's machine "
                    "with `pangeohub token NAME` (on Kubernetes: `pangeohub exec kubernetes -- token NAME`)",
                ) from None
            raise PangeoError(f"the hub refused {method} {path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PangeoError(
                f"cannot reach the hub at {self.url} ({getattr(exc, 'reason', exc)})", self.unreachable_fix,
            ) from None
        try:
            return json.loads(payload) if payload else None
        except ValueError:  # a web server that is not a JupyterHub (a wrong URL) answers with a page
            raise PangeoError(f"{self.url}{path} did not answer as a JupyterHub REST API (no JSON)",
                              "give the hub's address, as people open it, e.g. https://hub.example.org") from None

    def whoami(self) -> dict:
        """The token's owner, with the scopes the token holds."""
        return self.request("GET", "/user")

    # -- users ------------------------------------------------------------------------------------------
    def user(self, name: str) -> dict | None:
        return self.request("GET", f"/users/{_q(name)}", missing_ok=True)

    def users(self) -> list[dict]:
        """Every hub user: the hub answers at most 200 per request (a large workshop has more)."""
        found: list[dict] = []
        while True:
            page = self.request("GET", f"/users?offset={len(found)}&limit=200") or []
            found += page
            if len(page) < 200:
                return found

    def ensure_user(self, name: str, admin: bool | None = None) -> dict:
        model = self.user(name)
        if model is None:
            self.request("POST", f"/users/{_q(name)}")
            model = self.user(name)
        if admin is not None and model["admin"] != admin:
            model = self.request("PATCH", f"/users/{_q(name)}", {"admin": admin})
        return model

    def delete_user(self, name: str, timeout: float = 60.0) -> bool:
        """Stop the user's servers and remove them from the hub. False if the hub never knew them."""
        if self.user(name) is None:
            return False
        self.stop_server(name, timeout=timeout)
        self.request("DELETE", f"/users/{_q(name)}", missing_ok=True)
        return True

    def stop_server(self, name: str, timeout: float = 60.0, wait: bool = True) -> None:
        self.request("DELETE", f"/users/{_q(name)}/server", missing_ok=True)
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.user(name)
            if model is None or not model.get("servers"):
                return
            time.sleep(0.3)
        raise PangeoError(f"the server of {name!r} did not stop within {timeout:.0f}s")

    def token(self, name: str, note: str, expires_in: int | None = None) -> str:
        body = {"note": note}
        if expires_in:
            body["expires_in"] = expires_in
        return self.request("POST", f"/users/{_q(name)}/tokens", body)["token"]


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read()).get("message", exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
