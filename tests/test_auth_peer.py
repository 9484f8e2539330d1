"""Whose socket is a client of the hub (pangeohub.auth.peer): only a root socket on this machine is the proxy.

Real sockets: one from root here, one from an ordinary account here, and one from another host (a network
namespace with its own address, as a Slurm compute node is) connecting over a veth pair.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys

import pytest

from pangeohub.auth import peer
from pangeohub.auth.peer import TRUSTED_UID, socket_owner

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes accounts and network namespaces: needs root")


def accepted_from(command: list[str], host: str = "127.0.0.1", bind: str = "127.0.0.1",
                  lookup=socket_owner) -> int | None:
    server = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
    server.bind((bind, 0))
    server.listen()
    server.settimeout(20)
    port = server.getsockname()[1]
    client = subprocess.Popen([*command, sys.executable, "-c",
                               f"import socket, time; s = socket.create_connection(({host!r}, {port})); time.sleep(3)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    try:
        conn, _ = server.accept()
        with conn:
            return lookup(conn.getpeername(), conn.getsockname())
    finally:
        client.kill()
        client.wait()
        server.close()


def table_lookup(peer_address: tuple, local: tuple) -> int | None:
    """The fallback where the kernel has no sock_diag: the socket table in /proc/net."""
    return peer._table_owner(peer._unmapped(peer_address), peer._unmapped(local))


LOOKUPS = pytest.mark.parametrize("lookup", [socket_owner, table_lookup], ids=["sock_diag", "proc-table"])
ADDRESSES = pytest.mark.parametrize("host, bind", [("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
                                                   ("127.0.0.1", "::")], ids=["v4", "v6", "v4-on-dual-stack"])


@LOOKUPS
@ADDRESSES
def test_a_root_socket_on_this_machine_is_trusted(lookup, host, bind):
    assert accepted_from([], host=host, bind=bind, lookup=lookup) == TRUSTED_UID


@LOOKUPS
@ADDRESSES
def test_an_ordinary_accounts_socket_is_not(lookup, host, bind):
    name = f"pe{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--no-create-home", name], check=True, capture_output=True)
    try:
        owner = accepted_from(["runuser", "-u", name, "--"], host=host, bind=bind, lookup=lookup)
        assert owner is not None and owner != TRUSTED_UID
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@LOOKUPS
def test_a_socket_of_another_host_is_not_found_here(lookup):
    """A compute node's connection (even one its root made) has no entry in this machine's socket table."""
    tag = secrets.token_hex(2)
    ns, host_if, node_if = f"pgpeer{tag}", f"pgh{tag}", f"pgn{tag}"
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", node_if)
        run("ip", "link", "set", node_if, "netns", ns)
        run("ip", "addr", "add", "10.213.7.1/24", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", "10.213.7.2/24", "dev", node_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", node_if, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        assert accepted_from(["ip", "netns", "exec", ns], host="10.213.7.1", bind="10.213.7.1",
                             lookup=lookup) is None
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
