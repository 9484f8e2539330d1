"""``pangeohub users budget [NAME | --group G] [--core-hours N | --money N | --clear] [--json]``.

With an amount: the person's (or group's) monthly budget from now on, in place of the config's. With
``--clear``: the override is dropped and the config's budget applies again. With neither: the budget's state
(used, limit, percentage, reset date); with no name either: everyone's, fullest first, those past the notice
level marked, which is where administrators see who is near a budget.
"""

from __future__ import annotations

import json
import math

import typer

from pangeohub.cli.context import account_store, running_hub, state
from pangeohub.errors import PangeoError


def register(app: typer.Typer) -> None:
    app.command("budget")(budget)


def budget(
    name: str = typer.Argument(None, help="The person (hub username); leave out to see everyone's budgets."),
    group: str = typer.Option(None, "--group", help="A hub group's shared budget instead of a person's."),
    core_hours: str = typer.Option(None, "--core-hours", help="Monthly budget in CPU core-hours."),
    money: str = typer.Option(None, "--money", help="Monthly budget in money (costs.currency)."),
    clear: bool = typer.Option(False, "--clear", help="Drop the override: the config's budget applies again."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show or set a person's (or group's) monthly budget; at 100 % new Dask clusters and larger profiles are
    refused until the month ends (UTC), running work is never stopped."""
    from pangeohub.budgets.ledger import Ledger
    from pangeohub.budgets.overrides import OverrideStore

    rt = state.runtime()
    scope, who = _target(name, group)
    changes = [opt for opt, value in (("--core-hours", core_hours), ("--money", money), ("--clear", clear)) if value]
    if len(changes) > 1:
        raise PangeoError(f"{' and '.join(changes)} given together: a budget is in core-hours or in money, and "
                          "--clear drops it", "give one of --core-hours N, --money N or --clear")
    if changes and who is None:
        raise PangeoError(f"{changes[0]} needs a person or a group", "e.g. pangeohub users budget alice "
                          "--core-hours 100, or pangeohub users budget --group physics --money 300")
    new = _amount(rt, core_hours, money) if changes and not clear else None
    if who is not None:
        _check_exists(rt, scope, who)
    if changes:
        _check_enforceable(rt)
    store = OverrideStore(rt.paths.budgets_db)
    if clear:
        if not store.clear(scope, who):
            raise PangeoError(f"{_label(scope, who)} has no budget set with `pangeohub users budget` to clear",
                              "see its budget with `pangeohub users budget " + _args(scope, who) + "`")
    elif new is not None:
        store.set(scope, who, new)
    ledger = Ledger(rt.config, rt.paths)
    if who is None:
        return _everyone(rt, ledger, as_json)
    found = ledger.state(scope, who)
    if changes and scope == "person":
        _refresh_notice(rt, ledger, who)
    if as_json:
        typer.echo(json.dumps(found.to_json() if found else {"scope": scope, "name": who, "limit": None}, indent=2))
        return
    if clear:
        typer.echo(f"override of {_label(scope, who)} cleared")
    typer.echo(_line(rt, found) if found else f"{_label(scope, who)}: no budget")


def _target(name: str | None, group: str | None) -> tuple[str, str | None]:
    if name and group:
        raise PangeoError(f"both a person ({name}) and a group ({group}) given", "give one of them")
    return ("group", group) if group else ("person", name)


def _amount(rt, core_hours: str | None, money: str | None):
    from pangeohub.config.budgets import Budget

    option, text = ("--core-hours", core_hours) if core_hours is not None else ("--money", money)
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise PangeoError(f"{option} {text!r} is not a number", f"give the monthly amount, e.g. {option} 100")
    if value < 0:
        raise PangeoError(f"{option} {text} is negative: a budget is zero or more",
                          f"give the monthly amount, e.g. {option} 100 (0 refuses everything but the smallest "
                          "profile; --clear drops the override)")
    if option == "--money" and not rt.config.costs.priced:
        raise PangeoError("--money needs prices to turn use into money, and the config's `costs:` section sets none",
                          "set costs.prices (e.g. core_hour: 0.05) or costs.machine_monthly, or use --core-hours")
    return Budget(**{option[2:].replace("-", "_"): value})


def _check_exists(rt, scope: str, who: str) -> None:
    """Nothing is changed for a name nobody has: it would be a budget that never applies (a typo)."""
    api = running_hub(rt)
    accounts = account_store(rt).list()
    hub_users = api.users() if api else []
    if scope == "person":
        known = {a.name for a in accounts} | {u["name"] for u in hub_users}
        if who not in known:
            raise PangeoError(f"no person named {who!r}", "check the name with `pangeohub users list`")
        return
    known = {g for a in accounts for g in a.groups} | {g for u in hub_users for g in u.get("groups", [])}
    known |= set(rt.config.budgets.groups)
    if who not in known:
        raise PangeoError(f"no group named {who!r}: nobody is in it",
                          "check the name with `pangeohub users list` (the GROUPS column)")


def _check_enforceable(rt) -> None:
    from pangeohub.config.model import check_budgets_enforceable

    try:
        check_budgets_enforceable(rt.config)
    except ValueError as exc:
        raise PangeoError(f"this platform cannot hold budgets: {exc}") from None


def _refresh_notice(rt, ledger, name: str) -> None:
    """The person's JupyterLab notice follows the new budget at once, not at the next sample."""
    from pangeohub.budgets.notices import refresh

    account = account_store(rt).get(name)
    groups = account.groups if account else []
    try:
        refresh(rt.config, rt.paths, name, groups, bool(account and account.admin), ledger)
    except PangeoError:
        pass  # an unreadable usage record: the sampler says so in the hub's log


def _label(scope: str, who: str) -> str:
    return who if scope == "person" else f"group {who}"


def _args(scope: str, who: str) -> str:
    return who if scope == "person" else f"--group {who}"


def _line(rt, found) -> str:
    from pangeohub.budgets.ledger import when

    mark = ""
    if found.exhausted:
        mark = "  USED UP: new Dask clusters and larger profiles are refused"
    elif found.percent >= rt.config.budgets.notice_percent:
        mark = f"  WARNING: past {rt.config.budgets.notice_percent:g} %"
    return (f"{_label(found.scope, found.name)}: {found.used_text} this month ({found.source}); "
            f"resets {when(found.resets_at)}{mark}")


def _everyone(rt, ledger, as_json: bool) -> None:
    """Every person and group with a budget, fullest first."""
    api = running_hub(rt)
    people = {a.name: a.groups for a in account_store(rt).list()}
    for user in api.users() if api else []:
        people.setdefault(user["name"], user.get("groups", []))
    groups = set(rt.config.budgets.groups) | {n for k, n in ledger.overrides if k == "group"}
    found = [s for s in [ledger.state("person", p) for p in people] + [ledger.state("group", g) for g in groups] if s]
    found.sort(key=lambda s: (-min(s.percent, 1e12), s.scope, s.name))
    if as_json:
        typer.echo(json.dumps([s.to_json() for s in found], indent=2))
        return
    if not found:
        typer.echo("no budgets: set budgets in the config (budgets:) or with pangeohub users budget NAME --core-hours N")
    for s in found:
        typer.echo(_line(rt, s))
