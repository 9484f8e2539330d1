"""The notice a person near or over a budget reads in JupyterLab, and the admins' warnings in the hub's log.

After every sample the sampler writes, per person, the sentence of their fullest budget past
``budgets.notice_percent`` to ``<state_dir>/budget-notices/<name>``: owned by the person, 0400, in a root
directory nobody may list (0711), so each reads only their own. Their server shows it through JupyterLab's
notification mechanism (labnotice.py); the spawn page computes it afresh (pangeohub.hub.profiles).
"""

from __future__ import annotations

import logging
import os
import pwd
import tempfile
from pathlib import Path

from pangeohub.budgets.enforce import smallest
from pangeohub.budgets.ledger import BudgetState, Ledger, noticed, when
from pangeohub.names import system_name
from pangeohub.resources.profiles import allowed

ENV = "PANGEOHUB_BUDGET_NOTICE"


def notice_file(paths, name: str) -> Path:
    return paths.budget_notices / name


def write_notice(config, paths, name: str, text: str | None) -> None:
    """Put the person's notice in place (None: remove it). Only the person (and root) can read it."""
    path = notice_file(paths, name)
    if text is None:
        path.unlink(missing_ok=True)
        return
    try:
        entry = pwd.getpwnam(system_name(name, config.users.system_prefix))
    except KeyError:
        return  # no account yet: their first server start is after the next sample anyway
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    paths.budget_notices.mkdir(mode=0o711, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=paths.budget_notices, prefix=f".{name}.")
    try:
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
        os.fchmod(fd, 0o400)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def smallest_name(config, groups, admin: bool) -> str:
    usable = allowed(config, set(groups), admin)
    return smallest(usable).name if usable else config.profiles[0].name


def refresh(config, paths, name: str, groups, admin: bool, ledger: Ledger | None = None) -> BudgetState | None:
    """Write the person's notice from their budgets now; returns the budget it is about (None: no notice)."""
    ledger = ledger or Ledger(config, paths)
    shown = noticed(ledger.states(name, groups), config.budgets.notice_percent) if ledger.active else None
    write_notice(config, paths, name, shown.notice(smallest_name(config, groups, admin)) if shown else None)
    return shown


class BudgetWatch:
    """The sampler's part: notices for everyone after each round, and one warning per budget, level and month
    in the hub's log when a budget passes the notice level or is used up."""

    def __init__(self, config, paths, log: logging.Logger):
        self.config, self.paths, self.log = config, paths, log
        self.warned: set[tuple] = set()

    def round(self, users: list[dict]) -> None:
        ledger = Ledger(self.config, self.paths)
        if not ledger.active and not self.paths.budget_notices.exists():
            return
        for user in users:
            name, groups = user["name"], list(user.get("groups") or [])
            shown = refresh(self.config, self.paths, name, groups, bool(user.get("admin")), ledger)
            if shown is not None:
                self._warn(shown, name)

    def _warn(self, state: BudgetState, person: str) -> None:
        level = "used up" if state.exhausted else f"past {self.config.budgets.notice_percent:g} %"
        key = (state.scope, state.name, level, state.resets_at)
        if key in self.warned:
            return
        self.warned.add(key)
        whose = f"{person}'s monthly budget" if state.scope == "person" else f"group {state.name}'s monthly budget"
        self.log.warning("Budget warning: %s (%s) is %s: %s; it resets on %s", whose, state.source, level,
                         state.used_text, when(state.resets_at))
