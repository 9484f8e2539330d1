"""A server's port taken by someone else: the hub never routes a person's traffic there, and the spawn succeeds
on another port (pangeohub.hub.serverproof). For the fork-server spawn and the stock one."""

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from harness import Platform
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

# Another person's program: told a port on its standard input, it listens there at once, answers every request
# with 200 as a server would, and writes down what it got.
IMPOSTOR = r"""
import http.server, json, sys
log = open(sys.argv[1], "a", buffering=1)
class Handler(http.server.BaseHTTPRequestHandler):
    def any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        log.write(json.dumps({"line": self.requestline, "headers": dict(self.headers), "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = any
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.stdin.readline())), Handler)
print("listening", flush=True)
server.serve_forever()
"""
STARTING = re.compile(r"Starting server of (\S+) on port (\d+) \(attempt 1\)")


def take_the_port_when_announced(hub, victim, impostor, offset):
    """Follow the hub log; the moment the victim's server is given a port, the impostor listens on it."""
    path = hub.rt.paths.log("hub")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open(path, "rb") as log:
            log.seek(offset)
            for line in log.read().decode(errors="replace").splitlines():
                match = STARTING.search(line)
                if match and match[1] == victim:
                    impostor.stdin.write(match[2] + "\n")
                    impostor.stdin.flush()
                    assert impostor.stdout.readline().strip() == "listening"
                    return int(match[2])
        time.sleep(0.005)
    raise AssertionError("the hub never announced the victim's port")


@pytest.fixture(scope="module")
def stock_platform():
    hub = Platform(extra={"hub": {"fast_spawn": False}})
    try:
        hub.up()
        yield hub
    finally:
        hub.close()


def listening_ports(uid: int) -> set[int]:
    ports = set()
    for proc in psutil.process_iter(["uids"]):
        if proc.info["uids"] and proc.info["uids"].real == uid:
            try:
                ports |= {c.laddr.port for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN}
            except psutil.Error:
                pass
    return ports


@pytest.mark.parametrize("mode", ["fork-server spawn", "stock spawn"])
def test_another_person_listening_on_the_port_gets_none_of_the_traffic_and_the_spawn_moves(mode, platform,
                                                                                          request):
    hub = platform if mode == "fork-server spawn" else request.getfixturevalue("stock_platform")
    victim, password = hub.add_user()
    attacker, _ = hub.started_user()  # another person, with a Linux account of their own
    attacker_entry = hub.system_user(attacker)
    spool = hub.root / f"impostor-{attacker}"
    spool.mkdir()
    os.chown(spool, attacker_entry.pw_uid, attacker_entry.pw_gid)
    log = spool / "requests.jsonl"
    impostor = subprocess.Popen([sys.executable, "-c", IMPOSTOR, str(log)], user=attacker_entry.pw_uid,
                                group=attacker_entry.pw_gid, cwd=spool, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    offset = hub.rt.paths.log("hub").stat().st_size
    try:
        with ThreadPoolExecutor(1) as pool:
            taken = pool.submit(take_the_port_when_announced, hub, victim, impostor, offset)

            async def use_it():
                async with hub.sim(victim) as user:  # the victim logs in (cookies) and works as usual
                    await user.login()
                    await user.start_server()
                    async with user.session.get(f"{user.user_url}/lab") as resp:
                        lab = resp.status
                    return lab, await user.run("print(6 * 7)"), user.token

            lab, result, token = run_sync(use_it())
            first_port = taken.result()
    finally:
        impostor.terminate()
        impostor.wait(10)

    assert lab == 200 and result.ok and result.stdout.strip() == "42", result
    new_ports = listening_ports(hub.system_user(victim).pw_uid)
    assert new_ports and first_port not in new_ports, new_ports  # the spawn moved to another port
    got = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for seen in got:  # at most the hub's identity question, which carries no secret of the victim's
        headers = {key.lower(): value for key, value in seen["headers"].items()}
        assert "cookie" not in headers and "authorization" not in headers, seen
        assert token not in json.dumps(seen) and password not in json.dumps(seen), seen
        assert "/api/pangeohub/identity" in seen["line"], seen
    log_text = hub.rt.paths.log("hub").read_text()
    assert f"Server of {victim} on port {first_port} not started" in log_text


def test_a_server_that_dies_by_itself_fails_the_spawn_at_once_without_trying_other_ports(platform):
    from pangeohub.usersim import SimError

    name, token = platform.started_user()
    entry = platform.system_user(name)

    async def stop():
        async with UserSim(platform.url, name, token=token) as user:
            await user.stop_server()

    run_sync(stop())
    config = os.path.join(entry.pw_dir, ".jupyter", "jupyter_server_config.py")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, "w") as broken:
        broken.write("raise SystemExit('this server cannot start')\n")
    for path in (os.path.dirname(config), config):
        os.chown(path, entry.pw_uid, entry.pw_gid)

    async def start():
        async with UserSim(platform.url, name, token=token) as user:
            began = time.monotonic()
            with pytest.raises(SimError):
                await user.start_server()
            return time.monotonic() - began

    run_sync(start())
    log_text = platform.rt.paths.log("hub").read_text()
    assert f"the server of {name} exited" in log_text
    assert f"Server of {name} on port" not in log_text  # no other port was tried


def test_two_servers_starting_at_once_are_never_given_the_same_port(monkeypatch):
    """The kernel's "free port" stays free until a server binds it: in a burst two spawns were handed the same
    one. A port handed to a starting server is not handed out again until that start is over."""
    from pangeohub.hub import serverproof

    offered = iter([41000, 41000, 41000, 41001])
    monkeypatch.setattr(serverproof, "random_port", lambda: next(offered))
    monkeypatch.setattr(serverproof, "_PENDING", set())
    assert [serverproof._fresh_port(), serverproof._fresh_port()] == [41000, 41001]
