"""Workshop material on a running platform: repositories on this machine pulled into people's homes at each
start, as the person, with nbgitpuller's merge rules; `pangeohub content sync`; git-pull links; and a repository
that cannot be reached, which never stops a server from starting.

The repositories are bare repositories on loopback only: `file://` paths owned by root (as an admin's would be),
and one served by `git daemon` on a free loopback port for the git-pull link.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

from harness import Platform, free_port
from pangeohub.content.runner import pull_now
from pangeohub.usersim import run_sync

pytestmark = pytest.mark.platform
GIT = ["git", "-c", "user.name=Teacher", "-c", "user.email=teacher@example.org"]


class Upstream:
    """A bare repository and the teacher's clone that pushes to it."""

    def __init__(self, root: Path, name: str, files: dict[str, str]):
        self.bare = root / f"{name}.git"
        self.work = root / "teacher" / name
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        subprocess.run(["git", "clone", "-q", str(self.bare), str(self.work)], check=True, capture_output=True)
        self.url = f"file://{self.bare}"
        self.push(files, "first lesson")

    def push(self, files: dict[str, str], message: str) -> None:
        for name, text in files.items():
            (self.work / name).write_text(text)
        subprocess.run([*GIT, "-C", str(self.work), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(self.work), "commit", "-qm", message], check=True)
        subprocess.run(["git", "-C", str(self.work), "push", "-q", "origin", "HEAD:main"], check=True,
                       capture_output=True)

    def head(self) -> str:
        return subprocess.run(["git", "-C", str(self.work), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def repos():
    # Readable by every account (/var/tmp, 0755): people's pulls read it as themselves.
    root = Path(tempfile.mkdtemp(prefix="pangeohub-content-", dir="/var/tmp"))
    root.chmod(0o755)
    made = {
        "root": root,
        "workshop": Upstream(root, "workshop", {"lesson.txt": "intro\nstep one\nstep two\n",
                                                 "README.md": "# Workshop\n"}),
        "ocean": Upstream(root, "ocean", {"ocean.txt": "salinity\n"}),
    }
    yield made
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(repos):
    platform = Platform({
        "content": [
            {"url": repos["workshop"].url, "folder": "workshop"},
            {"url": repos["ocean"].url, "branch": "main", "folder": "courses/ocean", "groups": ["ocean"]},
            # Nothing answers there: whoever is in 'flaky' must still get a server (and a notice).
            {"url": f"file://{repos['root']}/missing.git", "folder": "gone", "groups": ["flaky"], "timeout": "10s"},
        ],
    })
    try:
        platform.up()
        yield platform
    finally:
        platform.close()


def add(hub, name: str, *groups: str) -> str:
    password = f"pw-{name}-123456"
    hub.cli("users", "add", name, *[arg for g in groups for arg in ("--group", g)], "--password-stdin",
            input=password + "\n")
    hub.passwords[name] = password
    return name


def start(hub, name: str) -> list[dict]:
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            return await user.start_server()

    return run_sync(go())


def stop(hub, name: str) -> None:
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.stop_server()

    run_sync(go())


def listing(hub, name: str, path: str = "") -> set[str]:
    """What the person's JupyterLab file browser shows in ``path`` (empty set: no such folder)."""
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            model = await user.server_get(f"/api/contents/{path}", expect=(200, 404))
            return {item["name"] for item in model["content"]} if model and "content" in model else set()

    return run_sync(go())


def read(hub, name: str, path: str) -> str:
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            return (await user.server_get(f"/api/contents/{path}?type=file&format=text"))["content"]

    return run_sync(go())


def save(hub, name: str, path: str, text: str) -> None:
    """Save a file as JupyterLab's editor does (the contents API of the person's own server)."""
    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user._json("PUT", f"{user.user_url}/api/contents/{path}",
                             json={"type": "file", "format": "text", "content": text})

    run_sync(go())


def test_first_start_clones_for_everyone_and_groups_choose_the_rest(hub, repos):
    ann, olga = add(hub, "ann"), add(hub, "olga", "ocean")
    start(hub, ann)
    start(hub, olga)
    assert {"README.md", "lesson.txt"} <= listing(hub, ann, "workshop")
    assert "courses" not in listing(hub, ann)  # ann is not in 'ocean': nothing of it reaches her home
    assert listing(hub, olga, "courses/ocean") >= {"ocean.txt"}
    assert read(hub, olga, "workshop/lesson.txt") == "intro\nstep one\nstep two\n"
    # Pulled as the person: everything in the folder is theirs, not root's.
    account = hub.system_user(olga)
    for path in (Path(account.pw_dir) / "courses" / "ocean").rglob("*"):
        assert path.lstat().st_uid == account.pw_uid, path


def test_an_edit_survives_the_next_start_while_upstream_changes_arrive(hub, repos):
    name = add(hub, "eve")
    start(hub, name)
    save(hub, name, "workshop/README.md", "# Workshop\nmy notes\n")
    repos["workshop"].push({"day2.txt": "day two\n", "lesson.txt": "intro\nstep one\nstep two\nstep three\n"},
                           "day two")
    stop(hub, name)
    start(hub, name)
    assert read(hub, name, "workshop/README.md") == "# Workshop\nmy notes\n"
    assert read(hub, name, "workshop/day2.txt") == "day two\n"
    assert read(hub, name, "workshop/lesson.txt").endswith("step three\n")


def test_a_conflicting_edit_keeps_theirs_with_upstreams_beside_it(hub, repos):
    name = add(hub, "kim")
    start(hub, name)
    save(hub, name, "workshop/lesson.txt", "intro\nMY OWN STEP\nstep two\nstep three\n")
    repos["workshop"].push({"lesson.txt": "intro\nstep one (corrected)\nstep two\nstep three\n"}, "fix")
    commit = repos["workshop"].head()
    stop(hub, name)
    start(hub, name)
    assert read(hub, name, "workshop/lesson.txt") == "intro\nMY OWN STEP\nstep two\nstep three\n"
    beside = f"lesson.upstream-{commit}.txt"
    assert beside in listing(hub, name, "workshop")
    assert read(hub, name, f"workshop/{beside}") == "intro\nstep one (corrected)\nstep two\nstep three\n"


def test_an_unreachable_repository_never_stops_the_server_and_leaves_a_notice(hub, repos):
    name = add(hub, "fay", "flaky")
    events = start(hub, name)
    assert events[-1].get("ready")
    home = listing(hub, name)
    assert "gone.NOT-UPDATED.txt" in home and "gone" not in home
    notice = read(hub, name, "gone.NOT-UPDATED.txt")
    assert "missing.git" in notice and "Your files are untouched" in notice
    assert "lesson.txt" in listing(hub, name, "workshop")  # the reachable ones still arrived


def test_content_sync_pulls_now_for_everyone_running(hub, repos):
    repos["workshop"].push({"day3.txt": "day three\n"}, "day three")
    proc = hub.cli("content", "sync", check=False)
    lines = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines() if ":" in line}
    assert lines["ann"] == "ann: workshop: updated"
    assert lines["olga"] == "olga: workshop: updated; courses/ocean: already current"
    assert "fay: workshop: updated; gone: FAILED" in lines["fay"] and "missing.git" in lines["fay"]
    # A failed pull is reported, not hidden: the command says so and exits 1.
    assert proc.returncode == 1 and "1 pull(s) failed" in proc.stderr
    assert read(hub, "ann", "workshop/day3.txt") == "day three\n"

    only = json.loads(hub.cli("content", "sync", "--user", "olga", "--json").stdout)
    assert [(r["folder"], r["status"]) for r in only["olga"]] == [("workshop", "current"),
                                                                    ("courses/ocean", "current")]
    refused = hub.cli("content", "sync", "--user", "nobody-here", check=False)
    assert refused.returncode == 2 and "no running server for: nobody-here" in refused.stderr


@pytest.fixture(scope="module")
def daemon(repos):
    """`git daemon` serving the repository of a git-pull link on a free loopback port."""
    served = repos["root"] / "served"
    served.mkdir()
    Upstream(served, "linked", {"hello.md": "# Linked material\n"})
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}",
                             "--listen=127.0.0.1", f"--port={port}", str(served)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/linked.git"
    for _ in range(100):
        if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
            break
        threading.Event().wait(0.1)
    yield url
    proc.terminate()
    proc.wait()


