"""What every config section shares: strict validation, and the rules for names and ports."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

# A Linux account name: what useradd accepts by default on Debian, minus the rarely wanted '$' suffix.
LINUX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]*$")
LINUX_NAME_MAX = 32

Port = int


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True)


def check_port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port (0-65535)")
    return value
