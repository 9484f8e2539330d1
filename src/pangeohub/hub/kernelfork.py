"""Fast kernels: a forked server's kernels are forked from a process that has imported ipykernel already.

Why: a stock kernel is a fresh ``python -m ipykernel_launcher``, which spends most of its start importing
ipykernel, IPython, pyzmq and the debugger (~0.3 CPU-s on an idle machine, several times that in a
workshop's first minute, when every kernel starts at once). The fork server has imported them already
(see ``forkserver.PRELOAD``); a forked server keeps one more process, its *kernel forker*, which it forks
before it starts serving, and which forks one child per kernel. That child is a fresh kernel in all but the
imports: ~0.1 CPU-s.

What a forked kernel gets, and why it is the same kernel:
- The forker is the server's own child, forked as the user after every step of ``forkchild.enter`` (cgroup,
  limits, uid): kernels inherit exactly what a Popen'd kernel inherits from the server.
- Only the server can ask: requests arrive on a socketpair made before the fork (no path, no port), and the
  server's other children (Popen'd terminals and kernels) never inherit its end.
- The child rebuilds what a fresh interpreter would have computed from the kernel's environment, working
  directory and command line: ``sys.path`` (working directory, ``PYTHONPATH``, the user site through the
  platform's ``sitecustomize``), ``sys.flags``, ``sys.argv``/``orig_argv``, the time zone, the temporary
  directory, its own session, default signal handlers and a fresh environment. Whatever it cannot rebuild (a
  different Python, another kernel, variables that change how Python starts) goes through upstream's Popen.

Protocol: the server sends one SOCK_SEQPACKET message per kernel, JSON ``{"argv", "env", "cwd"}``, with one
end of a new socketpair attached (SCM_RIGHTS). On that socket the forker answers ``{"pid": n}`` and, once the
kernel has exited and been reaped, ``{"exit": code}``. EOF on the control socket (the server is gone) ends
the forker; its kernels then see their parent change and exit, as Popen'd kernels do when their server dies.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import namedtuple

from pangeohub.hub.kernelports import BlockPortProvisioner

MAX_MESSAGE = 1 << 20
# Variables read as a fresh interpreter starts, or as the preloaded modules are imported (found by scanning
# them for module- and class-level reads): a kernel whose environment sets them, other than PYTHONPATH
# (rebuilt here), starts fresh.
STARTUP_ENV_PREFIXES = ("PYTHON", "LD_", "PYDEVD")
IMPORT_TIME_ENV = ("JUPYTER_ALLOW_INSECURE_WRITES", "IPYTHON_SUPPRESS_CONFIG_ERRORS",
                   "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR", "TORNADO_EXTENSION", "TORNADO_NO_EXTENSION")
# Modules that read the kernel's environment when they are imported: each kernel imports them itself.
IMPORTED_PER_KERNEL = ("ipykernel.kernelapp",)
# What importing the preloaded modules writes into a kernel's environment (debugpy's ``force_pydevd``): a
# forked kernel did not import them, so it gets the result here.
IMPORT_TIME_ENV_WRITES = {"PYDEVD_USE_FRAME_EVAL": "NO"}

_control: socket.socket | None = None  # the server's end; None where this process has no forker
_forker_pid: int | None = None


class ForkUnavailable(Exception):
    """This kernel cannot be forked; upstream's Popen can start it."""


# -- in the server -----------------------------------------------------------------------------------------
def start_forker() -> bool:
    """Fork the kernel forker from the current process (a forked server, as the user, before it serves)."""
    global _control, _forker_pid
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # kernel before 5.3: no way to wait for many children in one loop
        return False
    server_end, forker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            server_end.close()
            code = _forker(forker_end)
        finally:
            os._exit(code)
    forker_end.close()
    _control, _forker_pid = server_end, pid
    return True


def available() -> bool:
    return _control is not None


def check_applies(cmd: list[str], env: dict[str, str]) -> None:
    """Raise ForkUnavailable unless a fork gives the same kernel as ``Popen(cmd, env=env)``."""
    if _control is None:
        raise ForkUnavailable("this server has no kernel forker")
    if cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]:
        raise ForkUnavailable(f"not this Python's ipykernel: {cmd[:3]}")
    startup = sorted(k for k in env if (k.startswith(STARTUP_ENV_PREFIXES) and k != "PYTHONPATH")
                     or k in IMPORT_TIME_ENV)
    if startup:
        raise ForkUnavailable(f"environment sets {', '.join(startup)}")


async def launch(cmd: list[str], env: dict[str, str], cwd: str) -> ForkedKernel:
    """Ask the forker for a kernel; returns a Popen-like handle once it runs."""
    check_applies(cmd, env)
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        message = json.dumps({"argv": cmd, "env": env, "cwd": str(cwd)}).encode()
        try:
            socket.send_fds(_control, [message], [theirs.fileno()])
        except OSError as exc:
            _forker_gone()
            raise ForkUnavailable(f"kernel forker not answering: {exc}") from None
    finally:
        theirs.close()
    kernel = ForkedKernel(mine)
    await kernel.started()
    return kernel


def _forker_gone() -> None:
    """The forker died (it should not): collect it, and start every later kernel the stock way."""
    global _control, _forker_pid
    if _control is not None:
        _control.close()
        _control = None
    if _forker_pid is not None:
        try:
            os.waitpid(_forker_pid, os.WNOHANG)
        except ChildProcessError:
            pass
        _forker_pid = None


