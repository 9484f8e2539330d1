"""Resources as people meet them: profiles, kernel-enforced limits, home quotas, shared folders.

One platform of its own (small limits, a 64M quota) shared by these tests; each test uses its own users.
"""

import asyncio
import json
import re
import subprocess
from pathlib import Path

import aiohttp
import pytest

from harness import Platform
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

TINY_MEMORY = 320 * 1024**2
QUICKSTART = "# Hello from the workshop\nRead me first.\n"


@pytest.fixture(scope="module")
def hub():
    platform = Platform(extra={
        "profiles": [
            {"name": "tiny", "description": "for tests", "cpus": 1, "memory": "320M"},
            {"name": "duo", "cpus": 2, "memory": "512M"},
            {"name": "staffonly", "cpus": 1, "memory": "256M", "groups": ["staff"]},
            {"name": "fewprocs", "cpus": 1, "memory": "320M", "processes": 64},
        ],
        "homes": {"quota": "64M", "quickstart": QUICKSTART},
    })
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def start(hub, options=None, name=None):
    """A new user with a running server (started with ``options``); returns (name, token)."""
    name, _ = hub.add_user(name)

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server(options)
            return user.token

    return name, run_sync(go())


def run(hub, name, token, code, timeout=120):
    async def go():
        async with UserSim(hub.url, name, token=token) as user:
            return await user.run(code, timeout=timeout)

    return run_sync(go())


LIMITS_CODE = (
    "import os\n"
    "paths = dict(line.strip().split(':', 2)[1:] for line in open('/proc/self/cgroup'))\n"
    "mem = '/sys/fs/cgroup/memory' + paths['memory'] + '/memory.limit_in_bytes'\n"
    "cpu = '/sys/fs/cgroup/cpu' + paths['cpu']\n"
    "quota = int(open(cpu + '/cpu.cfs_quota_us').read()) / int(open(cpu + '/cpu.cfs_period_us').read())\n"
    "print(open(mem).read().strip(), quota, os.environ['PANGEO_PROFILE'], os.environ['MEM_LIMIT'])\n"
)


def test_spawn_page_offers_the_profiles_the_user_may_use(hub):
    name, _ = hub.add_user()

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            async with user.session.get(f"{hub.url}/hub/spawn") as resp:
                return resp.status, await resp.text()

    status, page = run_sync(go())
    assert status == 200
    assert 'value="tiny"' in page and 'value="duo"' in page
    assert "staffonly" not in page  # limited to a group this user is not in
    assert "2 CPUs, 512M memory" in page


def test_profile_chosen_through_the_api_reaches_the_kernels_cgroup(hub):
    name, token = start(hub, {"profile": "duo"})
    out = run(hub, name, token, LIMITS_CODE)
    assert out.ok, out.error
    memory, cpus, profile, env_limit = out.stdout.split()
    assert int(memory) == 512 * 1024**2 and float(cpus) == 2.0
    assert profile == "duo" and int(env_limit) == 512 * 1024**2
    # Attack: leave the cgroup, or raise its limit. Both files belong to root.
    escape = run(hub, name, token, LIMITS_CODE.rsplit("print", 1)[0] + (
        "for path, value in (('/sys/fs/cgroup/memory/cgroup.procs', str(os.getpid())), (mem, str(2**40))):\n"
        "    try:\n"
        "        open(path, 'w').write(value)\n"
        "        print('ESCAPED')\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
    ))
    assert escape.stdout.split() == ["denied", "denied"], escape


def test_profile_chosen_on_the_spawn_page_reaches_the_limits(hub):
    name, _ = hub.add_user()

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            async with user.session.get(f"{hub.url}/hub/spawn") as resp:
                page = await resp.text()
            action = re.search(r'<form[^>]*action="([^"]+)"', page).group(1).replace("&amp;", "&")
            async with user.session.post(f"{hub.url}{action}", data={"profile": "tiny"},
                                         allow_redirects=False) as resp:
                assert resp.status == 302, await resp.text()
            await user.start_server()  # already starting: follows the progress until ready
            return user.token

    token = run_sync(go())
    out = run(hub, name, token, LIMITS_CODE)
    assert out.ok, out.error
    memory, cpus, profile, _ = out.stdout.split()
    assert (int(memory), float(cpus), profile) == (TINY_MEMORY, 1.0, "tiny")


