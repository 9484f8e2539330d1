"""The ``target:`` config section: where people's servers and Dask clusters run (the execution target).

Only the kind is chosen here; what a target needs beyond that gets its own fields when the target arrives.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pangeohub.config.base import Section

# Kinds `pangeohub up` can run, and kinds named in the docs that this version cannot run yet (with the way on).
AVAILABLE_KINDS = ("local", "kubernetes")
NOT_YET = {
    "slurm": "running servers and clusters as Slurm jobs is not in this version",
}


class TargetSection(Section):
    kind: str = Field(
        "local",
        description="Where people's notebook servers and Dask clusters run. 'local': on this machine, each "
        "person as their own Linux account, with cgroup limits and their home. 'kubernetes': a deployment of the "
        "upstream jupyterhub and dask-gateway charts, made by `pangeohub render kubernetes` and `pangeohub deploy "
        "kubernetes`; `pangeohub up` then refuses to start anything on this machine.",
    )

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in AVAILABLE_KINDS:
            return value
        if value in NOT_YET:
            raise ValueError(f"target kind '{value}' is not available: {NOT_YET[value]}; fix: use kind: local")
        raise ValueError(f"unknown target kind; known: {', '.join(AVAILABLE_KINDS)}")
