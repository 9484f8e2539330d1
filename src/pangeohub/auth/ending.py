"""Ending a person everywhere at once: what expiry, ``users expire``, ``users remove``, ``users passwd`` and the
expiry service's sweep share.

Refusing the next login is not enough. A person whose account ends keeps, unless each is ended here: their API
tokens (which can mint new tokens and start Dask clusters), their OAuth tokens (their sessions on their servers
and on the gateway's dashboards), their hub sessions (a login cookie stays valid for its whole life: see
``pangeohub.auth.sessions``), their servers, their Dask clusters, and any process of their Linux account (a
daemon started from a kept home runs whether or not a server did).

Every step runs even when an earlier one failed; failures are returned, for the command to report.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pangeohub.errors import PangeoError

SESSIONS_API = "/pangeohub/users/{name}/sessions"  # served by pangeohub.auth.sessions.SessionsAPIHandler


@dataclass(frozen=True)
class GatewayAdmin:
    """The gateway's operator API (``pangeohub.gateway.admin``): where a person's clusters are stopped."""

    url: str  # e.g. http://127.0.0.1:PORT/pangeohub/v1/clusters
    token_file: Path

    @classmethod
    def of(cls, rt) -> GatewayAdmin | None:
        from pangeohub.gateway import ADMIN_PATH

        if not rt.config.gateway.enabled:
            return None
        rt.secret("gateway_admin_token")  # made if missing, so that the file below exists
        return cls(f"http://127.0.0.1:{rt.config.gateway.api_port}{ADMIN_PATH}",
                   rt.paths.secret("gateway_admin_token"))

    def stop_clusters(self, name: str) -> list[str]:
        query = urllib.parse.urlencode({"user": name})
        request = urllib.request.Request(
            f"{self.url}?{query}", method="DELETE",
            headers={"Authorization": f"token {self.token_file.read_text().strip()}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"[]")
        except urllib.error.HTTPError as exc:
            raise PangeoError(f"the gateway refused to stop the clusters of {name!r}: {exc.code} {exc.reason}",
                              "see `pangeohub logs gateway`") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PangeoError(f"cannot reach Dask Gateway at {self.url} ({getattr(exc, 'reason', exc)})",
                              "is the platform running? see `pangeohub status`") from None


@dataclass
class Ended:
    name: str
    servers: int = 0
    clusters: int = 0
    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    hub: bool = True  # the hub was asked (False: the platform is down, only processes were ended)

    @property
    def complete(self) -> bool:
        return self.hub and not self.problems


def end_person(api, name: str, *, gateway: GatewayAdmin | None = None, users=None) -> Ended:
    """End every session of hub user ``name``: servers stopped, Dask clusters stopped, every token revoked, hub
    sessions ended; with ``users`` (a UsersSection), every process of their Linux account ended too.
    ``api``: a ``pangeohub.hubapi.HubAPI`` with admin rights."""
    out = Ended(name)

    def step(what: str, func, *args):
        try:
            return func(*args)
        except PangeoError as exc:
            out.problems.append(f"{name}: {what}: {exc.what}")
        except OSError as exc:
            out.problems.append(f"{name}: {what}: {exc}")
        return None

    model = step("hub user", api.user, name)
    if model is not None:
        # Tokens and sessions first, so that nothing of theirs can start anything while the rest is stopped;
        # tokens again at the end, for any the person's servers or browsers were issued in between.
        out.tokens = step("tokens", revoke_tokens, api, name) or 0
        step("sessions", api.request, "DELETE", SESSIONS_API.format(name=urllib.parse.quote(name, safe="")))
        out.servers = step("servers", _stop_servers, api, name, model) or 0
    if gateway is not None:
        out.clusters = len(step("Dask clusters", gateway.stop_clusters, name) or [])
    if model is not None:
        out.tokens += step("tokens", revoke_tokens, api, name) or 0
    if users is not None:
        from pangeohub.targets.sysusers import lock_account

        step("processes", lock_account, name, users)
    return out


def _stop_servers(api, name: str, model: dict) -> int:
    servers = list(model.get("servers") or {})
    quoted = urllib.parse.quote(name, safe="")
    for server in servers:
        if server:
            api.request("DELETE", f"/users/{quoted}/servers/{urllib.parse.quote(server, safe='')}", missing_ok=True)
    if servers:
        api.stop_server(name, timeout=120)  # the default server, and waits until none runs
    return len(servers)


def revoke_tokens(api, name: str) -> int:
    """Delete the person's tokens through the hub's token API; returns how many were deleted."""
    quoted = urllib.parse.quote(name, safe="")
    listed = (api.request("GET", f"/users/{quoted}/tokens", missing_ok=True) or {}).get("api_tokens", [])
    revoked = 0
    for token in listed:
        # Deleting one OAuth token deletes every token of its client: later ones may already be gone (404).
        api.request("DELETE", f"/users/{quoted}/tokens/{token['id']}", missing_ok=True)
        revoked += 1
    return revoked


def report(ended: list[Ended]) -> None:
    """Raise one error naming every step that failed (after every step of everyone was tried)."""
    problems = [p for e in ended for p in e.problems]
    if problems:
        raise PangeoError("could not end everything of the account(s):\n" + "\n".join(f"  - {p}" for p in problems),
                          "fix the cause and run the command again (each step is safe to repeat)")
