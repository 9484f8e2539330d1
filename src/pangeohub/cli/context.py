"""Global CLI options and the lazily-built Runtime they describe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pangeohub.config import config_path, load_config
from pangeohub.runtime import Runtime


@dataclass
class CliState:
    config_file: str | None = None
    debug: bool = False
    _runtime: Runtime | None = None

    def runtime(self) -> Runtime:
        if self._runtime is None:
            path = config_path(self.config_file)
            self._runtime = Runtime(
                config=load_config(self.config_file),
                config_file=Path(path).resolve() if path else None,
                debug=self.debug,
            )
        return self._runtime


state = CliState()
