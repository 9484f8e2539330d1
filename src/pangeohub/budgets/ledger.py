"""Each budget's state this month: what applies to a person (their own, their groups'), what was used, when
it resets, and the sentences people and admins read.

Use is read from the usage record (pangeohub.usage) for the calendar month so far (UTC), the current hour as
far as it has been sampled. Core-hours are server CPU seconds / 3600 plus Dask core-hours; money prices the same
rows with the ``costs:`` section, as `pangeohub usage report --cost` does.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from pangeohub.budgets.overrides import OverrideStore
from pangeohub.config.budgets import Budget
from pangeohub.usage.store import HOUR, UsageStore

CLI_SOURCE = "set with `pangeohub users budget`"


def month_bounds(now: float) -> tuple[float, float]:
    """(start of this calendar month, start of the next), UTC."""
    day = datetime.fromtimestamp(now, timezone.utc)
    start = datetime(day.year, day.month, 1, tzinfo=timezone.utc)
    days = calendar.monthrange(day.year, day.month)[1]
    return start.timestamp(), start.timestamp() + days * 86400


def when(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class BudgetState:
    scope: str        # "person" or "group"
    name: str
    source: str       # where the budget is set: a config option, or the command line
    unit: str         # "core_hours" or "money"
    limit: float
    used: float
    resets_at: float
    currency: str = ""

    @property
    def percent(self) -> float:
        if self.limit <= 0:
            return 100.0 if self.used <= 0 else float("inf")
        return 100.0 * self.used / self.limit

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def amount(self, value: float) -> str:
        return f"{value:.4g} core-hours" if self.unit == "core_hours" else f"{value:.2f} {self.currency}"

    @property
    def used_text(self) -> str:
        percent = "" if self.percent == float("inf") else f", {self.percent:.0f} %"
        return f"{self.amount(self.used)} of {self.amount(self.limit)}{percent}"

    @property
    def owner(self) -> str:
        return "your monthly budget" if self.scope == "person" else f"the monthly budget of group '{self.name}'"

    def refusal(self, what: str, fix: str) -> str:
        """Why ``what`` is refused: the budget, what was used, when it resets, and what to do."""
        return (f"{what} refused: {self.owner} ({self.source}) is used up: {self.used_text} this month; it resets "
                f"on {when(self.resets_at)}. Running servers, kernels and clusters go on. Fix: {fix}.")

    def notice(self, smallest: str) -> str:
        """What the person reads on the spawn page and in JupyterLab."""
        if self.exhausted:
            return (f"{self.owner.capitalize()} ({self.source}) is used up: {self.used_text} this month. Until it "
                    f"resets on {when(self.resets_at)}, new Dask clusters and profiles larger than '{smallest}' are "
                    "refused; running work goes on.")
        return (f"You have used {self.percent:.0f} % of {self.owner} ({self.amount(self.used)} of "
                f"{self.amount(self.limit)}, {self.source}); it resets on {when(self.resets_at)}. At 100 % new Dask "
                f"clusters and profiles larger than '{smallest}' are refused; running work is never stopped.")

    def to_json(self) -> dict:
        return {**asdict(self), "percent": round(self.percent, 2) if self.percent != float("inf") else None,
                "exhausted": self.exhausted, "resets": when(self.resets_at)}


class Ledger:
    """Budgets and this month's use, read once; ask it for as many people and groups as needed."""

    def __init__(self, config, paths, now: float | None = None):
        self.config = config
        self.paths = paths
        self.now = time.time() if now is None else now
        self.start, self.resets_at = month_bounds(self.now)
        self.overrides = OverrideStore(paths.budgets_db).all()
        self._use: dict[str, dict] = {}

    @property
    def active(self) -> bool:
        """Whether any budget is set at all (else nothing needs reading)."""
        return self.config.budgets.any or bool(self.overrides)

    def budget(self, scope: str, name: str) -> tuple[Budget, str] | None:
        """The budget of a person or a group and where it is set; None when there is none."""
        if (scope, name) in self.overrides:
            return self.overrides[(scope, name)], CLI_SOURCE
        section = self.config.budgets
        if scope == "group":
            return (section.groups[name], f"budgets.groups.{name}") if name in section.groups else None
        if name in section.people:
            return section.people[name], f"budgets.people.{name}"
        return (section.default, "budgets.default") if section.default is not None else None

    def used(self, scope: str, name: str, unit: str) -> float:
        row = self._rows(scope).get(name)
        if row is None:
            return 0.0
        from pangeohub.usage.cost import core_hours

        return core_hours(row) if unit == "core_hours" else row["cost"]

    def state(self, scope: str, name: str) -> BudgetState | None:
        found = self.budget(scope, name)
        if found is None:
            return None
        budget, source = found
        return BudgetState(scope=scope, name=name, source=source, unit=budget.unit, limit=budget.amount,
                           used=self.used(scope, name, budget.unit), resets_at=self.resets_at,
                           currency=self.config.costs.currency)

    def states(self, person: str, groups) -> list[BudgetState]:
        """Every budget that applies to the person: their own first, then their groups' (by name). The groups
        the sampler last saw them in count too: a token that may not read its owner's groups (a kernel's, at
        the gateway) must not take a group budget away."""
        groups = set(groups) | self.recorded_groups(person)
        found = [self.state("person", person)] + [self.state("group", g) for g in sorted(groups)]
        return [s for s in found if s is not None]

    def people(self) -> set[str]:
        """Everybody with recorded use this month."""
        return set(self._rows("person"))

    def recorded_groups(self, person: str) -> set[str]:
        store = UsageStore(self.paths.usage_db)
        if not self.config.budgets.groups and not any(k == "group" for k, _ in self.overrides):
            return set()
        if not store.path.exists():
            return set()
        rows = store.rows(self.now - 2 * HOUR, self.now + HOUR, [person])
        return set(rows[-1]["groups"]) if rows else set()

    def _rows(self, by: str) -> dict[str, dict]:
        """This month's report rows per person or group, priced (one query each, kept for this ledger)."""
        if by not in self._use:
            from pangeohub.usage.cost import apply_costs, core_hours
            from pangeohub.usage.report import aggregate

            store = UsageStore(self.paths.usage_db)
            rows = aggregate(store, self.start, self.now + HOUR, by) if store.path.exists() else []
            rows = [r for r in rows if r[by] not in ("(no group)",)]
            total = None
            if by == "group":  # a machine's cost is shared by people's use; members of two groups count in both
                total = sum(core_hours(r) for r in self._rows("person").values())
            apply_costs(rows, self.config.costs, max(self.now - self.start, 1.0), total_core_hours=total)
            self._use[by] = {r[by]: r for r in rows}
        return self._use[by]


