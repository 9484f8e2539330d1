"""Servers forked from the pre-imported fork server (hub.fast_spawn, on by default) must be exactly as isolated
as freshly started ones: nothing of root, the fork server or the hub may survive into them. Each test looks
from where an attacker would: inside the user's own kernel, or at the server process from outside."""

import json
import os
from pathlib import Path

import psutil
import pytest

from pangeohub.hubapi import HubAPI
from pangeohub.targets.local.forkserver import enabled_extensions
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

INSPECT = r"""
import json, os
def status(pid):
    fields = {}
    for line in open(f'/proc/{pid}/status'):
        key, _, value = line.partition(':')
        fields[key] = value.split()
    return {k: fields.get(k) for k in ('Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapAmb', 'NoNewPrivs')}
def server_pid():  # the kernel's parent is the server, or its kernel forker (hub.fast_kernels)
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if (os.stat(f'/proc/{pid}').st_uid == os.getuid()
                    and b'jupyterhub-singleuser' in open(f'/proc/{pid}/cmdline', 'rb').read()):
                return int(pid)
        except OSError:
            pass
server = server_pid()
print(json.dumps({'kernel': status('self'), 'parent': status(os.getppid()), 'server': status(server),
                  'server_pid': server, 'parent_pid': os.getppid(),
                  'kernel_fds': [os.readlink('/proc/self/fd/' + fd) for fd in os.listdir('/proc/self/fd')
                                 if os.path.exists('/proc/self/fd/' + fd)],
                  'env': dict(os.environ), 'cwd': os.getcwd()}))
"""


def _inspect(platform, name, token) -> dict:
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user.run(INSPECT)

    out = run_sync(go())
    assert out.ok, out.error
    return json.loads(out.stdout)


def _forkserver_pid(platform) -> int:
    return json.loads(platform.cli("status", "--json").stdout)["services"]["forkserver"]["pid"]


def _hub_secrets(platform) -> dict[str, bytes]:
    secrets_dir = Path(platform.rt.paths.secrets)
    return {p.name: p.read_bytes().strip() for p in secrets_dir.iterdir() if p.is_file()}


def _memory_contains(pid: int, needles: dict[str, bytes]) -> set[str]:
    """Names of the needles found anywhere in the readable memory of ``pid`` (read as root)."""
    found = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            found |= {name for name, needle in needles.items() if needle and needle in chunk}
    return found


def test_forked_server_keeps_nothing_of_root_the_fork_server_or_the_hub(platform):
    alice, alice_token = platform.started_user()
    bob, bob_token = platform.started_user()
    entry = platform.system_user(bob)
    alice_seen = _inspect(platform, alice, alice_token)
    seen = _inspect(platform, bob, bob_token)
    server = psutil.Process(seen["server_pid"])

    # It was forked (not exec'd): its parent is the fork server. It shows as the server in ps.
    assert server.ppid() == _forkserver_pid(platform)
    assert "jupyterhub-singleuser" in " ".join(server.cmdline())

    # Identity and privilege, of the kernel and of the server it runs under.
    user_groups = {str(g) for g in os.getgrouplist(entry.pw_name, entry.pw_gid)}
    for who in ("kernel", "parent", "server"):
        status = seen[who]
        assert status["Uid"] == [str(entry.pw_uid)] * 4, who
        assert status["Gid"] == [str(entry.pw_gid)] * 4, who
        assert set(status["Groups"]) <= user_groups, who
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            assert int(status[cap][0], 16) == 0, (who, cap)
    assert seen["cwd"] == entry.pw_dir

    # Environment: the user's own, with none of the hub's secrets and none of another user's.
    env_text = json.dumps(seen["env"]).encode()
    assert not [name for name, value in _hub_secrets(platform).items() if value and value in env_text]
    assert alice_seen["env"]["JUPYTERHUB_API_TOKEN"] not in env_text.decode()
    assert seen["env"]["HOME"] == entry.pw_dir and seen["env"]["USER"] == entry.pw_name
    assert "CONFIGPROXY_AUTH_TOKEN" not in seen["env"] and "JUPYTERHUB_CRYPT_KEY" not in seen["env"]

    # File descriptors of the server, its kernel forker and its kernel: none of the fork server's sockets, and no file under the
    # state directory but the hub log (which a stock spawn inherits too, as its stdout and stderr).
    forkserver = _forkserver_pid(platform)
    fork_fds = {os.readlink(f"/proc/{forkserver}/fd/{fd}") for fd in os.listdir(f"/proc/{forkserver}/fd")}
    state_dir = str(platform.rt.paths.root)
    server_fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for pid in {server.pid, seen["parent_pid"]}
                  for fd in os.listdir(f"/proc/{pid}/fd")]
    for target in server_fds + seen["kernel_fds"]:
        assert not (target.startswith("socket:") and target in fork_fds), target
        assert not target.startswith(state_dir) or target == str(platform.rt.paths.log("hub")), target

    # Memory: no hub secret and not the other user's token anywhere in the server's address space.
    needles = {**_hub_secrets(platform), "alice-token": alice_seen["env"]["JUPYTERHUB_API_TOKEN"].encode()}
    for pid in {server.pid, seen["parent_pid"]}:  # the server, and the kernel forker it forked
        assert _memory_contains(pid, needles) == set()