def test_forbidden_or_unknown_profile_is_refused_with_the_reason(hub):
    name, _ = hub.add_user()

    async def attempt(options):
        async with hub.sim(name) as user:
            await user.login()
            async with user.session.post(f"{hub.url}/hub/api/users/{name}/server", json=options,
                                         headers={"Authorization": f"token {user.token}"}) as resp:
                return resp.status, await resp.text()

    status, body = run_sync(attempt({"profile": "staffonly"}))
    assert status == 400 and "limited to the groups staff" in body and "tiny" in body
    status, body = run_sync(attempt({"profile": "huge"}))
    assert status == 400 and "no profile 'huge'" in body
    status, body = run_sync(attempt({"profile": "tiny", "gpus": 4}))
    assert status == 400 and "unknown server option" in body


def test_kernel_past_its_memory_limit_dies_and_another_users_kernel_keeps_running(hub):
    alice, alice_token = start(hub, {"profile": "tiny"})
    bob, bob_token = start(hub, {"profile": "tiny"})

    async def go():
        async with UserSim(hub.url, bob, token=bob_token) as bob_sim, \
                UserSim(hub.url, alice, token=alice_token) as alice_sim:
            bob_kernel = await bob_sim.start_kernel()
            before = await bob_sim.execute(bob_kernel, "data = list(range(1000)); print(sum(data))")
            alice_kernel = await alice_sim.start_kernel()
            states = await _run_until_kernel_dies(
                alice_sim, alice_kernel, "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**24)\n")
            after = await bob_sim.execute(bob_kernel, "print(sum(data) + 1)")  # same kernel, state intact
            # Alice's server is still up; her next cell says what happened.
            told = await alice_sim.run("print('alive')")
            await bob_sim.stop_kernel(bob_kernel)
            return before, states, after, told

    before, states, after, told = run_sync(go())
    assert "restarting" in states or "dead" in states
    assert before.stdout.strip() == "499500" and after.stdout.strip() == "499501"
    assert told.stdout.strip() == "alive"
    assert "memory limit of 320M" in told.stderr and "profile 'tiny'" in told.stderr
    rows = {r["name"]: r for r in json.loads(hub.cli("users", "usage", "--json").stdout)}
    assert rows[alice]["oom_kills"] >= 1 and rows[bob]["oom_kills"] == 0
    assert rows[alice]["memory_limit"] == TINY_MEMORY


FORK_LOOP = """
import os, time
pids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        pids.append(pid)
except BlockingIOError:
    print('forked', len(pids), flush=True)
    time.sleep(6)  # hold the limit while the others work
    raise
finally:
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
"""


def test_fork_loop_stops_at_the_process_limit_while_others_and_the_hub_keep_working(hub):
    alice, alice_token = start(hub, {"profile": "fewprocs"})
    bob, bob_token = start(hub, {"profile": "tiny"})

    async def go():
        async with UserSim(hub.url, bob, token=bob_token) as bob_sim, \
                UserSim(hub.url, alice, token=alice_token) as alice_sim:
            bob_kernel = await bob_sim.start_kernel()
            alice_kernel = await alice_sim.start_kernel()
            loop = asyncio.create_task(alice_sim.execute(alice_kernel, FORK_LOOP, 120))
            await asyncio.sleep(4)
            # While alice sits at her limit, bob starts processes and the hub answers.
            bob_out = await bob_sim.execute(
                bob_kernel, "import subprocess; print(subprocess.run(['true']).returncode)", 60)
            async with bob_sim.session.get(f"{hub.url}/hub/api/user", headers=bob_sim._auth) as resp:
                hub_status = resp.status
            alice_out = await loop
            after = await alice_sim.execute(alice_kernel, "import subprocess; print(subprocess.run(['true']).returncode)")
            return bob_out, hub_status, alice_out, after

    bob_out, hub_status, alice_out, after = run_sync(go())
    forked = int(alice_out.stdout.split()[1])
    assert 0 < forked < 64, alice_out.stdout
    assert "BlockingIOError" in alice_out.error
    assert "limit of 64 processes and threads" in alice_out.stderr and "profile 'fewprocs'" in alice_out.stderr
    assert bob_out.stdout.strip() == "0" and hub_status == 200
    assert after.stdout.strip() == "0"  # once the loop's processes are gone she can start processes again
    rows = {r["name"]: r for r in json.loads(hub.cli("users", "usage", "--json").stdout)}
    assert rows[alice]["processes_refused"] >= 1 and rows[bob]["processes_refused"] == 0