def blocking(states: list[BudgetState]) -> BudgetState | None:
    """The first used-up budget (the person's own before their groups'), or None."""
    return next((s for s in states if s.exhausted), None)


def noticed(states: list[BudgetState], percent: float) -> BudgetState | None:
    """The budget to tell the person about: a used-up one first, else the fullest at or past ``percent``."""
    over = blocking(states)
    if over is not None:
        return over
    near = [s for s in states if s.percent >= percent]
    return max(near, key=lambda s: s.percent) if near else None


def alerts(rt) -> list[BudgetState]:
    """Budgets of the platform's people and groups at or past the notice level, fullest first; none when the
    records cannot be read (`pangeohub users budget` says why)."""
    from pangeohub.accounts import AccountStore
    from pangeohub.errors import PangeoError

    try:
        ledger = Ledger(rt.config, rt.paths)
        if not ledger.active:
            return []
        people = {a.name: a.groups for a in AccountStore(rt.paths.accounts_db).list()} \
            if rt.paths.accounts_db.exists() else {}
        people.update({p: [] for p in ledger.people() if p not in people})
        groups = set(ledger.config.budgets.groups) | {n for k, n in ledger.overrides if k == "group"}
        found = [ledger.state("person", p) for p in people] + [ledger.state("group", g) for g in groups]
    except PangeoError:
        return []
    notice = rt.config.budgets.notice_percent
    return sorted((s for s in found if s and s.percent >= notice), key=lambda s: -min(s.percent, 1e12))
