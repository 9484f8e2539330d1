"""The object store's process: SeaweedFS in a private network namespace, and its one S3 port on loopback.

Run by the supervisor as ``python -m pangeohub.storage.runner <plan.json>``.

Why a namespace: SeaweedFS's master, volume and filer servers have HTTP and gRPC ports without
authentication. On loopback every local account could reach them, and through them read every object,
rewrite the identities, or drop the whole scratch collection (``/col/delete`` on the master). Inside
``unshare --net`` those ports exist only for SeaweedFS itself. The S3 gateway also listens on a Unix socket
(root-only); this process forwards ``127.0.0.1:<storage.port>`` to it, so S3 with its signature checks is
the only surface people reach. A private /tmp keeps SeaweedFS's gRPC sockets (``/tmp/seaweedfs-*.sock``,
named by port) apart from those of other instances.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Inside the new namespaces: loopback up, private /tmp, then become SeaweedFS.
_NS_SCRIPT = 'ip link set lo up && mount -t tmpfs -o mode=1777,size=64m tmpfs /tmp && exec "$@"'
_CHUNK = 1 << 20
# Seconds SeaweedFS gets to stop after SIGTERM. Its volume server stops within milliseconds, but the filer
# then waits ~15 s in gRPC's graceful stop for metadata subscriptions that never end on their own (its own
# and the S3 gateway's). Every change SeaweedFS acknowledged is already in the kernel by then (volume data
# and index, the filer store's journal are written as they happen, not at exit), so ending it after a short
# grace loses nothing: tests/test_storage_platform.py checks that objects survive restarts, and
# tests/test_faults_services.py that even SIGKILL mid-upload loses no stored object. A longer grace only made
# every `down` and `restart` wait.
STOP_GRACE = 1.0


def log(message: str) -> None:
    print(f"pangeohub objectstore: {message}", flush=True)


def start_weed(plan: dict) -> subprocess.Popen:
    argv = ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", _NS_SCRIPT, "sh",
            *plan["weed"]]
    # Same process group as this runner: the supervisor's SIGTERM to the group reaches SeaweedFS too.
    return subprocess.Popen(argv, env=plan["env"], cwd=plan["cwd"], stdin=subprocess.DEVNULL)


def socket_answers(path: str) -> bool:
    """True once the S3 gateway answers HTTP on its Unix socket."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(path)
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


def run_shell(pid: int, shell_argv: list[str], commands: str, timeout: float = 60) -> str:
    """Run ``weed shell`` commands inside SeaweedFS's namespaces. Output may hold secrets: callers never log it."""
    proc = subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *shell_argv], input=commands,
                          capture_output=True, text=True, timeout=timeout)
    return proc.stdout + proc.stderr


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass


async def forward(port: int, unix_path: str, weed: subprocess.Popen, quota_plan: dict | None = None,
                  hosts: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """Forward the S3 port (on each of ``hosts``) to SeaweedFS's socket; with a scratch quota, through its
    request check."""
    quota = None
    if quota_plan and quota_plan["quota"] > 0:
        from pangeohub.storage.quota import AdminStore, ScratchQuota

        store = AdminStore(f"http://127.0.0.1:{port}", quota_plan["admin_key"], quota_plan["admin_secret"])
        quota = ScratchQuota(quota_plan["bucket"], quota_plan["quota"], quota_plan["credentials_dir"],
                             quota_plan["admin_key"], store)

    async def handle(client_r, client_w):
        try:
            up_r, up_w = await asyncio.open_unix_connection(unix_path, limit=_CHUNK)
        except OSError:
            client_w.close()
            return
        if quota is None:
            await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))
        else:
            from pangeohub.storage.quota import relay_requests

            await asyncio.gather(relay_requests(client_r, up_w, client_w, quota, _CHUNK), _pipe(up_r, client_w))
        for writer in (up_w, client_w):
            writer.close()

    server = await asyncio.start_server(handle, list(hosts), port, limit=_CHUNK, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log(f"S3 endpoint ready on {', '.join(hosts)} port {port}")
    async with server:
        while not stop.is_set() and weed.poll() is None:
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    return weed.poll() if weed.poll() is not None else 0


def stop_weed(weed: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    if weed.poll() is None:
        weed.terminate()
        try:
            weed.wait(grace)
        except subprocess.TimeoutExpired:
            weed.kill()
            weed.wait()


def main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    sock = plan["s3_socket"]
    Path(sock).unlink(missing_ok=True)
    weed = start_weed(plan)
    Path(plan["weed_pid"]).write_text(f"{weed.pid}\n")
    try:
        deadline = time.monotonic() + plan["start_timeout"]
        while not socket_answers(sock):
            if weed.poll() is not None:
                log(f"SeaweedFS exited with code {weed.returncode} while starting")
                return weed.returncode or 1
            if time.monotonic() > deadline:
                log("SeaweedFS did not answer on its S3 socket in time")
                return 1
            time.sleep(0.2)
        output = run_shell(weed.pid, plan["shell"], plan["setup"])
        log("setup: " + " | ".join(line.strip() for line in output.splitlines() if line.strip())[:2000])
        if plan.get("metrics_socket"):
            from pangeohub.storage.metrics_relay import start_relay

            start_relay(weed.pid, plan["metrics_port"], plan["metrics_socket"], log)
        code = asyncio.run(forward(plan["port"], sock, weed, plan.get("scratch_quota"),
                                   tuple(plan.get("hosts", ["127.0.0.1"]))))
        return code
    finally:
        stop_weed(weed)
        Path(plan["weed_pid"]).unlink(missing_ok=True)
        if plan.get("metrics_socket"):
            Path(plan["metrics_socket"]).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
