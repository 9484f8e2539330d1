"""A kernel rewrites its connection file as it starts (ipykernel, whenever the file holds CurveZMQ keys), by
truncating it and writing it again; the server reads the same file right after launching the kernel. Under
load a forked kernel is in the middle of that rewrite often enough: the server must read the file once the
kernel has written it, not fail the person's kernel start."""

import json
import threading
import time

import zmq
from ipykernel.connect import get_connection_info

from pangeohub.hub.kernelmanager import PangeoKernelManager


def _manager(path):
    public, secret = zmq.curve_keypair()
    km = PangeoKernelManager(connection_file=str(path), ip="127.0.0.1", shell_port=50001, iopub_port=50002,
                             stdin_port=50003, hb_port=50004, control_port=50005)
    km.session.key = b"a-session-key"
    km.curve_publickey, km.curve_secretkey = public, secret
    km.write_connection_file()
    return km


def test_ipykernel_rewrites_a_connection_file_that_holds_curve_keys(tmp_path):
    """Why the race exists: ipykernel's own comparison finds the file different from what it would write."""
    km = _manager(tmp_path / "kernel.json")
    written = get_connection_info(km.connection_file, unpack=True)
    its_own = {**written, "curve_publickey": km.curve_publickey, "curve_secretkey": km.curve_secretkey}
    assert dict(written, **its_own) != written


def test_a_connection_file_caught_mid_rewrite_is_read_once_the_kernel_has_written_it(tmp_path):
    km = _manager(tmp_path / "kernel.json")
    info = km.get_connection_info()
    content = (tmp_path / "kernel.json").read_text()
    (tmp_path / "kernel.json").write_text("")  # the kernel has truncated it...

    def kernel_finishes():
        time.sleep(0.3)  # ...and, starved of CPU, writes it a moment later
        (tmp_path / "kernel.json").write_text(content)

    writer = threading.Thread(target=kernel_finishes)
    writer.start()
    try:
        km._reconcile_connection_info(info)
    finally:
        writer.join()
    assert km.get_connection_info() == info
    assert json.loads((tmp_path / "kernel.json").read_text())["shell_port"] == 50001