def test_user_config_runs_as_the_user_and_forked_servers_survive_a_fork_server_restart(platform):
    name, token = platform.started_user()
    entry = platform.system_user(name)
    # A config file the user can write is executed by the server at start: it must already be the user's.
    probe = ("import os; open(os.path.expanduser('~/who'), 'w').write("
             "f'{os.getuid()} {os.getgid()} {sorted(os.getgroups())}')")

    async def write_config():
        async with UserSim(platform.url, name, token=token) as user:
            await user.run("import os; os.makedirs(os.path.expanduser('~/.jupyter'), exist_ok=True);"
                           f"open(os.path.expanduser('~/.jupyter/jupyter_server_config.py'), 'w').write({probe!r})")
            await user.stop_server()
            await user.start_server()

    run_sync(write_config())
    uid, gid, _ = Path(entry.pw_dir, "who").read_text().split(" ", 2)
    assert (int(uid), int(gid)) == (entry.pw_uid, entry.pw_gid)

    before = _inspect(platform, name, token)["server_pid"]
    hub_pid = json.loads(platform.cli("status", "--json").stdout)["services"]["hub"]["pid"]
    platform.cli("restart", "forkserver")
    assert json.loads(platform.cli("status", "--json").stdout)["services"]["hub"]["pid"] == hub_pid
    after = _inspect(platform, name, token)["server_pid"]
    assert after == before  # the running server was not touched

    async def stop_and_start():
        async with UserSim(platform.url, name, token=token) as user:
            await user.stop_server()
            await user.start_server()
            return await user.run("print(6 * 7)")

    assert run_sync(stop_and_start()).stdout.strip() == "42"
    assert not psutil.pid_exists(before) or psutil.Process(before).status() == psutil.STATUS_ZOMBIE
    users = {u["name"]: u for u in HubAPI(platform.rt).users()}
    assert users[name]["servers"][""]["ready"]


def test_with_fast_spawn_off_servers_start_as_fresh_processes():
    from harness import Platform

    plain = Platform(extra={"hub": {"fast_spawn": False}})
    try:
        plain.up()
        assert "forkserver" not in json.loads(plain.cli("status", "--json").stdout)["services"]
        name, token = plain.started_user()
        seen = _inspect(plain, name, token)
        server = psutil.Process(seen["server_pid"])
        assert server.ppid() == json.loads(plain.cli("status", "--json").stdout)["services"]["hub"]["pid"]
        assert seen["server"]["Uid"] == [str(plain.system_user(name).pw_uid)] * 4
    finally:
        plain.close()


def test_the_template_preloads_the_server_extensions_switched_on_not_those_switched_off(tmp_path):
    """The runtime's own config: jupyter-resource-usage (memory against the profile's MEM_LIMIT) is on and loaded
    before the fork; panel's extension is switched off by pangeohub.json, a later file than panel's own."""
    names = enabled_extensions()
    assert {"jupyter_resource_usage", "pangeohub.hub.serverproof", "jupyterlab"} <= set(names)
    assert "panel.io.jupyter_server_extension" not in names
    confd = tmp_path / "etc" / "jupyter" / "jupyter_server_config.d"
    confd.mkdir(parents=True)
    for name, switches in (("a.json", {"x": True, "y": True}), ("b.json", {"y": False})):
        (confd / name).write_text(json.dumps({"ServerApp": {"jpserver_extensions": switches}}))
    assert enabled_extensions(str(tmp_path)) == ["x"]
