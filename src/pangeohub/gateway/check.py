"""``check_gateway``: the end-to-end proof that Dask Gateway works for a person, run in their own kernel."""

from __future__ import annotations

import json

from pangeohub.usersim import SimError, UserSim

CHECK_CODE = r"""
import json, time
from dask_gateway import Gateway
started = time.perf_counter()
with Gateway() as gateway:
    with gateway.new_cluster() as cluster:
        cluster.scale(1)
        with cluster.get_client() as client:
            client.wait_for_workers(1, timeout=120)
            total = client.submit(sum, range(1001)).result()
            workers = len(client.scheduler_info()["workers"])
        name = cluster.name
print(json.dumps({"name": name, "total": total, "workers": workers,
                  "seconds": round(time.perf_counter() - started, 1)}))
"""


async def check_gateway(sim: UserSim) -> str:
    """Through ``sim``'s kernel (logged in, server running): start a 1-worker cluster, compute, shut it down."""
    out = await sim.run(CHECK_CODE, timeout=300)
    if not out.ok:
        raise SimError(f"Dask Gateway check failed for {sim.username}: {out.error}\n{out.stderr[-1500:]}")
    try:
        report = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SimError(f"Dask Gateway check printed no result: {out.stdout[-500:]!r} {out.stderr[-500:]!r}") from None
    if report["total"] != 500500 or report["workers"] != 1:
        raise SimError(f"Dask Gateway check computed a wrong result: {report}")
    return (f"dask gateway: cluster {report['name'][:12]} with {report['workers']} worker computed "
            f"sum(range(1001))={report['total']} in {report['seconds']}s")
