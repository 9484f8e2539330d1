"""Act like a person, through the public surfaces only: the login form, the hub REST API, the user's own
Jupyter server REST API and kernel websocket.

Shared by the end-to-end tests, ``pangeohub check``, ``pangeohub loadtest`` and the benchmarks, so that
what we test is what we measure is what we run in production.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp


class SimError(Exception):
    """A step of the simulated user failed; the message says which and what the server answered."""


@dataclass
class ExecResult:
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    images: list[str] = field(default_factory=list)  # base64 PNGs from display_data / execute_result

    @property
    def ok(self) -> bool:
        return self.error is None


class UserSim:
    """One simulated person. ``async with UserSim(url, name, password=...) as u: await u.login() ...``"""

    def __init__(self, base_url: str, username: str, password: str | None = None, token: str | None = None,
                 timeout: float = 120.0, source_address: str | None = None, headers: dict | None = None):
        """``source_address`` connects from that local address (any of 127/8 on loopback: a person at
        another place); ``headers`` are sent with every request."""
        self.base = base_url.rstrip("/")
        self.source_address = source_address
        self.headers = headers or {}
        self.username = username
        self.password = password
        self.token = token
        self.timeout = timeout
        self.session: aiohttp.ClientSession | None = None
        self.timings: dict[str, float] = {}
        #: Every timed step in order: (phase, wall-clock start, seconds, error or None). The load tester plots it.
        self.events: list[tuple[str, float, float, str | None]] = []

    async def __aenter__(self) -> "UserSim":
        jar = aiohttp.CookieJar(unsafe=True)  # loopback addresses are IPs, which the default jar ignores
        connector = aiohttp.TCPConnector(local_addr=(self.source_address, 0)) if self.source_address else None
        self.session = aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=self.timeout),
                                             connector=connector, headers=self.headers)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    # -- plumbing --------------------------------------------------------------------------------------
    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    @property
    def user_url(self) -> str:
        return f"{self.base}/user/{quote(self.username)}"

    async def _json(self, method: str, url: str, expect: tuple[int, ...] = (200, 201, 202, 204), **kwargs):
        async with self.session.request(method, url, headers={**self._auth, **kwargs.pop("headers", {})},
                                        allow_redirects=False, **kwargs) as resp:
            body = await resp.text()
            if resp.status not in expect:
                raise SimError(f"{method} {url} -> {resp.status}: {body[:300]}")
            return json.loads(body) if body.strip() else None

    async def _timed(self, phase: str, coro):
        started, wall, error = time.perf_counter(), time.time(), None
        try:
            return await coro
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            self.timings[phase] = time.perf_counter() - started
            self.events.append((phase, wall, self.timings[phase], error))

    async def timed(self, phase: str, coro):
        """Time any step (a feature's own check, say) like the built-in ones: in ``timings`` and ``events``."""
        return await self._timed(phase, coro)

    # -- hub -------------------------------------------------------------------------------------------
    async def login(self) -> None:
        """Log in through the form, as a browser would, then get an API token for the rest."""
        await self._timed("login", self._login())

    async def _login(self) -> None:
        async with self.session.get(f"{self.base}/hub/login") as resp:
            page = await resp.text()
        xsrf = _xsrf(page) or self._cookie("_xsrf")
        form = {"username": self.username, "password": self.password or "", "_xsrf": xsrf or ""}
        async with self.session.post(f"{self.base}/hub/login?next=", data=form, allow_redirects=False) as resp:
            if resp.status != 302:
                text = await resp.text()
                message = re.search(r'class="login_error[^"]*"[^>]*>\s*([^<]+)', text)
                raise SimError(f"login as {self.username} refused ({resp.status}): "
                               f"{message.group(1).strip() if message else 'no message'}")
        xsrf = self._cookie("_xsrf") or xsrf
        async with self.session.post(
            f"{self.base}/hub/api/users/{quote(self.username)}/tokens",
            json={"note": "usersim", "expires_in": 3600},
            headers={"X-XSRFToken": xsrf or "", "Referer": f"{self.base}/hub/"},
        ) as resp:
            body = await resp.text()
            if resp.status != 201:
                raise SimError(f"could not get an API token after login ({resp.status}): {body[:300]}")
            self.token = json.loads(body)["token"]

    def _cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    async def hub_user(self) -> dict:
        return await self._json("GET", f"{self.base}/hub/api/users/{quote(self.username)}")

    async def start_server(self, options: dict | None = None) -> list[dict]:
        """Ask the hub for this user's server and follow its progress until ready; returns the events."""
        return await self._timed("spawn", self._start_server(options))

    async def _start_server(self, options: dict | None) -> list[dict]:
        url = f"{self.base}/hub/api/users/{quote(self.username)}/server"
        await self._json("POST", url, json=options or {}, expect=(201, 202, 400))
        events = []
        async with self.session.get(f"{url}/progress", headers=self._auth) as resp:
            if resp.status != 200:
                raise SimError(f"progress of {self.username}'s server -> {resp.status}: {await resp.text()}")
            async for raw in resp.content:
                line = raw.decode().strip()
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                events.append(event)
                if event.get("failed"):
                    raise SimError(f"server of {self.username} failed to start: {event.get('message')}")
                if event.get("ready"):
                    return events
        model = await self.hub_user()
        if model.get("servers", {}).get("", {}).get("ready"):
            return events
        raise SimError(f"server of {self.username} did not become ready: {events[-1:] or 'no progress'}")

    async def stop_server(self) -> None:
        await self._timed("stop", self._stop_server())

    async def _stop_server(self) -> None:
        await self._json("DELETE", f"{self.base}/hub/api/users/{quote(self.username)}/server", expect=(202, 204))
        # A browser waits on the DELETE itself (the hub answers within its slow_stop_timeout); polling every
        # 0.2 s until a slow stop ends made ~50 hub requests per person at the end of a burst. From 0.2 s,
        # backing off to 2 s: a quick stop is seen at once, a slow one costs a handful of requests.
        deadline, pause = time.monotonic() + self.timeout, 0.2
        while time.monotonic() < deadline:
            if not (await self.hub_user()).get("servers"):
                return
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        raise SimError(f"server of {self.username} did not stop")

    # -- the user's own server ---------------------------------------------------------------------------
    async def server_get(self, path: str, expect=(200,)):
        return await self._json("GET", f"{self.user_url}{path}", expect=expect)

    async def start_kernel(self, name: str = "python3") -> str:
        """Start a kernel and wait until it answers, as JupyterLab does before it sends any code."""
        return await self._timed("kernel", self._start_kernel(name))

    async def _start_kernel(self, name: str) -> str:
        model = await self._json("POST", f"{self.user_url}/api/kernels", json={"name": name}, expect=(201,))
        await self._exchange(model["id"], "kernel_info_request", {}, "kernel_info_reply")
        return model["id"]

    async def stop_kernel(self, kernel_id: str) -> None:
        await self._json("DELETE", f"{self.user_url}/api/kernels/{kernel_id}", expect=(204,))

    async def execute(self, kernel_id: str, code: str, timeout: float | None = None) -> ExecResult:
        """Run ``code`` in the kernel over its websocket and collect what it printed, returned and raised."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        out = ExecResult()
        await self._exchange(kernel_id, "execute_request", content, None, out, timeout)
        return out

    async def _exchange(self, kernel_id: str, msg_type: str, content: dict, reply_type: str | None,
                        out: ExecResult | None = None, timeout: float | None = None) -> None:
        """Send one shell request; return at its reply (``reply_type``) or when the kernel goes idle after it."""
        ws_url = f"{self.user_url}/api/kernels/{kernel_id}/channels".replace("http", "ws", 1)
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "username": self.username, "session": uuid.uuid4().hex,
                       "msg_type": msg_type, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [], "content": content,
        }
        async with self.session.ws_connect(ws_url, headers=self._auth, max_msg_size=0) as ws:
            await ws.send_str(json.dumps(request))
            async with asyncio.timeout(timeout or self.timeout):
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        continue
                    msg = json.loads(frame.data)
                    if msg.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    if reply_type and msg["header"]["msg_type"] == reply_type:
                        return
                    if out is not None and _collect(out, msg):
                        return
        raise SimError(f"the kernel {kernel_id} of {self.username} closed the connection before answering")

    async def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Start a kernel, run ``code``, stop the kernel."""
        kernel = await self.start_kernel()
        try:
            return await self._timed("execute", self.execute(kernel, code, timeout))
        finally:
            await self.stop_kernel(kernel)


def _collect(out: ExecResult, msg: dict) -> bool:
    """Fold one kernel message into ``out``; True when the execution is finished."""
    kind = msg["header"]["msg_type"]
    content = msg.get("content", {})
    if kind == "stream":
        if content.get("name") == "stderr":
            out.stderr += content.get("text", "")
        else:
            out.stdout += content.get("text", "")
    elif kind in ("execute_result", "display_data"):
        data = content.get("data", {})
        if "image/png" in data:
            out.images.append(data["image/png"])
        if kind == "execute_result":
            out.result = data.get("text/plain")
    elif kind == "error":
        out.error = f"{content.get('ename')}: {content.get('evalue')}"
    elif kind == "status" and content.get("execution_state") == "idle":
        return True
    return False


def _xsrf(page: str) -> str | None:
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', page)
    return match.group(1) if match else None


def run_sync(coro):
    """Run a usersim coroutine from synchronous code (tests, CLI)."""
    return asyncio.run(coro)