class ForkedKernel:
    """What jupyter_client's LocalProvisioner needs of a ``subprocess.Popen``, for a kernel the forker made.

    The kernel is the forker's child, not ours: the forker reaps it and sends its exit code on ``sock``."""

    stdin = stdout = stderr = None

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pid: int | None = None
        self.returncode: int | None = None
        self._error: str | None = None
        self._buffer = b""

    async def started(self, timeout: float = 30.0) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        async with asyncio.timeout(timeout):
            while b"\n" not in self._buffer:
                chunk = await loop.sock_recv(self.sock, 4096)
                if not chunk:
                    raise ForkUnavailable("the kernel forker closed the connection")
                self._buffer += chunk
        self._take()
        if self.pid is None:
            raise ForkUnavailable(f"the kernel forker could not start the kernel: {self._error}")

    def _take(self) -> None:
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            answer = json.loads(line)
            self._error = answer.get("error")
            if "pid" in answer:
                self.pid = answer["pid"]
            if "exit" in answer:
                self.returncode = answer["exit"]

    def _read(self, block: bool) -> None:
        if self.returncode is not None:
            return
        self.sock.setblocking(block)
        try:
            chunk = self.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._buffer += chunk
            self._take()
        elif self.returncode is None:  # the forker is gone without a word: so is its kernel (see module)
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        self._read(block=False)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired("kernel", timeout)
                self.sock.settimeout(left)
            try:
                self._read(block=True)
            except TimeoutError:
                continue
        self.sock.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# -- in the forker -----------------------------------------------------------------------------------------
def _forker(control: socket.socket) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is for the server; EOF ends us
    _set_title("pangeohub-kernel-forker")
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
                _start_kernel(json.loads(message), socket.socket(fileno=fds[0]), control, selector)
            else:
                _reap(key, selector)


def _start_kernel(request: dict, conn: socket.socket, control: socket.socket, selector) -> None:
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
    pidfd = os.pidfd_open(pid)
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


# -- in the kernel -----------------------------------------------------------------------------------------
def _run_kernel(request: dict) -> int:
    """Become ``python -m ipykernel_launcher ...`` as the command line, environment and cwd say."""
    import atexit
    import runpy
    import threading

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
    _set_title(" ".join(argv))
    code = 0
    sys.argv = [argv[0], *argv[3:]]  # run_module puts the launcher's path in argv[0], as ``-m`` does
    try:
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        threading._shutdown()  # what the interpreter does at exit: wait for non-daemon threads,
        atexit._run_exitfuncs()  # then the exit handlers (ipykernel flushes its output there)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


def _as_fresh_interpreter(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """Redo what Python computes at startup from its environment, for ``argv`` in ``cwd``.

    The forker descends from the fork server, started as ``python -I`` (no PYTHONPATH, no user site, no
    current directory); a kernel started by Popen is a plain ``python -m``."""
    import importlib
    import site
    import tempfile

    base = [path for path in sys.path if path]  # -I: the interpreter's own dirs and the platform's packages
    extra = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
    sys.path[:] = [cwd, *extra, *base]
    sys.flags = _plain_flags()
    sys.orig_argv = list(argv)
    site.USER_BASE = site.USER_SITE = None  # computed from HOME when first asked for, as at startup
    tempfile.tempdir = None  # likewise from TMPDIR
    time.tzset()
    importlib.invalidate_caches()
    for name in IMPORTED_PER_KERNEL:
        package, _, child = name.rpartition(".")
        sys.modules.pop(name, None)
        if package in sys.modules and hasattr(sys.modules[package], child):
            delattr(sys.modules[package], child)
    _set_class_default("jupyter_client.session", "Session", "username", os.environ.get("USER", "username"))
    sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")  # a fresh start imports it from PYTHONPATH, if there
    except ImportError:
        pass
    try:
        import ctypes

        # The forker is not dumpable (it changed uid as root); an exec'd kernel would be. Nothing of root's
        # is in this memory (the fork server reads no secret), so the person may debug their own kernel.
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


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


def _plain_flags():
    """``sys.flags`` as a plain ``python -m`` has them (code such as multiprocessing passes them on)."""
    names = sys.flags.__match_args__
    flags = namedtuple("flags", names)(*sys.flags)
    return flags._replace(isolated=0, ignore_environment=0, no_user_site=0, safe_path=False)


def _set_title(title: str) -> None:
    try:
        from setproctitle import setproctitle

        setproctitle(title)
    except ImportError:
        pass


# -- the provisioner ---------------------------------------------------------------------------------------


class PangeoProvisioner(BlockPortProvisioner):
    """Kernels on the account's own ports (BlockPortProvisioner), forked by the server's kernel forker where
    that gives the same kernel; upstream's Popen everywhere else (the log says why)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        env = kwargs.get("env") or dict(os.environ)
        cwd = kwargs.get("cwd") or os.getcwd()
        if available():
            try:
                self.process = await launch(cmd, env, cwd)
            except ForkUnavailable as why:
                self.log.info("Starting kernel as a fresh process: %s", why)
            else:
                self.pid = self.pgid = self.process.pid
                self.cwd = cwd
                return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)
