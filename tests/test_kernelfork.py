"""Kernels forked by the server's kernel forker (hub.fast_kernels, on by default) must be the kernels a fresh
``python -m ipykernel_launcher`` would be: same account, cgroup, working directory, sys.path, flags and
temporary directory; interruptible, restartable, reaped; gone with their server. Kernels the forker cannot
reproduce start the stock way. Each test looks from inside the person's kernel or at its processes."""

import asyncio
import json
import os
import signal
import time
import uuid

import psutil
import pytest

from harness import kernelspec_code
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform

FORKER = "pangeohub-kernel-forker"

PROBE = r"""
import json, os, subprocess, sys, tempfile, psutil
me = psutil.Process()
server = next(p for p in psutil.process_iter(["uids", "cmdline"])
              if p.info["uids"].real == os.getuid() and "jupyterhub-singleuser" in " ".join(p.info["cmdline"] or []))
fresh = json.loads(subprocess.run(
    [sys.executable, "-c", "import json, sys, tempfile; print(json.dumps([sys.path, list(sys.flags), tempfile.gettempdir()]))"],
    capture_output=True, text=True, check=True).stdout)
print(json.dumps({
    "pid": me.pid, "parent": " ".join(me.parent().cmdline()).strip(), "parent_pid": me.ppid(),
    "parent_uid": me.parent().uids().real, "server_pid": server.pid, "cmdline": " ".join(me.cmdline()).strip(),
    "path": [p for p in sys.path if p], "fresh_path": [p for p in fresh[0] if p], "cwd_on_path": "" in sys.path,
    "flags": list(sys.flags), "fresh_flags": fresh[1], "tmp": tempfile.gettempdir(), "fresh_tmp": fresh[2],
    "cwd": os.getcwd(), "uid": os.getuid(), "session_user": get_ipython().kernel.session.username,
    "user": os.environ["USER"], "cgroup": open("/proc/self/cgroup").read(),
    "parent_cgroup": open(f"/proc/{me.ppid()}/cgroup").read(),
    "server_cgroup": open(f"/proc/{server.pid}/cgroup").read(),
}))
"""


async def _probe(user: UserSim, path: str | None = None) -> dict:
    """Start a kernel (for the notebook at ``path`` if given, as JupyterLab does), run PROBE, stop it."""
    if path is None:
        kernel = await user.start_kernel()
        session = None
    else:
        session = await user._json("POST", f"{user.user_url}/api/sessions", expect=(201,),
                                   json={"path": path, "type": "notebook", "name": path,
                                         "kernel": {"name": "python3"}})
        kernel = session["kernel"]["id"]
    try:
        out = await user.execute(kernel, PROBE)
        assert out.ok, out.error
        return json.loads(out.stdout)
    finally:
        if session is None:
            await user.stop_kernel(kernel)
        else:
            await user._json("DELETE", f"{user.user_url}/api/sessions/{session['id']}", expect=(204,))


def _probe_running_kernel(platform, name: str, token: str) -> dict:
    """PROBE in a new kernel of ``name``, which is left running."""

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            kernel = await user.start_kernel()
            return json.loads((await user.execute(kernel, PROBE)).stdout)

    return run_sync(go())


