"""Fast kernels, server side: a forked server asks its kernel forker (``kernelforker``) for its kernels.

Why: a stock kernel is a fresh ``python -m ipykernel_launcher``, which spends most of its start importing
ipykernel, IPython, pyzmq and the debugger (~0.3 CPU-s on an idle machine, several times that in a
workshop's first minute, when every kernel starts at once). Forked from a process that has imported them,
a kernel starts in ~0.07 CPU-s.

Each forked server gets one kernel forker, made while the server is forked (``forkchild``), running as the
same person in the same cgroup. Only the server can ask it for a kernel: requests travel on a socket pair
(no path, no port) whose end the server's other children (Popen'd terminals and kernels) never inherit.

Protocol: one SOCK_SEQPACKET message per kernel, JSON ``{"argv", "env", "cwd"}``, with one end of a new
socket pair attached (SCM_RIGHTS). On that socket the forker answers ``{"pid": n}`` and, once the kernel has
exited and been reaped, ``{"exit": code}``. EOF on the control socket (the server is gone) ends the forker;
its kernels then see their parent change and exit, as Popen'd kernels do when their server dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

from pangeohub.hub.kernelports import BlockPortProvisioner

# Variables read as a fresh interpreter starts, or as the forker's preloaded modules are imported (found by
# scanning them for module- and class-level reads): a kernel whose environment sets them, other than
# PYTHONPATH (which the forker rebuilds), starts fresh.
STARTUP_ENV_PREFIXES = ("PYTHON", "LD_", "PYDEVD")
IMPORT_TIME_ENV = ("JUPYTER_ALLOW_INSECURE_WRITES", "IPYTHON_SUPPRESS_CONFIG_ERRORS",
                   "TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR", "TORNADO_EXTENSION", "TORNADO_NO_EXTENSION")

_control: socket.socket | None = None  # this server's end; None where it has no forker


class ForkUnavailable(Exception):
    """This kernel cannot be forked; upstream's Popen can start it."""


# -- in the server -----------------------------------------------------------------------------------------
def use_forker(control: socket.socket) -> None:
    """Called by ``forkchild`` in a forked server whose kernel forker is running."""
    global _control
    _control = control


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
    """The forker died (it should not): every later kernel starts the stock way."""
    global _control
    if _control is not None:
        _control.close()
        _control = None


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
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                while b"\n" not in self._buffer:
                    chunk = await loop.sock_recv(self.sock, 4096)
                    if not chunk:
                        raise ForkUnavailable("the kernel forker closed the connection")
                    self._buffer += chunk
        except TimeoutError:
            _forker_gone()  # a forker that does not answer in this time will not be asked again
            raise ForkUnavailable(f"the kernel forker did not answer in {timeout:.0f} s") from None
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

    def _read(self, timeout: float | None) -> None:
        """Take what the forker sent, waiting up to ``timeout`` seconds (0: not at all; None: until it says)."""
        if self.returncode is not None:
            return
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(4096)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            chunk = b""
        if chunk:
            self._buffer += chunk
            self._take()
        elif self.returncode is None:  # the forker is gone without a word: so is its kernel (see module)
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("kernel", timeout)
            self._read(left)
        self.sock.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


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