TEMP_CODE = """
import errno, os, tempfile
probe = tempfile.NamedTemporaryFile(delete=False, prefix='secret-')
probe.write(b'my thesis draft'); probe.close()
shared = '/tmp/pangeo-umask-probe-' + os.environ['USER']
with open(shared, 'w') as f:
    f.write('private by umask')
print(probe.name, oct(os.stat(probe.name).st_mode & 0o777), shared, oct(os.stat(shared).st_mode & 0o777))
filler = os.path.join(tempfile.gettempdir(), 'filler')
try:
    with open(filler, 'wb') as f:
        for _ in range(200):
            f.write(b'x' * 2**20)
            f.flush()
            os.fsync(f.fileno())
    print('NOT-FULL')
except OSError as exc:
    print(errno.errorcode[exc.errno])
os.remove(filler)
"""


def test_temp_files_are_private_and_count_against_the_home_quota(hub):
    alice, alice_token = start(hub, {"profile": "tiny"})
    bob, bob_token = start(hub, {"profile": "tiny"})
    out = run(hub, alice, alice_token, TEMP_CODE)
    temp_file, temp_mode, shared_file, shared_mode, full = out.stdout.split()
    home = Path(hub.rt.config.users.home_root) / (hub.prefix + alice)
    assert Path(temp_file).parent == home / ".cache" / "tmp"  # TMPDIR: in her own home, not the shared /tmp
    assert temp_mode == "0o600" and shared_mode == "0o600"  # umask 077, also for files written to /tmp
    assert full == "ENOSPC"  # a full temp dir is her quota, not the machine's disk
    attack = run(hub, bob, bob_token, (
        f"for path in ({temp_file!r}, {shared_file!r}):\n"
        "    try:\n        print(open(path).read())\n"
        "    except OSError as exc:\n        print(type(exc).__name__)\n"))
    assert attack.stdout.split() == ["PermissionError", "PermissionError"]
    Path(shared_file).unlink()


