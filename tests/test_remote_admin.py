"""The admin CLI against a remote hub (``--hub-url``), as an operator elsewhere meets it: an unprivileged
process, in another directory, with no config and no way into the hub's state dir, only the hub's address and
an admin's token. The hub is the real platform; everything goes through its public port."""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from harness import free_port
from pangeohub.hubapi import HubAPI

pytestmark = [
    pytest.mark.platform,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as an unprivileged account"),
]


def remote(platform_url: str, *args: str, token: str | None = None, token_file: str | None = None,
           url: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``pangeohub --hub-url URL ARGS`` as the account nobody, from /, the token in the environment."""
    env = {"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": "/nonexistent", "PANGEOHUB_HUB_URL": url or platform_url}
    if token:
        env["PANGEOHUB_TOKEN"] = token
    argv = ["runuser", "-u", "nobody", "--", sys.executable, "-m", "pangeohub"]
    argv += (["--token-file", token_file] if token_file else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, cwd="/", env=env, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def refused(proc: subprocess.CompletedProcess, *phrases: str) -> str:
    assert proc.returncode == 2, f"{proc.args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and proc.stderr.count("error: ") == 1, proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def admin_token(platform):
    return platform.cli("token", "boss").stdout.strip()


@pytest.fixture(scope="module")
def person(platform):
    """A person with a running server and their own (non-admin) API token."""
    return platform.started_user()


def test_the_state_dir_is_out_of_reach(platform, admin_token):
    # What makes the rest meaningful: the same command without --hub-url cannot see the platform at all.
    proc = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-m", "pangeohub",
                           "--config", str(platform.config_path), "users", "list"],
                          capture_output=True, text=True, cwd="/", env={"PATH": "/usr/sbin:/usr/bin:/bin", "HOME": "/"})
    assert proc.returncode != 0


def test_users_list_add_admin_remove_through_the_hub(platform, admin_token, person):
    name, _ = person
    rows = {row["name"]: row for row in json.loads(ok(remote(platform.url, "users", "list", "--json",
                                                             token=admin_token)))}
    assert rows[name]["server"] == "running" and rows[name]["admin"] is False and rows[name]["last_activity"]
    assert rows["boss"]["admin"] is True

    api = HubAPI(platform.rt)
    ok(remote(platform.url, "users", "add", "rmt-ann", token=admin_token))
    assert api.user("rmt-ann")["admin"] is False
    refused(remote(platform.url, "users", "add", "rmt-ann", token=admin_token), "already has a user")
    ok(remote(platform.url, "users", "admin", "rmt-ann", token=admin_token))
    assert api.user("rmt-ann")["admin"] is True
    ok(remote(platform.url, "users", "admin", "rmt-ann", "--revoke", token=admin_token))
    assert api.user("rmt-ann")["admin"] is False
    ok(remote(platform.url, "users", "remove", "rmt-ann", token=admin_token))
    assert api.user("rmt-ann") is None
    refused(remote(platform.url, "users", "remove", "rmt-ann", token=admin_token), "no user named 'rmt-ann'")


@pytest.fixture
def token_file(admin_token):
    """The admin token in a file the unprivileged account can read (an operator keeps theirs 0600)."""
    folder = Path(tempfile.mkdtemp(prefix="pangeohub-test-token-", dir="/var/tmp"))
    path = folder / "token"
    path.write_text(admin_token + "\n")
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    path.chmod(0o600)
    folder.chmod(0o755)
    yield path
    shutil.rmtree(folder)


def test_token_for_a_person_works_on_the_hub(platform, admin_token, person, token_file):
    name, _ = person
    made = ok(remote(platform.url, "token", name, "--expires-in", "1h", token_file=str(token_file))).strip()
    request = urllib.request.Request(f"{platform.url}/hub/api/user", headers={"Authorization": f"token {made}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["name"] == name
    # With no name: a token for the admin who runs the command.
    mine = ok(remote(platform.url, "token", token=admin_token)).strip()
    request = urllib.request.Request(f"{platform.url}/hub/api/user", headers={"Authorization": f"token {mine}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["name"] == "boss"


def test_clusters_list_and_stop_through_the_hub_proxy(platform, admin_token, person):
    name, token = person
    started = platform.run_code(name, token, (
        "from dask_gateway import Gateway\n"
        "import builtins\n"
        "builtins.kept = Gateway().new_cluster(shutdown_on_close=False)\n"  # outlives this kernel
        "print(builtins.kept.name)\n"))
    assert started.ok, started.stderr
    cluster = started.stdout.strip()
    rows = json.loads(ok(remote(platform.url, "clusters", "list", "--json", token=admin_token)))
    assert {"user": name, "name": cluster} in [{"user": r["user"], "name": r["name"]} for r in rows]
    # The gateway's operator API asks the hub who the token is: a person's own token is not an admin's.
    refused(remote(platform.url, "clusters", "list", token=token), "refused this token", "403")
    ok(remote(platform.url, "clusters", "stop", cluster, token=admin_token))
    rows = json.loads(ok(remote(platform.url, "clusters", "list", "--json", token=admin_token)))
    assert cluster not in [r["name"] for r in rows]


def test_check_passes_remotely_and_leaves_nothing(platform, admin_token):
    report = json.loads(ok(remote(platform.url, "check", "--json", token=admin_token)))
    assert report["ok"], report
    phases = {p["name"]: p for p in report["phases"]}
    assert set(phases) == {"hub", "spawn", "kernel", "imports", "gateway", "stop"}
    assert "worker computed" in phases["gateway"]["detail"]
    assert HubAPI(platform.rt).user(report["user"]) is None
    rows = json.loads(ok(remote(platform.url, "clusters", "list", "--json", token=admin_token)))
    assert report["user"] not in [r["user"] for r in rows]


# -- bad input: one clear line, never a traceback ------------------------------------------------------------
def test_a_hub_that_does_not_answer(platform, admin_token):
    refused(remote(platform.url, "users", "list", token=admin_token, url=f"http://127.0.0.1:{free_port()}"),
            "cannot reach the hub at http://127.0.0.1:", "--hub-url")


def test_a_token_the_hub_refuses(platform):
    refused(remote(platform.url, "users", "list", token="not-a-token"), "refused", "403", "pangeohub token NAME")


def test_a_person_s_token_is_not_an_admin_s(platform, person):
    name, token = person
    refused(remote(platform.url, "users", "list", token=token), f"belongs to user '{name}'", "not an admin")
    refused(remote(platform.url, "check", token=token), "not an admin")


def test_no_token_at_all(platform):
    refused(remote(platform.url, "users", "list"), "needs an admin's API token", "PANGEOHUB_TOKEN")


def test_an_unreadable_token_file(platform):
    refused(remote(platform.url, "users", "list", token_file="/root/no-such-token"), "--token-file", "cannot read")


def test_a_token_file_others_can_read_is_refused_with_the_fix(platform, token_file):
    token_file.chmod(0o640)
    refused(remote(platform.url, "users", "list", token_file=str(token_file)), "readable by others",
            f"chmod 600 {token_file}")


def test_a_redirect_is_not_followed_with_the_token(platform, admin_token):
    """A hub address that redirects elsewhere: the token reaches neither the redirect's target nor anything
    after it, and the error names where it was sent."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            if self.path.startswith("/landing"):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")
                return
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/landing{self.path}")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        refused(remote(platform.url, "users", "list", token=admin_token, url=url),
                "redirect (302)", f"{url}/landing/hub/api/")
    finally:
        server.shutdown()
        server.server_close()
    assert len(seen) == 1 and seen[0], seen  # the token went to the address given, and nowhere after it