def test_a_forked_kernel_is_what_a_fresh_python_would_be(platform):
    name, token = platform.started_user()
    entry = platform.system_user(name)
    home = entry.pw_dir

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            # A package the person installs after their server started, and a notebook in a sub-folder with a
            # module next to it: a new kernel imports both, as a fresh one would.
            await user.run(
                "import os, site, pathlib\n"
                "pkg = pathlib.Path(site.getusersitepackages(), 'installed_after_start')\n"
                "pkg.mkdir(parents=True)\n"
                "(pkg / '__init__.py').write_text('VALUE = 7')\n"
                "os.makedirs('project', exist_ok=True)\n"
                "open('project/helper.py', 'w').write('WHERE = \"project\"')\n")
            seen = await _probe(user, "project/analysis.ipynb")
            imports = None
            session = await user._json("POST", f"{user.user_url}/api/sessions", expect=(201,),
                                       json={"path": "project/other.ipynb", "type": "notebook",
                                             "name": "other", "kernel": {"name": "python3"}})
            try:
                imports = await user.execute(session["kernel"]["id"],
                                             "import installed_after_start, helper\n"
                                             "print(installed_after_start.VALUE, helper.WHERE)")
            finally:
                await user._json("DELETE", f"{user.user_url}/api/sessions/{session['id']}", expect=(204,))
            return seen, imports

    seen, imports = run_sync(go())
    # Forked: its parent is the server's kernel forker, the person's own process; it shows as the kernel in ps.
    assert seen["parent"] == FORKER and seen["parent_uid"] == entry.pw_uid
    assert " -m ipykernel_launcher -f " in seen["cmdline"]
    # The same kernel as a fresh one.
    assert seen["uid"] == entry.pw_uid
    assert seen["cwd"] == os.path.join(home, "project")
    assert seen["path"] == seen["fresh_path"] and seen["cwd_on_path"]
    assert seen["flags"] == seen["fresh_flags"]
    assert seen["tmp"] == seen["fresh_tmp"]
    assert seen["session_user"] == seen["user"] == entry.pw_name
    assert seen["cgroup"] == seen["parent_cgroup"] == seen["server_cgroup"]
    assert imports.ok, imports.error
    assert imports.stdout.split() == ["7", "project"]


async def _debug_request(user: UserSim, kernel: str, seq: int, command: str, arguments: dict) -> dict:
    """One request to the kernel's debugger, on the control channel, as JupyterLab's debugger panel sends it."""
    msg_id = uuid.uuid4().hex
    request = {"header": {"msg_id": msg_id, "username": user.username, "session": uuid.uuid4().hex,
                          "msg_type": "debug_request", "version": "5.3"},
               "parent_header": {}, "metadata": {}, "channel": "control", "buffers": [],
               "content": {"type": "request", "seq": seq, "command": command, "arguments": arguments}}
    ws_url = f"{user.user_url}/api/kernels/{kernel}/channels".replace("http", "ws", 1)
    async with user.session.ws_connect(ws_url, headers={"Authorization": f"token {user.token}"}) as ws:
        await ws.send_str(json.dumps(request))
        async with asyncio.timeout(60):
            async for frame in ws:
                msg = json.loads(frame.data)
                if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "debug_reply":
                    return msg["content"]
    raise AssertionError(f"no reply to debug request {command}")


def test_the_debugger_attaches_to_a_forked_kernel(platform):
    """JupyterLab's debugger runs inside the kernel (debugpy, which the kernel template has imported)."""
    name, token = platform.started_user()

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            kernel = await user.start_kernel()
            try:
                parent = json.loads((await user.execute(kernel, PROBE)).stdout)["parent"]
                init = await _debug_request(user, kernel, 1, "initialize", {
                    "clientID": "jupyterlab", "adapterID": "python", "pathFormat": "path",
                    "linesStartAt1": True, "columnsStartAt1": True})
                attach = await _debug_request(user, kernel, 2, "attach", {})
                info = await _debug_request(user, kernel, 3, "debugInfo", {})
                after = await user.execute(kernel, "def twice(x):\n    return 2 * x\nprint(twice(21))")
                return parent, init, attach, info, after
            finally:
                await user.stop_kernel(kernel)

    parent, init, attach, info, after = run_sync(go())
    assert parent == FORKER
    assert init["success"] and attach["success"], (init, attach)
    assert info["success"] and info["body"]["isStarted"]
    assert after.ok and after.stdout.strip() == "42"


