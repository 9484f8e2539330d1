"""The hub and Slurm agree on which servers run: after every hub (re)start, and for ``pangeohub status``.

A server's job id is in the hub's database (the spawner's state). Jobs of this platform (by their name:
``jobscript.job_name``) that no server of the hub names are orphans: a hub stopped mid-spawn, or a database
restored from before the job. They are cancelled, except the jobs of a person whose spawn is under way (its job
id reaches the database only once the server answers). The other way round, servers whose job is gone, is the
hub's own poll of every server at its start (``SlurmServerJob.poll``): they show as stopped.
"""

from __future__ import annotations

import logging

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm import ends
from pangeohub.targets.slurm.jobscript import hub_user_of

log = logging.getLogger("pangeohub.slurm")


def platform_jobs(rt, client) -> dict:
    """This platform's jobs Slurm knows, by id."""
    return {job_id: job for job_id, job in client.jobs().items() if hub_user_of(rt.config, job.name)}


def cancel_orphans(rt, client) -> list[str]:
    """Cancel this platform's jobs that no server of the hub names; the ids cancelled."""
    from pangeohub.hubapi import HubAPI

    try:
        jobs = platform_jobs(rt, client)
    except PangeoError as err:  # the hub runs on; the next start reconciles
        log.warning("cannot reconcile server jobs with Slurm: %s", err.what)
        return []
    if not jobs:
        return []
    known, spawning = set(), set()
    for user in HubAPI(rt).users():
        for server in (user.get("servers") or {}).values():
            known.add(str((server.get("state") or {}).get("job_id", "")))
            if server.get("pending") == "spawn":
                spawning.add(user["name"])
    orphans = sorted(job_id for job_id, job in jobs.items()
                     if job_id not in known and hub_user_of(rt.config, job.name) not in spawning)
    if orphans:
        client.cancel(*orphans)
        print(f"cancelled Slurm jobs no server of the hub knows: {', '.join(orphans)}", flush=True)
    return orphans


def cluster_status(rt, client) -> dict:
    """Nodes, partitions and this platform's jobs, for ``pangeohub status``; the error instead if Slurm does
    not answer."""
    try:
        out = client.run("sinfo", "--noheader", "--Node", "--format=%N|%t|%P|%c|%m")
        nodes = {}
        for line in out.splitlines():
            fields = line.split("|")
            if len(fields) == 5:
                nodes[fields[0]] = {"state": fields[1], "cpus": fields[3], "memory_mb": fields[4]}
        partitions = {name: {"up": p.available, "nodes": p.nodes, "default": p.default}
                      for name, p in client.partitions().items()}
        jobs = {job_id: {"user": hub_user_of(rt.config, job.name), "account": job.user, "state": job.state,
                         "reason": job.reason, "node": job.node}
                for job_id, job in platform_jobs(rt, client).items()}
    except PangeoError as err:
        return {"error": err.what}
    ended = {}
    if ends.ends_dir(rt.config.state_dir).is_dir():
        for path in sorted(ends.ends_dir(rt.config.state_dir).glob("*.json")):
            entry = ends.last_end(rt.config.state_dir, path.stem)
            if entry:
                ended[path.stem] = entry
    return {"nodes": nodes, "partitions": partitions, "jobs": jobs, "ended_by_slurm": ended}


def format_cluster_status(info: dict) -> list[str]:
    if "error" in info:
        return [f"slurm: {info['error']}"]
    lines = ["slurm nodes: " + ", ".join(f"{name} {node['state']}" for name, node in info["nodes"].items()),
             "slurm partitions: " + ", ".join(f"{name}{'*' if p['default'] else ''} "
                                             f"{'up' if p['up'] else 'DOWN'} ({p['nodes']} nodes)"
                                             for name, p in info["partitions"].items())]
    lines.append(f"slurm jobs of this platform: {len(info['jobs'])}")
    for job_id, job in info["jobs"].items():
        lines.append(f"  {job_id} {job['user']} {job['state']} ({job['reason']}) {job['node'] or '-'}")
    for user, entry in info.get("ended_by_slurm", {}).items():
        lines.append(f"  {user}: {ends.describe(entry)}")
    return lines
