"""``pangeohub --hub-url URL check``: the end-to-end check with nothing but the hub's address and an admin token.

A temporary hub user (no password: an admin makes them an API token) starts a server through the hub, runs
code in a kernel through the proxy, starts a Dask cluster through the gateway when the hub has one, and is
removed whatever happens. The phases that need the hub's own disk (the private home's mode, scratch
credentials, isolation between accounts, the quickstart notebook) are those of the local check, run in the hub
pod: ``pangeohub exec kubernetes -- check``.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

from pangeohub.errors import PangeoError
from pangeohub.ops.check import CheckContext, _imports, _kernel, _stop, run_phase_list
from pangeohub.ops.people import Person
from pangeohub.remote import RemoteHub, require_admin
from pangeohub.usersim import run_sync


def run_remote_check(hub: RemoteHub, echo=print) -> dict:
    api = hub.api()
    version = _hub_version(hub)  # before the token is used: a wrong address fails on its own
    admin = require_admin(api)
    name = f"check-{secrets.token_hex(3)}"
    report = {"ok": True, "user": name, "hub": hub.base, "phases": []}
    detail = f"JupyterHub {version} at {hub.base}, token of admin {admin['name']}"
    report["phases"].append({"name": "hub", "ok": True, "seconds": 0.0, "detail": detail})
    if echo:
        echo(f"  ok   {'hub':<10} {0:6.2f}s  {detail}")
    api.ensure_user(name)
    try:
        token = api.token(name, note="pangeohub check (remote)", expires_in=3600)
        ctx = CheckContext(rt=None, person=Person(name, token=token))
        run_sync(_run(hub, ctx, report, echo))
    finally:
        # The hub user, its server and tokens; what the target made (a home) follows the hub's own rules.
        api.delete_user(name)
    if echo:
        total = sum(p["seconds"] for p in report["phases"])
        echo(f"{'PASS' if report['ok'] else 'FAIL'}  ({total:.1f}s in all)")
    return report


async def _run(hub: RemoteHub, ctx: CheckContext, report: dict, echo) -> None:
    async def spawn(ctx):
        events = await ctx.sim.start_server()
        return f"server of {ctx.person.name} ready through {hub.base} ({len(events)} progress events)"

    async def gateway(ctx):
        if not _gateway_answers(hub):
            return f"skipped: no Dask Gateway answers at {hub.gateway}"
        from pangeohub.gateway.check import check_gateway

        return await check_gateway(ctx.sim)

    phases = [("spawn", spawn), ("kernel", _kernel), ("imports", _imports), ("gateway", gateway), ("stop", _stop)]
    async with ctx.person.sim(hub.base, timeout=900) as sim:
        ctx.sim = sim
        await run_phase_list(ctx, report, echo, phases)


def _hub_version(hub: RemoteHub) -> str:
    url = f"{hub.base}/hub/api/"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())["version"]
    except urllib.error.HTTPError as exc:
        raise PangeoError(f"{url} answered {exc.code} {exc.reason}: no JupyterHub there",
                          "give the hub's address, as people open it, e.g. https://hub.example.org") from None
    except (urllib.error.URLError, OSError) as exc:
        raise PangeoError(f"cannot reach the hub at {hub.base} ({getattr(exc, 'reason', exc)})",
                          "check the address (--hub-url) and that the hub is up") from None
    except (ValueError, KeyError, TypeError):
        raise PangeoError(f"{url} did not answer as a JupyterHub REST API",
                          "give the hub's address, as people open it, e.g. https://hub.example.org") from None


def _gateway_answers(hub: RemoteHub) -> bool:
    try:
        with urllib.request.urlopen(f"{hub.gateway}/api/health", timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
