"""People on the same machine must not reach each other's files or servers. Each test is an attack."""

import os
import pwd
import stat

import aiohttp
import pytest

from harness import cli, kernelspec_code
from pangeohub.hubapi import HubAPI
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform


def test_server_runs_as_the_users_own_account(platform):
    name, token = platform.started_user()
    entry = platform.system_user(name)

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user.run("import os, pwd; print(os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name,"
                                  " os.environ['HOME'])")

    out = run_sync(go())
    assert out.ok, out.error
    uid, gid, account, home = out.stdout.split()
    assert (int(uid), int(gid)) == (entry.pw_uid, entry.pw_gid)
    assert account == platform.prefix + name
    assert home == entry.pw_dir
    assert stat.S_IMODE(os.stat(entry.pw_dir).st_mode) == 0o700
    assert os.stat(entry.pw_dir).st_uid == entry.pw_uid


def test_user_cannot_read_or_list_another_users_home(platform):
    alice, alice_token = platform.started_user()
    bob, bob_token = platform.started_user()
    alice_home = platform.system_user(alice).pw_dir

    async def go():
        async with UserSim(platform.url, alice, token=alice_token) as a:
            wrote = await a.run("open('secret.txt', 'w').write('top secret'); print('ok')")
        async with UserSim(platform.url, bob, token=bob_token) as b:
            attack = await b.run(
                "import os\n"
                f"home = {alice_home!r}\n"
                "for attempt in (lambda: os.listdir(home), lambda: open(home + '/secret.txt').read()):\n"
                "    try:\n"
                "        print('LEAK', attempt())\n"
                "    except PermissionError:\n"
                "        print('denied')\n"
            )
        return wrote, attack

    wrote, attack = run_sync(go())
    assert wrote.stdout.strip() == "ok"
    assert attack.stdout.split() == ["denied", "denied"]
    assert "top secret" not in attack.stdout


def test_another_users_token_is_refused_by_a_server(platform):
    alice, alice_token = platform.started_user()
    bob, bob_token = platform.started_user()

    async def go():
        async with aiohttp.ClientSession() as http:
            results = {}
            for who, token in (("alice", alice_token), ("bob", bob_token), ("nobody", None)):
                headers = {"Authorization": f"token {token}"} if token else {}
                async with http.get(f"{platform.url}/user/{alice}/api/kernels", headers=headers,
                                    allow_redirects=False) as resp:
                    results[who] = resp.status
            # Starting a kernel is what an attacker would want: it must be refused too.
            async with http.post(f"{platform.url}/user/{alice}/api/kernels", json={"name": "python3"},
                                 headers={"Authorization": f"token {bob_token}"}, allow_redirects=False) as resp:
                results["bob-start-kernel"] = resp.status
            return results

    results = run_sync(go())
    assert results["alice"] == 200
    assert results["bob"] == 403
    assert results["bob-start-kernel"] == 403
    assert results["nobody"] in (302, 403)  # anonymous: sent to log in, never served


def test_another_user_cannot_control_a_server_through_the_hub(platform):
    alice, _ = platform.started_user()
    bob, bob_token = platform.started_user()

    async def go():
        async with aiohttp.ClientSession(headers={"Authorization": f"token {bob_token}"}) as http:
            statuses = []
            for method, path in (("DELETE", f"/users/{alice}/server"), ("POST", f"/users/{alice}/tokens"),
                                 ("GET", f"/users/{alice}")):
                async with http.request(method, f"{platform.url}/hub/api{path}") as resp:
                    statuses.append(resp.status)
            return statuses

    assert all(status in (403, 404) for status in run_sync(go()))
    users = {u["name"]: u for u in HubAPI(platform.rt).users()}
    assert users[alice]["servers"], "alice's server must still be running"


@pytest.mark.parametrize("name", ["root", "daemon", "nobody", "www-data"])
def test_system_account_names_are_refused(platform, name):
    proc = cli("users", "add", name, "--password-stdin", config=platform.config_path, input="longenough\n",
               check=False)
    assert proc.returncode == 2
    assert "existing system account" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["Alice", "bad name", "../etc", "-x", "a" * 40, ""])
def test_invalid_usernames_are_refused(platform, name):
    proc = cli("users", "add", "--password-stdin", "--", name, config=platform.config_path,
               input="longenough\n", check=False)
    assert proc.returncode == 2
    assert "not allowed" in proc.stderr or "too long" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_login_as_system_account_is_refused_even_with_a_guess(platform):
    async def go():
        async with UserSim(platform.url, "daemon", password="whatever") as user:
            await user.login()

    with pytest.raises(Exception, match="refused"):
        run_sync(go())
    assert not any(e for e in pwd.getpwall() if e.pw_name == platform.prefix + "daemon")


