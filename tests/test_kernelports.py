"""Kernel ports come from the account's own block, outside the ephemeral range (pangeohub.hub.kernelports)."""

import json
import socket

import pytest

from pangeohub.hub import kernelports
from pangeohub.hub.kernelports import BLOCK_SIZE, block_of, choose_ports


@pytest.fixture(autouse=True)
def _forget_handed_out():
    kernelports._handed_out.clear()
    yield
    kernelports._handed_out.clear()


def test_blocks_of_neighbouring_accounts_do_not_overlap_and_stay_below_the_ephemeral_range():
    low, _ = kernelports.ephemeral_range()
    blocks = [set(block_of(uid)) for uid in range(1000, 1000 + kernelports.BLOCKS)]
    assert all(len(block) == BLOCK_SIZE for block in blocks)
    assert len(set().union(*blocks)) == BLOCK_SIZE * kernelports.BLOCKS
    assert max(max(block) for block in blocks) < low
    assert kernelports.usable()


def test_ports_in_use_and_ports_just_handed_out_are_not_chosen():
    uid = 4242
    block = list(block_of(uid))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", block[0]))
        busy.listen()
        first = choose_ports("127.0.0.1", 5, uid=uid, now=0.0)
        assert first == block[1:6]  # the bound port is skipped
        second = choose_ports("127.0.0.1", 5, uid=uid, now=1.0)
        assert not set(first) & set(second)  # a kernel still starting keeps its ports
    # Long after, the ports are free again (the kernel that had them is gone).
    assert choose_ports("127.0.0.1", 5, uid=uid, now=1000.0) == block[:5]


def test_an_exhausted_block_leaves_the_choice_to_upstream():
    uid = 4243
    for step in range(BLOCK_SIZE // 5):
        assert choose_ports("127.0.0.1", 5, uid=uid, now=float(step)) is not None
    assert choose_ports("127.0.0.1", 5, uid=uid, now=10.0) is None


@pytest.mark.platform
def test_a_users_kernel_listens_on_ports_of_that_users_block(platform):
    name, token = platform.started_user()
    result = platform.run_code(name, token, (
        "import json\nfrom ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\n"
        "print(json.dumps([info[k] for k in ('shell_port', 'iopub_port', 'stdin_port', 'hb_port', 'control_port')]))"
    ))
    assert result.ok, result.error
    ports = json.loads(result.stdout)
    assert set(ports) <= set(block_of(platform.system_user(name).pw_uid))
