"""The kernel forker on its own, without a platform: a kernel it cannot fork is refused with the reason (the
provisioner then starts it the stock way), the forker keeps serving, and a kernel's end is reported."""

import asyncio
import errno
import os
import signal
import socket
import sys

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from pangeohub.targets.local import kernelfork, kernelforker


def _forker_whose_first_fork_fails() -> tuple[int, socket.socket]:
    """A forker process whose first fork fails as it does at a process limit (EAGAIN)."""
    server_end, forker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            server_end.close()
            real_fork, calls = os.fork, []

            def fork():
                calls.append(1)
                if len(calls) == 1:
                    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
                return real_fork()

            os.fork = fork
            code = kernelforker.serve(forker_end)
        finally:
            os._exit(code)
    forker_end.close()
    return pid, server_end


@pytest.mark.skipif(not kernelforker.supported(), reason="this Linux has no pidfd_open (before 5.3)")
def test_a_kernel_the_forker_cannot_fork_is_refused_and_the_next_one_starts(tmp_path):
    pid, control = _forker_whose_first_fork_fails()
    kernelfork.use_forker(control)
    connection_file = tmp_path / "kernel.json"
    write_connection_file(str(connection_file), ip="127.0.0.1")
    cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file)]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(kernelfork.STARTUP_ENV_PREFIXES) and k not in kernelfork.IMPORT_TIME_ENV}
    try:
        with pytest.raises(kernelfork.ForkUnavailable, match="Resource temporarily unavailable"):
            asyncio.run(kernelfork.launch(cmd, env, str(tmp_path)))

        kernel = asyncio.run(kernelfork.launch(cmd, env, str(tmp_path)))
        client = BlockingKernelClient(connection_file=str(connection_file))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            client.execute("x = 6 * 7")
            assert kernel.poll() is None
        finally:
            client.stop_channels()
        kernel.send_signal(signal.SIGKILL)
        assert kernel.wait(timeout=30) == -signal.SIGKILL
    finally:
        kernelfork._forker_gone()
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the forker ended at EOF, as when its server goes
