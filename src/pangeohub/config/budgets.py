"""Config section for monthly budgets (``budgets:``): per person and per group, in core-hours or money.

A budget is checked against the usage record (pangeohub.usage), so it needs a target whose compute use is
measured here; the cross-section checks live in ``Config`` (config/model.py).
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from pangeohub.config.base import Section


class Budget(Section):
    """A monthly allowance: either CPU core-hours or money (in costs.currency), not both."""

    core_hours: float | None = Field(
        None, description="CPU core-hours per calendar month (UTC): server CPU seconds / 3600 plus Dask core-hours, "
        "as measured by the usage record.",
    )
    money: float | None = Field(
        None, description="Money per calendar month (UTC), in costs.currency, priced with the `costs:` section.",
    )

    @field_validator("core_hours", "money", mode="before")
    @classmethod
    def _amount(cls, value):
        return None if value is None else budget_amount(value)

    @model_validator(mode="after")
    def _one_unit(self) -> "Budget":
        if self.core_hours is not None and self.money is not None:
            raise ValueError("a budget is in core_hours or in money, not both: keep one, e.g. {core_hours: 100}")
        if self.core_hours is None and self.money is None:
            raise ValueError("a budget needs an amount: core_hours or money, e.g. {core_hours: 100}")
        return self

    @property
    def unit(self) -> str:
        return "core_hours" if self.core_hours is not None else "money"

    @property
    def amount(self) -> float:
        return self.core_hours if self.core_hours is not None else self.money


def budget_amount(value) -> float:
    """A plain number >= 0 (a quoted "100" would hide a typo such as "1OO"); shared with the CLI."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"a budget must be a number such as 100, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a budget must be zero or more, not {value!r}")
    return float(value)


class BudgetsSection(Section):
    """Monthly budgets. At ``notice_percent`` people see a notice; at 100 % new Dask clusters and profiles
    larger than the smallest are refused until the month ends. Running work is never stopped."""

    default: Budget | None = Field(
        None, description="Each person's monthly budget unless budgets.people or `pangeohub users budget NAME` "
        "gives them their own, e.g. {core_hours: 200} or {money: 50}. Empty: no personal budget.",
    )
    people: dict[str, Budget] = Field(
        default_factory=dict, description="Monthly budgets of named people (hub usernames), in place of "
        "budgets.default, e.g. {alice: {core_hours: 500}}. `pangeohub users budget NAME` overrides these.",
    )
    groups: dict[str, Budget] = Field(
        default_factory=dict, description="Monthly budgets of hub groups, shared by their members: everything "
        "members used while in the group counts against it, e.g. {physics: {money: 300}}. A person's own budget "
        "and each of their groups' apply together; the first used up refuses.",
    )
    notice_percent: float = Field(
        80, gt=0, le=100, description="Share of a budget (%) at which the person sees a notice on the spawn page "
        "and in JupyterLab, and administrators are warned in the hub's log and `pangeohub users budget`.",
    )

    @property
    def any(self) -> bool:
        return self.default is not None or bool(self.people) or bool(self.groups)

    def uses_money(self) -> bool:
        return any(b.money is not None for b in [self.default, *self.people.values(), *self.groups.values()] if b)
