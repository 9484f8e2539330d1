"""Global CLI options and the lazily-built Runtime (or remote hub) they describe."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pangeohub.config import config_path, load_config
from pangeohub.services.runtime import Runtime


@dataclass
class CliState:
    config_file: str | None = None
    debug: bool = False
    hub_url: str | None = None
    token: str | None = None
    token_file: str | None = None
    insecure: bool = False
    _runtime: Runtime | None = None
    _remote: object = None

    def runtime(self) -> Runtime:
        if self.hub_url:
            # Every command that needs this machine's platform comes here: with --hub-url it is refused, by
            # name, rather than quietly acting on a local state dir the operator did not mean.
            from pangeohub.remote import not_remote

            raise not_remote(" ".join(command_words(sys.argv[1:])))
        if self._runtime is None:
            path = config_path(self.config_file)
            self._runtime = Runtime(
                config=load_config(self.config_file),
                config_file=Path(path).resolve() if path else None,
                debug=self.debug,
            )
        return self._runtime

    def remote(self):
        """The remote hub (``pangeohub.remote.RemoteHub``) with --hub-url, else None (this machine's hub)."""
        if not self.hub_url:
            return None
        if self._remote is None:
            from pangeohub.remote import connect

            self._remote = connect(self.hub_url, self.token, self.token_file, self.insecure)
        return self._remote


GLOBAL_WITH_VALUE = {"--config", "-c", "--hub-url", "--token", "--token-file"}


def command_words(argv: list[str]) -> list[str]:
    """The command as typed, without the global options before it (a token given there is not repeated)."""
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in GLOBAL_WITH_VALUE and rest:
            rest.pop(0)
    return rest


state = CliState()


def account_store(rt):
    """The account store of the platform's state dir (made if missing)."""
    from pangeohub.accounts import AccountStore

    rt.paths.ensure()
    return AccountStore(rt.paths.accounts_db)


def running_hub(rt):
    """The hub's API when the platform runs, else None (commands then change only what is on disk)."""
    from pangeohub.hubapi import HubAPI
    from pangeohub.services.supervisor import supervisor_pid

    return HubAPI(rt) if supervisor_pid(rt) else None

