"""Config section for `pangeohub backup` / `restore`: where snapshots go, how often, how many are kept."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from pangeohub.config.base import Section
from pangeohub.units import Duration


class BackupSection(Section):
    destination: Path = Field(
        Path("/var/backups/pangeohub"),
        description="The restic repository `pangeohub backup` writes to (and `restore` reads from) when --to / "
        "--from is not given. Put it on another disk or machine (e.g. a mounted NFS share): a backup on the disk "
        "it protects is lost with that disk.",
    )
    schedule: Duration = Field(
        0, description="Time between automatic backups taken by the running platform, e.g. 1d; 0 turns them off "
        "(run `pangeohub backup` yourself, e.g. from cron).",
    )
    keep: int = Field(
        7, ge=1, description="Snapshots kept after each scheduled backup (the newest ones); older snapshots are "
        "forgotten and their data pruned.",
    )
    scratch: bool = Field(
        True, description="Include the scratch bucket's objects (people's $PANGEO_SCRATCH). They expire after "
        "storage.scratch.expiry anyway; turn this off to keep backups small when scratch holds only disposable "
        "data.",
    )

    @field_validator("destination")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path, e.g. /var/backups/pangeohub")
        return value

    @field_validator("schedule")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if 0 < value < 600:
            raise ValueError("at least 10m between backups (each one reads every home and object), or 0 for none")
        return value