def test_a_git_pull_link_works_through_the_hub(hub, daemon):
    name = add(hub, "lin")
    start(hub, name)
    query = urllib.parse.urlencode({"repo": daemon, "branch": "main", "urlpath": "lab/tree/linked/hello.md"})

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            # The link as people click it: the hub sends them to their own server's nbgitpuller page.
            async with user.session.get(f"{hub.url}/hub/user-redirect/git-pull?{query}") as resp:
                page = await resp.text()
                landed = str(resp.url)
            # What that page's script then asks the server for, as it does in a browser.
            api = f"{user.user_url}/git-pull/api?" + urllib.parse.urlencode({"repo": daemon, "branch": "main",
                                                                           "targetpath": "linked"})
            phases = []
            async with user.session.get(api, headers=user._auth) as resp:
                async for raw in resp.content:
                    line = raw.decode().strip()
                    if line.startswith("data:"):
                        phases.append(json.loads(line[5:]).get("phase"))
            return page, landed, phases

    page, landed, phases = run_sync(go())
    assert f"/user/{name}/git-pull?" in landed and "nbgitpuller" in page
    assert phases[-1] == "finished", phases
    assert read(hub, name, "linked/hello.md") == "# Linked material\n"


def nobody_with_home(root: Path, name: str) -> pwd.struct_passwd:
    """The unprivileged account `nobody`, with a home of its own below a folder every account may enter."""
    home = root / name
    home.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    fields = list(nobody)
    fields[5] = str(home)
    return pwd.struct_passwd(fields)


