"""What a Dask scheduler or worker job runs on its compute node, before the Dask process itself.

``python -m pangeohub.targets.slurm.daskjob dask worker ... --host PANGEOHUB_NODE_ADDRESS ...`` puts the node's
own address on the cluster network in place of ``NODE_ADDRESS`` in every argument, then becomes the command.
The gateway submits the job before Slurm has chosen a node, so it cannot write the address itself; without it
upstream binds the scheduler, its API and the worker to 0.0.0.0 (docs/slurm.md, trap 3).
"""

from __future__ import annotations

import os
import sys

from pangeohub.targets.slurm.singleuser import node_address

NODE_ADDRESS = "PANGEOHUB_NODE_ADDRESS"


def main(argv: list[str]) -> None:
    address = node_address()
    command = [arg.replace(NODE_ADDRESS, address) for arg in argv]
    print(f"pangeohub: {os.path.basename(command[0])} {command[1] if len(command) > 1 else ''} on {address} "
          f"(node {os.environ['SLURMD_NODENAME']}, job {os.environ.get('SLURM_JOB_ID')})", flush=True)
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
