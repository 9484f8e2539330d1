"""Spawn hook: what a notebook server needs for ``Gateway()`` with no arguments, and the user site.

dask-gateway's client reads its address, proxy address and auth type from dask config, which it takes from
``DASK_GATEWAY__*`` variables; the server's own ``JUPYTERHUB_API_TOKEN`` carries the
``access:services!service=dask-gateway`` scope (render/gateway.py adds it to the 'server' role).
"""

from __future__ import annotations

import pwd

from pangeohub.gateway.userenv import usersite_pythonpath
from pangeohub.render.gateway import gateway_client_env


async def gateway_spawn_hook(spawner, account: pwd.struct_passwd) -> dict[str, str]:
    rt = spawner.runtime
    # Kernels too: `pip install --user` works and imports in the notebook as on the workers.
    env = {"PYTHONPATH": usersite_pythonpath(),
           # A LocalCluster in a notebook would otherwise share /tmp/dask-scratch-space with everybody.
           "DASK_TEMPORARY_DIRECTORY": f"{account.pw_dir}/.cache/dask"}
    if rt.config.gateway.enabled:
        env.update(gateway_client_env(rt.target.addresses(), rt.public_url))
    return env