def test_plain_http_to_another_machine_is_refused_unless_insecure(platform, admin_token):
    refused(remote(platform.url, "users", "list", token=admin_token, url="http://hub.example.invalid:8000"),
            "in clear", "https://", "--insecure")
    proc = remote(platform.url, "--insecure", "users", "list", token=admin_token, url="http://hub.example.invalid")
    assert "warning: sending the admin token in clear to hub.example.invalid" in proc.stderr
    refused(proc, "cannot reach the hub at http://hub.example.invalid")


def test_not_a_web_address(platform, admin_token):
    refused(remote(platform.url, "users", "list", token=admin_token, url="hub.example.org"), "not a web address")


def test_commands_that_need_the_hub_s_disk_name_the_way(platform, admin_token):
    refused(remote(platform.url, "users", "passwd", "alice", token=admin_token),
            "`pangeohub users passwd alice` cannot act on a remote hub",
            "pangeohub exec kubernetes -- users passwd alice")
    refused(remote(platform.url, "users", "add", "alice", "--password-stdin", token=admin_token),
            "cannot act on a remote hub", "password", "pangeohub exec kubernetes -- users add alice")
    refused(remote(platform.url, "users", "remove", "boss", "--keep-home", token=admin_token),
            "the hub's spawner decides")
    assert HubAPI(platform.rt).user("boss") is not None
    refused(remote(platform.url, "status", token=admin_token), "`pangeohub status` cannot act on a remote hub")
    refused(remote(platform.url, "users", "add", "alice", "--group", "glaciers", token=admin_token),
            "groups are set by the hub's login")
    assert HubAPI(platform.rt).user("alice") is None


def test_the_operator_api_lists_kubernetes_clusters_from_upstream_s_records():
    # No Kubernetes API runs here: KubeBackend keeps upstream's models.Cluster records (from its informer) and
    # pangeohub's backend the workers each asked for; the operator API reads those two, nothing else.
    import asyncio
    import time

    from dask_gateway_server import models

    from pangeohub.gateway.admin import active_rows
    from pangeohub.targets.kubernetes.gateway import PangeoKubeBackend

    config = {"scheduler_cores": 1, "scheduler_memory": 2**30, "worker_cores": 2, "worker_memory": 2**31}
    now = time.time()
    record = models.Cluster(name="c1", username="ana", token="", options={}, config=config,
                            status=models.ClusterStatus.RUNNING, start_time=int((now - 60) * 1000))

    class Informed:  # the two things PangeoKubeBackend holds at run time
        requested = {"c1": 3}

        async def list_clusters(self):
            return [record]

    assert "setup" in PangeoKubeBackend.__dict__  # the Kubernetes backend serves the API too
    [row] = asyncio.run(active_rows(Informed(), now))
    assert row["user"] == "ana" and row["status"] == "RUNNING" and row["workers"] == 3
    assert row["cores"] == 7 and row["memory"] == 7 * 2**30 and 59 <= row["age"] <= 61
