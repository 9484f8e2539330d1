"""What a child of the fork server does, in order, to become one user's single-user server.

The order is the point. As root: leave the fork server's session, check the caller is root, read the request,
replace every inherited fd, enter the user's cgroup, set resource limits and umask. Then drop groups, gid and
uid (all of real, effective and saved) and check that no capability survived. Only then: replace the
environment, enter the home directory and start the server, which is the first thing to read a file the user
can write (``~/.jupyter``). A server with fast kernels first, still as root, asks the fork server's kernel
template for a kernel forker made from the same request (``run_forker``: the same steps, then
``kernelforker``). Anything that fails before the drop is reported to the hub and the child exits.

Wire format (see ``pangeohub.targets.local.fastspawn``): a 4-byte length sent together with the hub's stdout and stderr
(SCM_RIGHTS), then that many bytes of JSON; the child answers one JSON line, ``{"pid": n}`` or
``{"error": "..."}``. A kernel template's child gets the same, with a third fd: its end of the socket pair
it will serve the server on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

from pangeohub.targets.local.program import run_as_program, set_title

HEADER = struct.Struct("!I")
MAX_REQUEST = 1 << 20
_CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapAmb")

# Per-user CPU and memory limits come from the resources feature (enter_cgroup_files). Looked up once, in the
# fork server, so that children never import anything after the fork; absent, the hook does nothing.
_enter_user_cgroup = None
# Where the fork server's kernel template listens (``forkserver``); None (no template, or a Linux without
# pidfds, which the forker needs): servers start kernels the stock way.
_kernel_template: str | None = None


def prepare(kernel_template: str | None = None) -> None:
    """Run once in the fork server: import what the child needs before it has dropped privileges."""
    global _enter_user_cgroup, _kernel_template
    _kernel_template = kernel_template
    import ctypes  # noqa: F401  (prctl, below)
    import grp  # noqa: F401
    import pwd  # noqa: F401
    import resource  # noqa: F401

    try:
        import setproctitle

        # Claims the argv/environ area now, while environ is still the one the process started with: a child
        # that has replaced its environment could no longer find the area, and keep the fork server's title.
        setproctitle.setproctitle(setproctitle.getproctitle())
    except ImportError:
        pass
    try:
        from pangeohub.targets.local.cgroups import enter_cgroup_files
    except ImportError:
        enter_cgroup_files = None
    _enter_user_cgroup = enter_cgroup_files


def run(conn: socket.socket) -> int:
    """The child's whole life; returns its exit code (the caller ends in os._exit)."""
    became = _become(conn, extra_fds=0, before_enter=_kernel_forker)
    if became is None:
        return 1
    request, _, forker = became
    if forker is not None:
        from pangeohub.targets.local import kernelfork

        kernelfork.use_forker(forker)
    return _serve(request["argv"])


def run_forker(conn: socket.socket) -> int:
    """A child of the kernel template: become the person of the request, then their server's kernel forker."""
    became = _become(conn, extra_fds=1)
    if became is None:
        return 1
    _, (control,), _ = became
    from pangeohub.targets.local import kernelforker

    return kernelforker.serve(socket.socket(fileno=control))


def run_dask(conn: socket.socket) -> int:
    """A child of the Dask template: become the person of the request, then their scheduler or worker."""
    became = _become(conn, extra_fds=0)
    if became is None:
        return 1
    from pangeohub.targets.local import daskfork

    return daskfork.run(became[0])


def _become(conn: socket.socket, extra_fds: int, before_enter=None):
    """Read the request and become its user, in the module's order; answer the caller with our pid.

    Returns (request, the extra fds, what ``before_enter(request, body)`` returned), or None once the error
    has been sent."""
    _reset_signals()
    os.setsid()  # not in the fork server's process group: stopping that must not stop user servers
    try:
        request, body, extra = _receive(conn, extra_fds)
        prepared = before_enter(request, body) if before_enter else None
        enter(request)
    except Exception as exc:
        _reply(conn, {"error": f"{type(exc).__name__}: {exc}"})
        return None
    _reply(conn, {"pid": os.getpid()})
    conn.close()
    return request, extra, prepared


def _kernel_forker(request: dict, body: bytes) -> socket.socket | None:
    """Ask the kernel template for a kernel forker made from the same request; returns the server's end of
    their socket pair, or None (the server then starts its kernels the stock way; the log says why)."""
    if not request.get("fast_kernels") or _kernel_template is None:
        return None
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(_kernel_template)
            socket.send_fds(sock, [HEADER.pack(len(body))], [1, 2, theirs.fileno()])
            sock.sendall(body)
            reply = sock.makefile("rb").readline()
        answer = json.loads(reply or b"{}")
        if "pid" not in answer:
            raise RuntimeError(answer.get("error", "no answer"))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"forkchild: no kernel forker, kernels will start as fresh processes: {exc}", file=sys.stderr)
        mine.close()
        return None
    finally:
        theirs.close()
    return mine


def _reset_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _receive(conn: socket.socket, extra_fds: int) -> tuple[dict, bytes, list[int]]:
    """The request, its raw bytes and the fds after stdout/stderr, once every other fd is closed."""
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid != 0:
        raise PermissionError(f"request from uid {uid}: only root (the hub) may start servers")
    header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 2 + extra_fds)
    if len(header) != HEADER.size or len(fds) != 2 + extra_fds:
        raise ValueError("malformed request header")
    (size,) = HEADER.unpack(header)
    if size > MAX_REQUEST:
        raise ValueError(f"request of {size} bytes")
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    extra = [os.dup(fd) for fd in fds[2:]]  # above 2, whatever numbers they came with
    _replace_fds(fds[:2], keep={conn.fileno(), *extra})
    return json.loads(body), bytes(body), extra


def _replace_fds(log_fds: list[int], keep: set[int]) -> None:
    """stdin from /dev/null, stdout/stderr to the hub's log (as a stock spawn inherits them), nothing else."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fds[0], 1)
    os.dup2(log_fds[1], 2)
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the directory's own fd, already gone
                pass


def enter(request: dict) -> None:
    """Become the user, in the order the module docstring gives. Raises if any step does not hold."""
    import pwd
    import resource

    entry = pwd.getpwnam(request["user"])
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise PermissionError(f"refusing to start a server as {entry.pw_name} (uid {entry.pw_uid})")
    gids = sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid)) - {0})

    if _enter_user_cgroup is not None:
        _enter_user_cgroup(pid=os.getpid(), **request.get("cgroup", {}))
    for name, (soft, hard) in request.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    os.umask(int(request.get("umask", 0o022)))

    os.setgroups(gids)
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    _check_dropped(entry, gids)

    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(entry.pw_dir)
    set_title(" ".join(request["argv"]))


def _check_dropped(entry, gids: list[int]) -> None:
    if os.getresuid() != (entry.pw_uid,) * 3 or os.getresgid() != (entry.pw_gid,) * 3:
        raise PermissionError("uid/gid not fully dropped")
    if not set(os.getgroups()) <= set(gids) | {entry.pw_gid}:
        raise PermissionError(f"supplementary groups not dropped: {os.getgroups()}")
    with open("/proc/self/status") as status:
        caps = {k: v.strip() for k, v in (line.split(":", 1) for line in status) if k in _CAP_FIELDS}
    if any(int(value, 16) for value in caps.values()):
        raise PermissionError(f"capabilities survived the uid change: {caps}")


def _reply(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def _serve(argv: list[str]) -> int:
    """Run the single-user server as ``jupyterhub-singleuser`` would."""
    sys.argv = list(argv)

    def main():
        from jupyterhub.singleuser import main

        main()

    return run_as_program(main)
