"""The hub REST API, called as pangeohub's own admin service (the CLI's only way into the hub)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from pangeohub.errors import PangeoError


class HubAPI:
    def __init__(self, rt, timeout: float = 30.0):
        self.rt = rt
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict | None = None, *, missing_ok: bool = False):
        """Decoded JSON of the reply (None if empty, or on 404 with ``missing_ok``)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.rt.hub_api}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.rt.secret('hub_admin_token')}",
                     "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            detail = _message(exc)
            raise PangeoError(f"the hub refused {method} {path}: {exc.code} {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PangeoError(
                f"cannot reach the hub at {self.rt.hub_api} ({getattr(exc, 'reason', exc)})",
                "is the platform running? see `pangeohub status`",
            ) from None
        return json.loads(payload) if payload else None

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
