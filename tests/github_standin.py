"""A small stand-in for GitHub's OAuth and REST endpoints, on a random loopback port.

It speaks just what oauthenticator's GitHubOAuthenticator uses: the authorize redirect, the code-for-token
exchange (checking the client secret), /user, /user/teams and the org/team membership checks. "Logging in
at GitHub" is the ``login`` query parameter a test adds to the authorize URL. ``people`` is mutable, so a
test can take somebody out of a team between two logins.
"""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


class GitHubStandIn:
    def __init__(self, client_id: str, client_secret: str, people: dict[str, dict]):
        """``people``: login -> {"orgs": {...}, "teams": {("org", "team-slug"), ...}}."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.people = people
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "GitHubStandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def orgs_of(self, login: str) -> set[str]:
        person = self.people.get(login, {})
        return set(person.get("orgs", ())) | {org for org, _ in person.get("teams", ())}

    def _handler(self):
        gh = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body=None, headers: dict | None = None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _who(self) -> str | None:
                scheme, _, token = self.headers.get("Authorization", "").partition(" ")
                return gh.tokens.get(token) if scheme.lower() in ("token", "bearer") else None

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/login/oauth/authorize":
                    if query.get("client_id") != gh.client_id:
                        return self._send(400, {"error": "bad client_id"})
                    code = secrets.token_hex(8)
                    gh.codes[code] = query["login"]
                    target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
                    return self._send(302, headers={"Location": target})
                login = self._who()
                if login is None:
                    return self._send(401, {"message": "Bad credentials"})
                parts = url.path.removeprefix("/api/v3").strip("/").split("/")
                person = gh.people.get(login, {})
                if parts == ["user"]:
                    return self._send(200, {"login": login, "id": abs(hash(login)) % 10**6, "name": login,
                                            "email": f"{login.lower()}@example.org"})
                if parts == ["user", "teams"]:
                    return self._send(200, [{"slug": team, "organization": {"login": org}}
                                            for org, team in sorted(person.get("teams", ()))])
                if len(parts) == 4 and parts[0] == "orgs" and parts[2] == "members":
                    member = parts[1] in gh.orgs_of(parts[3])
                    return self._send(204 if member else 404)
                if len(parts) == 6 and parts[0] == "orgs" and parts[2] == "teams" and parts[4] == "members":
                    member = (parts[1], parts[3]) in gh.people.get(parts[5], {}).get("teams", ())
                    return self._send(204 if member else 404)
                return self._send(404, {"message": "Not Found"})

            def do_POST(self):
                if urlparse(self.path).path != "/login/oauth/access_token":
                    return self._send(404, {"message": "Not Found"})
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if form.get("client_id") != gh.client_id or form.get("client_secret") != gh.client_secret:
                    return self._send(200, {"error": "incorrect_client_credentials",
                                            "error_description": "The client_id and/or client_secret are wrong."})
                login = gh.codes.pop(form.get("code", ""), None)
                if login is None:
                    return self._send(200, {"error": "bad_verification_code",
                                            "error_description": "The code is incorrect or expired."})
                token = secrets.token_hex(16)
                gh.tokens[token] = login
                return self._send(200, {"access_token": token, "token_type": "bearer", "scope": "read:org"})

        return Handler