def test_user_cannot_read_platform_secrets_or_databases(platform):
    name, token = platform.started_user()
    state = platform.rt.paths
    targets = [state.secret("cookie_secret"), state.secret("proxy_token"), state.secret("hub_admin_token"),
               state.accounts_db, state.hub / "jupyterhub.sqlite", state.hub / "jupyterhub_config.json"]
    code = (
        "import os\n"
        f"for path in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        open(path, 'rb').read(1); print('LEAK', path)\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
        "bad = [k for k in os.environ if k in ('CONFIGPROXY_AUTH_TOKEN', 'JUPYTERHUB_CRYPT_KEY')]\n"
        "print('env', bad or 'clean')\n"
    )

    out = platform.run_code(name, token, code).stdout.split("\n")
    assert out[: len(targets)] == ["denied"] * len(targets), out
    assert "env clean" in out


def test_user_cannot_rewrite_the_proxy_routes(platform):
    name, token = platform.started_user()
    api_port = platform.rt.config.hub.proxy_api_port
    code = (
        "import urllib.request, urllib.error, json\n"
        f"base = 'http://127.0.0.1:{api_port}/api/routes'\n"
        "for req in (urllib.request.Request(base),\n"
        "            urllib.request.Request(base + '/user/victim', method='POST',\n"
        "                                   data=json.dumps({'target': 'http://127.0.0.1:1'}).encode())):\n"
        "    try:\n"
        "        urllib.request.urlopen(req, timeout=5); print('LEAK')\n"
        "    except urllib.error.HTTPError as e:\n"
        "        print(e.code)\n"
    )

    assert platform.run_code(name, token, code).stdout.split() == ["403", "403"]


def test_user_cannot_read_another_users_process_environment(platform):
    alice, _ = platform.started_user()
    bob, bob_token = platform.started_user()
    import psutil

    alice_uid = platform.system_user(alice).pw_uid
    pids = [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == alice_uid]
    assert pids
    code = (
        f"for pid in {pids!r}:\n"
        "    try:\n"
        "        open(f'/proc/{pid}/environ').read(); print('LEAK')\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
    )

    assert set(platform.run_code(bob, bob_token, code).stdout.split()) == {"denied"}


LISTEN = """
import json, time, zmq
ctx = zmq.Context()
heard = []
for name in ("iopub", "shell"):
    sock = ctx.socket(zmq.SUB if name == "iopub" else zmq.DEALER)
    if name == "iopub":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(f"tcp://127.0.0.1:{PORTS[name]}")
    if name == "shell":  # an unsigned request: a kernel must never answer it
        sock.send_multipart([b"<IDS|MSG>", b"", b'{"msg_id": "x", "msg_type": "kernel_info_request"}', b"{}", b"{}", b"{}"])
    deadline = time.time() + 8
    while time.time() < deadline:
        if sock.poll(200):
            heard.append(name + ":" + repr(sock.recv_multipart()))
print(json.dumps(heard))
"""


def test_user_cannot_listen_to_or_talk_to_another_users_kernel(platform):
    """Kernels listen on loopback ports that anyone on the machine can connect to (their numbers are in
    /proc/net/tcp). Without transport encryption another person can subscribe to a kernel's output stream and
    read everything it prints; with CurveZMQ they get nothing."""
    import asyncio
    import json

    alice, alice_token = platform.started_user()
    bob, bob_token = platform.started_user()

    async def attack():
        async with UserSim(platform.url, alice, token=alice_token) as a, \
                UserSim(platform.url, bob, token=bob_token) as b:
            kernel = await a.start_kernel()
            try:
                info = await a.execute(kernel, "from ipykernel.connect import get_connection_info; "
                                               "print(get_connection_info())")
                ports = {k: v for k, v in json.loads(info.stdout).items() if k in ("iopub_port", "shell_port")}
                code = f"PORTS = {{'iopub': {ports['iopub_port']}, 'shell': {ports['shell_port']}}}\n" + LISTEN
                listening = asyncio.ensure_future(b.run(code, timeout=120))
                await asyncio.sleep(3)  # bob is connected and listening
                await a.execute(kernel, "import time\nfor _ in range(20):\n    print('alice-secret-4711'); time.sleep(0.2)")
                return await listening
            finally:
                await a.stop_kernel(kernel)

    result = run_sync(attack())
    assert result.ok, result.error
    heard = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [h for h in heard if "alice-secret-4711" in h], "bob read alice's kernel output"
    assert not [h for h in heard if h.startswith("shell:")], "alice's kernel answered bob"


def test_a_kernel_that_cannot_encrypt_is_refused_with_the_reason_and_the_fix(platform):
    """Kernel connections are encrypted: a kernel spec the person installed that does not declare CurveZMQ
    support must not start unencrypted, and must say why (upstream answers 500 "Unhandled error")."""
    name, token = platform.started_user()
    spec = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Old-style spec", "language": "python"}

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            await user.run(kernelspec_code("oldspec", spec))
            async with user.session.post(f"{user.user_url}/api/kernels", json={"name": "oldspec"},
                                         headers={"Authorization": f"token {user.token}"}) as resp:
                return resp.status, await resp.json()

    status, body = run_sync(go())
    assert status == 400
    assert "oldspec" in body["message"] and '"supported_encryption": ["curve"]' in body["message"]
    assert ".local/share/jupyter/kernels/oldspec/kernel.json" in body["message"]
