"""What a used-up budget refuses, for the hub (profiles) and the gateway (new clusters); never what runs.

Both read the budgets in a worker thread (SQLite), so that their event loops keep serving everyone else. A
usage record that cannot be read refuses nothing: the error is logged and people keep working.
"""

from __future__ import annotations

import asyncio
import logging

from pangeohub.budgets.ledger import BudgetState, Ledger, blocking
from pangeohub.errors import PangeoError
from pangeohub.paths import StatePaths


def smallest(profiles: list):
    """The profile a used-up budget still allows: the fewest CPUs, then the least memory (config order at ties)."""
    return min(profiles, key=lambda p: (p.cpus, p.memory))


def larger(profile, small) -> bool:
    return profile.cpus > small.cpus or profile.memory > small.memory


def person_states(config, name: str, groups, log: logging.Logger | None = None) -> list[BudgetState]:
    try:
        ledger = Ledger(config, StatePaths(config.state_dir))
        return ledger.states(name, groups) if ledger.active else []
    except PangeoError as exc:
        (log or logging.getLogger("pangeohub.budgets")).error("budgets of %s not checked: %s", name, exc)
        return []


async def person_states_async(config, name: str, groups, log=None) -> list[BudgetState]:
    return await asyncio.get_running_loop().run_in_executor(None, person_states, config, name, groups, log)


def _raise(over: BudgetState) -> str:
    """The command an administrator runs to give more."""
    who = over.name if over.scope == "person" else f"--group {over.name}"
    return f"pangeohub users budget {who} --{'core-hours' if over.unit == 'core_hours' else 'money'} N"


def cluster_refusal(config, name: str, groups, log=None) -> str | None:
    """The message refusing a new Dask cluster, or None when every budget of the person has room."""
    over = blocking(person_states(config, name, groups, log))
    if over is None:
        return None
    return over.refusal("new Dask cluster", f"wait for the reset, or ask an administrator to raise it ({_raise(over)})")


def profile_refusal(over: BudgetState, profile, small) -> str:
    fix = (f"start with profile '{small.name}' (or no profile), or ask an administrator to raise the budget "
           f"({_raise(over)})")
    return over.refusal(f"profile '{profile.name}' (larger than '{small.name}')", fix)