async def _run_until_kernel_dies(sim, kernel_id, code):
    """Run ``code`` and collect the kernel's status messages until the server reports it restarting."""
    ws_url = f"{sim.user_url}/api/kernels/{kernel_id}/channels".replace("http", "ws", 1)
    request = {
        "header": {"msg_id": "oom", "username": sim.username, "session": "oom", "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }
    states = []
    async with sim.session.ws_connect(ws_url, headers=sim._auth) as ws:
        await ws.send_str(json.dumps(request))
        async with asyncio.timeout(120):
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                msg = json.loads(frame.data)
                if msg["header"]["msg_type"] == "status":
                    states.append(msg["content"]["execution_state"])
                    if states[-1] in ("restarting", "dead"):
                        break
                if msg["header"]["msg_type"] == "error":
                    states.append("error: " + msg["content"]["evalue"])
                    break
    return states


def test_write_past_the_home_quota_fails_clearly_and_keeps_existing_files(hub):
    name, token = start(hub, {"profile": "tiny"})
    out = run(hub, name, token, (
        "import os\n"
        "open('keep.txt', 'w').write('precious ' * 1000)\n"
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(100):\n"
        "        f.write(os.urandom(2**20))\n"
    ))
    assert out.error and "No space left on device" in out.error
    assert "home quota of 64M is full" in out.stderr
    check = run(hub, name, token, (
        "import os, shutil\n"
        "print(open('keep.txt').read() == 'precious ' * 1000, shutil.disk_usage(os.environ['HOME']).total)\n"
        "os.remove('big.bin')\n"
        "open('after.txt', 'w').write('room again')\n"
        "print(open('after.txt').read())\n"
    ))
    assert check.ok, check.error
    intact, total, again = check.stdout.split(maxsplit=2)
    assert intact == "True" and int(total) <= 64 * 1024**2
    assert again.strip() == "room again"
    rows = {r["name"]: r for r in json.loads(hub.cli("users", "usage", "--json").stdout)}
    assert rows[name]["home_quota"] == 64 * 1024**2
    assert 0 < rows[name]["home_used"] < 64 * 1024**2
    assert name in hub.cli("users", "usage").stdout


def test_shared_data_is_read_only_scratch_is_shared_and_quickstart_is_given(hub):
    reader, reader_token = start(hub)
    writer, writer_token = start(hub)
    admin, _ = hub.add_user(admin=True)
    admin, admin_token = admin, None

    async def go_admin():
        async with hub.sim(admin) as user:
            await user.login()
            await user.start_server()
            return user.token

    admin_token = run_sync(go_admin())
    published = run(hub, admin, admin_token, "open('shared/catalog.txt', 'w').write('dataset list'); print('ok')")
    assert published.ok, published.error
    out = run(hub, reader, reader_token, (
        "import os\n"
        f"print(open({hub.rt.config.homes.quickstart_name!r}).read() == {QUICKSTART!r})\n"
        "print(open('shared/catalog.txt').read().replace(' ', '_'))\n"
        "try:\n"
        "    open('shared/mine.txt', 'w')\n"
        "    print('WROTE')\n"
        "except PermissionError:\n"
        "    print('read-only')\n"
        "open('scratch/note.txt', 'w').write('hello')\n"
        "print(os.path.realpath('scratch') == os.environ['PANGEO_SHARED_SCRATCH'])\n"
    ))
    assert out.ok, out.error
    assert out.stdout.split() == ["True", "dataset_list", "read-only", "True"]
    attack = run(hub, writer, writer_token, (
        "import os\n"
        "print(open('scratch/note.txt').read())\n"
        "for act in (lambda: os.remove('scratch/note.txt'), lambda: open('scratch/note.txt', 'a').write('x')):\n"
        "    try:\n"
        "        act()\n"
        "        print('CHANGED')\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
    ))
    assert attack.stdout.split() == ["hello", "denied", "denied"]


def test_homes_persist_across_down_and_up_and_nothing_of_the_user_outlives_down():
    # A platform of its own: `down` stops every server, which would be slow with the shared one's many users.
    hub = Platform(extra={"homes": {"quota": "64M"}})
    try:
        hub.up()
        name, token = start(hub)
        assert run(hub, name, token, "open('kept.txt', 'w').write('across restarts'); print('ok')").ok
        account = hub.system_user(name)
        home = account.pw_dir
        # A process of the person the hub does not know about (as a server is that `down` catches mid-restart):
        # `down` must end it rather than unmount the home under it.
        stray = subprocess.Popen(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                                  "--clear-groups", "sleep", "600"], cwd=home)
        hub.down()
        assert stray.wait(timeout=5) is not None
        assert home not in Path("/proc/self/mounts").read_text()  # unmounted: the image holds the files
        hub.up()

        async def go():
            async with hub.sim(name) as user:
                await user.login()
                await user.start_server()
                return await user.run("print(open('kept.txt').read())")

        assert run_sync(go()).stdout.strip() == "across restarts"
    finally:
        hub.close()
