"""A new server proves it is the person's own before the hub routes their traffic to it.

Upstream declares a server ready when *something* answers HTTP on the port the spawner chose. Another
process may hold that port: seen in a 150-person burst (a ZeroMQ socket, so the spawn failed after two
minutes), and an attack: another account listening on the port a person's server is about to get would be
sent the person's requests, cookies and tokens included.

So, before ``start()`` returns, the hub sends a fresh nonce to ``<base_url>api/pangeohub/identity`` and the
server answers HMAC(its API token, nonce and the port the request reached). The token is the per-spawn secret
JupyterHub gives the server in its environment, which no other account can read; the port in the proof keeps
a real server elsewhere from answering for an impostor's port. Nothing here looks at local processes or
``/proc``, so the same check holds for a server on another host. Until the proof, the hub sends the port only
the nonce (no cookie, no token). Another process on the port, or a server that exits without answering (its
port was taken), means a new attempt on another port; ``ProvenStart.attempts`` of them at most.

Two halves: the server extension (``_load_jupyter_server_extension``, enabled in the install's
``jupyter_server_config.d``) and the spawner mixin ``ProvenStart``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets

from jupyterhub.utils import random_port
from traitlets import HasTraits, Integer

PATH = "api/pangeohub/identity"
NONCE_HEADER = "X-Pangeohub-Nonce"
PROBE_TIMEOUT = 5.0  # one answer; a silent peer is waited for again (a loaded server may be slow)
MAX_ANSWER = 64 * 1024


def proof(token: str, nonce: str, port: int) -> str:
    return hmac.new(token.encode(), f"{nonce}:{port}".encode(), hashlib.sha256).hexdigest()


# -- server side -----------------------------------------------------------------------------------------
def _jupyter_server_extension_points():
    return [{"module": "pangeohub.hub.serverproof"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join
    from tornado import web

    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")

    class IdentityHandler(web.RequestHandler):
        """Unauthenticated on purpose: the hub asks before any login exists, and the answer is only useful for
        the one nonce it was asked for."""

        def get(self):
            nonce = self.request.headers.get(NONCE_HEADER, "")
            if not token or not nonce:
                raise web.HTTPError(400)
            # The port this request actually reached, not the one configured: a proof for that port only.
            port = self.request.connection.stream.socket.getsockname()[1]
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"proof": proof(token, nonce, port)}))

    serverapp.web_app.add_handlers(".*$", [(url_path_join(serverapp.base_url, PATH), IdentityHandler)])


# -- hub side --------------------------------------------------------------------------------------------
async def ask(host: str, port: int, base_url: str, token: str) -> str:
    """'proven'; 'other' (something else answers on the port); 'silent' (a listener that has not answered,
    yet); 'nobody' (no listener)."""
    nonce = secrets.token_hex(16)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, asyncio.TimeoutError):
        return "nobody"
    answer = b""
    try:
        writer.write(f"GET {base_url.rstrip('/')}/{PATH} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                     f"{NONCE_HEADER}: {nonce}\r\n\r\n".encode())
        while len(answer) < MAX_ANSWER:  # HTTP/1.0: the server closes when done
            more = await asyncio.wait_for(reader.read(MAX_ANSWER - len(answer)), PROBE_TIMEOUT)
            if not more:
                break
            answer += more
    except asyncio.TimeoutError:
        if not answer:
            return "silent"  # accepted but not answering yet: a loaded server may be slow
    except OSError:
        return "other"
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return "other"
    try:
        claimed = json.loads(body)["proof"]
    except (ValueError, KeyError, TypeError):
        return "other"
    return "proven" if isinstance(claimed, str) and hmac.compare_digest(claimed, proof(token, nonce, port)) \
        else "other"


# Ports given to servers that have not bound them yet. random_port() asks the kernel for a port free at that
# moment, and it stays free until the server binds it: with 40 spawns at a time on a loaded machine two were given
# the same one, and the second server's proof rightly found the first on it, moved, and ran out of time.
_PENDING: set[int] = set()


def _fresh_port() -> int:
    while True:
        port = random_port()
        if port not in _PENDING:
            _PENDING.add(port)
            return port


# HasTraits, not Spawner: JupyterHub refuses a Spawner subclass without its own start/stop/poll, and a
# mixin must leave those to the spawner it joins (its traits and @default handlers still register).
class ProvenStart(HasTraits):
    """start() returns only once the server on the chosen port has proven itself; else retries elsewhere."""

    attempts = Integer(5, help="Ports tried before a spawn fails because none gave a proven server.").tag(
        config=True)

    async def start(self):
        token = self.api_token
        chosen: list[int] = []
        # Our own bound, a little inside the hub's start_timeout: the hub's own ends the spawn with an empty
        # "Spawn failed: " (a bare TimeoutError); this one says what happened.
        deadline = asyncio.get_running_loop().time() + max(self.start_timeout - 2, 1)
        try:
            for attempt in range(1, self.attempts + 1):
                if self.port == 0:
                    self.port = _fresh_port()
                    chosen.append(self.port)
                self.log.info("Starting server of %s on port %s (attempt %d)", self.user.name, self.port, attempt)
                ip, port = await super().start()
                problem = await self._until_proven(ip, port, token, deadline)
                if problem is None:
                    return ip, port
                self.log.warning("Server of %s on port %s not started: %s; trying another port (%d of %d)",
                                 self.user.name, port, problem, attempt, self.attempts)
                await self.stop(now=True)
                self.clear_state()
                self.api_token = token  # clear_state() empties it; the hub issued it for this whole spawn
                self.port = _fresh_port()
                chosen.append(self.port)
        finally:
            _PENDING.difference_update(chosen)  # bound by now, or given up: the kernel knows from here on
        raise RuntimeError(f"the server of {self.user.name} could not start on a port of its own in "
                           f"{self.attempts} attempts (see the warnings above)")

    async def poll_starting(self):
        """poll() while waiting for the proof (from every 0.05 s to every second): a spawner whose poll is costly
        answers cheaper."""
        return await self.poll()

    async def _until_proven(self, ip: str, port: int, token: str, deadline: float) -> str | None:
        """None once proven; why not otherwise; TimeoutError with the reason past ``deadline``."""
        base_url = self.server.base_url if self.server else self.user.url
        loop = asyncio.get_running_loop()
        # A quiet machine has a forked server up in ~0.3 s: the first asks come soon. Under a burst, 150 starting
        # servers asked every 0.1 s (and, before this loop, connected every 0.05 s) took a tenth of the hub's event
        # loop; backing off to once a second costs a server that takes 30 s at most one more second.
        pause = 0.05
        while True:
            if loop.time() > deadline:
                await self.stop(now=True)
                raise TimeoutError(f"the server of {self.user.name} did not answer within {self.start_timeout:.0f} "
                                   "seconds: the machine is very busy. Please try again in a minute.")
            status = await self.poll_starting()
            if status is not None:
                if await ask(ip, port, base_url, token) == "nobody":
                    # Died of something else than a taken port: another attempt would die the same way.
                    raise RuntimeError(f"the server of {self.user.name} exited (status {status}) before it "
                                       "answered; its output is in the hub log")
                return "the server exited and another process holds its port"
            verdict = await ask(ip, port, base_url, token)
            if verdict == "proven":
                return None
            if verdict == "other":
                return "another process answers on this port"
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 1.0)