def test_a_slow_repository_is_ended_at_its_timeout_with_a_notice(repos):
    """The puller alone, as an unprivileged account: a server that accepts and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    account = nobody_with_home(repos["root"], "slow-home")
    home = Path(account.pw_dir)
    try:
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/stuck.git"
        [result] = pull_now(account, [{"url": url, "branch": "main", "folder": "stuck", "timeout": 2}])
    finally:
        listener.close()
    assert result["status"] == "failed" and "did not answer within 2s" in result["detail"]
    notice = home / "stuck.NOT-UPDATED.txt"
    assert notice.stat().st_uid == account.pw_uid and "did not answer" in notice.read_text()


def test_a_folder_that_is_not_the_repositorys_clone_is_left_alone(repos):
    """A person's own folder (or a link) where the material would go is never merged into, nor followed."""
    account = nobody_with_home(repos["root"], "busy-home")
    home = Path(account.pw_dir)
    (home / "workshop").mkdir()
    (home / "workshop" / "thesis.txt").write_text("my thesis\n")
    (home / "elsewhere").mkdir()
    (home / "linked").symlink_to(home / "elsewhere")
    sources = [{"url": repos["workshop"].url, "branch": "main", "folder": folder, "timeout": 20}
               for folder in ("workshop", "linked")]
    results = pull_now(account, sources)
    assert [r["status"] for r in results] == ["failed", "failed"]
    assert "'workshop' exists and is not a clone of" in results[0]["detail"]
    assert sorted(p.name for p in (home / "workshop").iterdir()) == ["thesis.txt"]
    assert list((home / "elsewhere").iterdir()) == []
    assert "rename or remove it" in (home / "workshop.NOT-UPDATED.txt").read_text()
