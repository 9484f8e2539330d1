"""Small helpers shared by the access tests: a login attempt as a person sees it, what a token or a copied
session cookie can still do, the processes of a person's Linux account."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import psutil

from pangeohub.usersim import SimError, UserSim, run_sync


def login_outcome(url: str, name: str, password: str) -> str:
    """'accepted', or the refusal the person sees (with their own name blanked out, to compare refusals)."""

    async def attempt():
        async with UserSim(url, name, password=password) as sim:
            try:
                await sim.login()
            except SimError as exc:
                return str(exc).replace(name, "<name>")
            return "accepted"

    return run_sync(attempt())


def login_token(url: str, name: str, password: str) -> str:
    async def go():
        async with UserSim(url, name, password=password) as sim:
            await sim.login()
            return sim.token

    return run_sync(go())


def status(url: str, method: str = "GET", *, token: str | None = None, cookies: str | None = None,
           body: dict | None = None, gateway: bool = False) -> tuple[int, str]:
    """(status, body) of one request, redirects not followed. ``gateway``: the token as dask-gateway's client
    sends it."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"{'jupyterhub' if gateway else 'token'} {token}"
    if cookies:
        headers["Cookie"] = cookies
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def session(platform, name: str) -> tuple[str, str]:
    """Log in as ``name`` through the form: (API token, the browser's cookies as a Cookie header)."""

    async def go():
        async with platform.sim(name) as sim:
            await sim.login()
            cookies = "; ".join(f"{c.key}={c.value}" for c in sim.session.cookie_jar)
            return sim.token, cookies

    return run_sync(go())


def logged_in(platform, cookies: str) -> bool:
    """Does the hub take these cookies as a login? (its home page answers, or sends to the login page)"""
    code, _ = status(f"{platform.url}/hub/home", cookies=cookies)
    assert code in (200, 302), code
    return code == 200


def token_works(platform, name: str, token: str) -> bool:
    code, body = status(f"{platform.url}/hub/api/user", token=token)
    assert code in (200, 401, 403), (code, body)
    return code == 200


def processes_of(platform, name: str) -> list[psutil.Process]:
    """The person's live processes (a zombie runs nothing: on a machine whose pid 1 never reads its orphans'
    exits, a killed process can stay one for ever)."""
    uid = platform.system_user(name).pw_uid
    return [p for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE]


def daemon(platform, name: str) -> None:
    """A process of the person's Linux account that no server started and nobody waits for (what a .pth file
    in a kept home or a leftover job would leave)."""
    entry = platform.system_user(name)
    subprocess.run(["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
                    "sh", "-c", "sleep 3600 >/dev/null 2>&1 &"], cwd="/", check=True)
    assert processes_of(platform, name)
