"""What a server job runs on its compute node, before the server itself (batchspawner-singleuser's part).

``python -m pangeohub.targets.slurm.singleuser jupyterhub-singleuser ARGS...`` finds the node's own address on
the cluster network (its NodeAddr, as the hub maps the node's name: the two agree by construction), picks a
free port there, tells the hub the port (batchspawner's ``/api/batchspawner``, registered in the hub by the
spawner's import) and becomes the server, bound to that address only: never 0.0.0.0 (docs/slurm.md, trap 3).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from urllib.parse import urlparse, urlunparse

from pangeohub.targets.slurm.client import SlurmClient, parse_scontrol


def node_address() -> str:
    node = os.environ["SLURMD_NODENAME"]
    client = SlurmClient(os.environ["SLURM_CONF"], timeout=30)
    addr = parse_scontrol(client.run("scontrol", "--oneliner", "show", "node", node)).get("NodeAddr") or node
    return socket.gethostbyname(addr)


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def tell_hub(port: int) -> None:
    request = urllib.request.Request(
        os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner", data=json.dumps({"port": port}).encode(),
        method="POST", headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}",
                                "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def main(argv: list[str]) -> None:
    address = node_address()
    port = free_port(address)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    os.environ["JUPYTERHUB_SERVICE_URL"] = urlunparse(url._replace(netloc=f"{address}:{port}"))
    print(f"pangeohub: server of {os.environ.get('JUPYTERHUB_USER')} on {address}:{port} "
          f"(node {os.environ['SLURMD_NODENAME']}, job {os.environ.get('SLURM_JOB_ID')})", flush=True)
    tell_hub(port)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
