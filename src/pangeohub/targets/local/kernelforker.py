"""The kernel forker: one process per forked server, as the person, that forks one child per kernel.

Forked from the fork server's kernel template (``forkserver``), which has imported what a Python kernel
imports as it starts (ipykernel, IPython, pyzmq, the debugger) and nothing else: no server, no dask, no
numpy, so a kernel finds the same modules loaded as a fresh one would, only sooner. It becomes the person the
way a forked server does (``forkchild.run_forker``: cgroup, limits, groups, uid, environment), then serves
its server alone, on the socket pair the server made (see ``kernelfork`` for the protocol).

Each child rebuilds what a fresh ``python -m ipykernel_launcher`` computes from its command line,
environment and working directory as it starts: ``sys.path`` (working directory, ``PYTHONPATH``, the user
site through the platform's ``sitecustomize``), ``sys.flags``, ``sys.argv``/``orig_argv``, the time zone,
the temporary directory, a session of its own, default signal handlers. ``kernelfork.check_applies`` sends
every kernel it could not rebuild this way to upstream's Popen instead.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys

from pangeohub.targets.local.program import as_fresh_interpreter, run_as_program, set_title

MAX_MESSAGE = 1 << 20
# Modules that read the kernel's environment when they are imported (ipykernel.kernelapp: JPY_PARENT_PID):
# not preloaded, and dropped here should anything have imported them, so that each kernel imports its own.
IMPORTED_PER_KERNEL = ("ipykernel.kernelapp",)
# What importing the preloaded modules writes into a kernel's environment (debugpy's ``force_pydevd``): a
# forked kernel did not import them, so it gets the result here.
IMPORT_TIME_ENV_WRITES = {"PYDEVD_USE_FRAME_EVAL": "NO"}


def supported() -> bool:
    """Waiting for many children in one loop takes pidfds (Linux 5.3)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def serve(control: socket.socket) -> int:
    """The forker's life: fork a kernel per request on ``control``, report their ends; returns at EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is for the server; EOF ends us
    set_title("pangeohub-kernel-forker")
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                try:
                    message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE, 1)
                except OSError:
                    return 0
                if not message:
                    return 0
                if len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    continue
                conn = socket.socket(fileno=fds[0])
                try:
                    _start_kernel(json.loads(message), conn, selector)
                except (OSError, ValueError) as exc:  # no fork (process limit), a garbled request: say so
                    _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
                    conn.close()
            else:
                _reap(key, selector)


def _start_kernel(request: dict, conn: socket.socket, selector) -> None:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Every fd of the forker (control socket, other kernels' sockets and pidfds) is the forker's.
            for key in list(selector.get_map().values()):
                if key.data is None:
                    key.fileobj.close()
                else:
                    os.close(key.fd)
                    key.data[1].close()
            selector.close()
            conn.close()
            code = _run_kernel(request)
        finally:
            os._exit(code)
    pidfd = os.pidfd_open(pid)  # before the kernel can have been reaped by anyone: it is our child
    selector.register(pidfd, selectors.EVENT_READ, (pid, conn))
    _send(conn, {"pid": pid})


def _reap(key, selector) -> None:
    pid, conn = key.data
    selector.unregister(key.fileobj)
    os.close(key.fileobj)
    _, status = os.waitpid(pid, 0)
    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
    conn.close()


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the server no longer listens for this kernel


def _run_kernel(request: dict) -> int:
    """Become ``python -m ipykernel_launcher ...`` as the command line, environment and cwd say."""
    import runpy

    os.setsid()  # as upstream's start_new_session: interrupts go to the kernel's own process group
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    argv, env, cwd = request["argv"], dict(request["env"]), request["cwd"]
    env["JPY_PARENT_PID"] = str(os.getppid())  # ipykernel exits when its parent (this forker) goes
    for name, value in IMPORT_TIME_ENV_WRITES.items():
        env.setdefault(name, value)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    _as_fresh_interpreter(argv, env, cwd)
    set_title(" ".join(argv))
    sys.argv = [argv[0], *argv[3:]]  # run_module puts the launcher's path in argv[0], as ``-m`` does
    return run_as_program(lambda: runpy.run_module(argv[2], run_name="__main__", alter_sys=True))


def _as_fresh_interpreter(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """What a fresh ``python -m ipykernel_launcher`` computes as it starts (``program.as_fresh_interpreter``),
    plus the kernel's own: modules that read the environment when imported, and jupyter_client's session
    user name."""
    for name in IMPORTED_PER_KERNEL:
        package, _, child = name.rpartition(".")
        sys.modules.pop(name, None)
        if package in sys.modules and hasattr(sys.modules[package], child):
            delattr(sys.modules[package], child)
    _set_class_default("jupyter_client.session", "Session", "username", os.environ.get("USER", "username"))
    as_fresh_interpreter(argv, env, cwd)


def _set_class_default(module: str, cls_name: str, trait: str, value) -> None:
    """Give a traitlets class the default it computes from the environment when it is defined (upstream
    ``Session.username`` is ``$USER`` at import), as if it had been defined in this kernel."""
    cls = getattr(sys.modules.get(module), cls_name, None)
    if cls is None:
        return
    cls.class_traits()[trait].default_value = value
    cached = getattr(cls, "_static_immutable_initial_values", {})  # traitlets' per-class fast path
    if trait in cached:
        cached[trait] = value