def test_a_forked_kernel_is_interrupted_restarted_and_reaped(platform):
    name, token = platform.started_user()
    busy = os.path.join(platform.system_user(name).pw_dir, "busy")
    loop = f"import time\nopen({busy!r}, 'w').close()\nfor _ in range(600): time.sleep(0.1)"

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            kernel = await user.start_kernel()
            first = json.loads((await user.execute(kernel, PROBE)).stdout)
            running = asyncio.create_task(user.execute(kernel, loop))
            for _ in range(600):  # interrupt the loop, not a kernel that has not started it yet
                if os.path.exists(busy):
                    break
                await asyncio.sleep(0.1)
            await user._json("POST", f"{user.user_url}/api/kernels/{kernel}/interrupt", expect=(204,))
            interrupted = await asyncio.wait_for(running, 60)
            await user._json("POST", f"{user.user_url}/api/kernels/{kernel}/restart", expect=(200,))
            await user._exchange(kernel, "kernel_info_request", {}, "kernel_info_reply")
            second = json.loads((await user.execute(kernel, PROBE)).stdout)
            await user.stop_kernel(kernel)
            return first, interrupted, second

    first, interrupted, second = run_sync(go())
    assert interrupted.error and interrupted.error.startswith("KeyboardInterrupt")
    assert second["pid"] != first["pid"] and second["parent"] == FORKER
    forker = psutil.Process(second["parent_pid"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and forker.children():
        time.sleep(0.2)
    # Both kernels are gone and collected: no process and no zombie is left under the forker.
    assert forker.children() == []
    assert not psutil.pid_exists(first["pid"]) and not psutil.pid_exists(second["pid"])


def test_kernels_end_with_their_server(platform):
    name, token = platform.started_user()
    seen = _probe_running_kernel(platform, name, token)
    forker = psutil.Process(seen["parent_pid"])
    server = psutil.Process(seen["server_pid"])
    kernel = psutil.Process(seen["pid"])
    server.send_signal(signal.SIGKILL)  # a crash: the server cannot shut its kernels down
    gone, alive = psutil.wait_procs([forker, kernel], timeout=60)
    assert alive == [], f"still running after their server died: {[p.pid for p in alive]}"


def test_a_kernel_the_forker_cannot_reproduce_starts_as_a_fresh_process(platform):
    """A kernel spec whose environment sets a variable Python reads as it starts (here PYTHONWARNINGS) must
    get a fresh interpreter, which honours it."""
    name, token = platform.started_user()
    spec = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (warnings as errors)", "language": "python",
            "env": {"PYTHONWARNINGS": "error::UserWarning"}, "metadata": {"supported_encryption": ["curve"]}}

    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            await user.run(kernelspec_code("strict", spec))
            kernel = await user.start_kernel("strict")
            try:
                return await user.execute(kernel, "import sys, psutil\n"
                                                  "print(sys.warnoptions, psutil.Process().parent().cmdline())")
            finally:
                await user.stop_kernel(kernel)

    out = run_sync(go())
    assert out.ok, out.error
    assert "['error::UserWarning']" in out.stdout
    assert "jupyterhub-singleuser" in out.stdout and FORKER not in out.stdout


def test_nobody_else_can_reach_a_kernel_forker(platform):
    """The forker takes requests only on a socketpair its server made: no port, no path to connect to."""
    name, token = platform.started_user()
    seen = _probe_running_kernel(platform, name, token)
    forker = psutil.Process(seen["parent_pid"])
    assert forker.uids().real == platform.system_user(name).pw_uid
    assert forker.net_connections(kind="inet") == []
    named = [c.laddr for c in forker.net_connections(kind="unix") if c.laddr]
    assert named == [], f"the forker has a unix socket others could connect to: {named}"


def test_with_fast_kernels_off_kernels_start_as_fresh_processes():
    from harness import Platform

    plain = Platform(extra={"hub": {"fast_kernels": False}})
    try:
        plain.up()
        name, token = plain.started_user()
        seen = _probe_running_kernel(plain, name, token)
        assert "jupyterhub-singleuser" in seen["parent"] and seen["parent_pid"] == seen["server_pid"]
        uid = plain.system_user(name).pw_uid
        assert not [p for p in psutil.process_iter(["cmdline", "uids"])
                    if FORKER in " ".join(p.info["cmdline"] or []) and p.info["uids"].real == uid]
    finally:
        plain.close()
