"""What a budget counts, worked out from usage rows recorded as the sampler records them: core-hours (server and
Dask), money from the `costs:` prices, a group's shared use, the calendar month and its reset, and which budget
a person is told about or refused by. (On a real platform: test_budgets.py.)"""

from datetime import datetime, timezone

import pytest

from pangeohub.budgets.ledger import Ledger, blocking, month_bounds, noticed
from pangeohub.budgets.overrides import OverrideStore
from pangeohub.config import parse_config
from pangeohub.config.budgets import Budget
from pangeohub.paths import StatePaths
from pangeohub.usage.store import PersonSample, UsageStore


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


NOW = at("2026-12-07 12:30")


def used(store, person, at_time, server_cpu, dask_cpu=0.0, groups=()):
    """Two samples a minute apart whose counters grew by the given CPU seconds."""
    for step, (s, d) in enumerate(((0.0, 0.0), (server_cpu, dask_cpu))):
        sample = PersonSample(person=person, groups=list(groups), counters={"server_cpu": s, "dask_cpu": d})
        store.record([sample], at_time + 60 * step, 60)


@pytest.fixture
def platform(tmp_path):
    def make(text: str):
        config = parse_config(f"state_dir: {tmp_path}\n" + text)
        return config, StatePaths(tmp_path)

    return make


def test_core_hours_count_server_and_dask_cpu_of_this_month_only(platform, tmp_path):
    config, paths = platform("budgets: {default: {core_hours: 2}}")
    store = UsageStore(paths.usage_db)
    used(store, "ann", at("2026-11-30 23:00"), 7200)              # last month: not counted
    used(store, "ann", at("2026-12-02 10:00"), 1800, 1800)        # half an hour each: 1 core-hour
    state = Ledger(config, paths, NOW).state("person", "ann")
    assert state.used == pytest.approx(1.0)
    assert (state.limit, state.percent, state.exhausted) == (2, pytest.approx(50), False)
    assert state.resets_at == at("2027-01-01 00:00") and state.source == "budgets.default"


def test_money_prices_the_same_use_with_the_costs_section(platform):
    config, paths = platform("costs: {currency: EUR, prices: {core_hour: 0.5}}\n"
                             "budgets: {people: {ann: {money: 1}}}")
    used(UsageStore(paths.usage_db), "ann", at("2026-12-03 09:00"), 3 * 3600)
    state = Ledger(config, paths, NOW).state("person", "ann")
    assert state.used == pytest.approx(1.5) and state.exhausted
    assert "1.50 EUR of 1.00 EUR, 150 %" in state.used_text
    assert state.source == "budgets.people.ann"
    assert Ledger(config, paths, NOW).state("person", "bob") is None  # no default: no budget


def test_a_group_budget_sums_its_members_and_applies_to_each(platform):
    config, paths = platform("budgets: {groups: {ocean: {core_hours: 1}}, default: {core_hours: 10}}")
    store = UsageStore(paths.usage_db)
    used(store, "ann", at("2026-12-04 09:00"), 2000, groups=["ocean"])
    used(store, "bob", at("2026-12-07 11:00"), 2000, groups=["ocean"])  # sampled lately: still a member
    used(store, "cy", at("2026-12-04 13:00"), 9000)  # not a member
    ledger = Ledger(config, paths, NOW)
    group = ledger.state("group", "ocean")
    assert group.used == pytest.approx(4000 / 3600) and group.exhausted
    states = ledger.states("bob", [])  # the groups the sampler saw count even when the caller knows none
    assert [s.scope for s in states] == ["person", "group"]
    assert blocking(states) == group and "group 'ocean'" in group.refusal("new Dask cluster", "wait")
    assert blocking(ledger.states("cy", [])) is None


def test_an_override_replaces_the_config_and_clearing_brings_it_back(platform):
    config, paths = platform("budgets: {default: {core_hours: 10}}")
    used(UsageStore(paths.usage_db), "ann", at("2026-12-05 09:00"), 9 * 3600)
    overrides = OverrideStore(paths.budgets_db)
    assert noticed(Ledger(config, paths, NOW).states("ann", []), 80).percent == pytest.approx(90)
    overrides.set("person", "ann", Budget(core_hours=5))
    state = Ledger(config, paths, NOW).state("person", "ann")
    assert state.exhausted and state.source == "set with `pangeohub users budget`"
    assert "is used up" in state.notice("small") and "2027-01-01 00:00 UTC" in state.notice("small")
    assert overrides.clear("person", "ann") and not overrides.clear("person", "ann")
    assert Ledger(config, paths, NOW).state("person", "ann").limit == 10


def test_below_the_notice_level_nothing_is_said(platform):
    config, paths = platform("budgets: {default: {core_hours: 10}}")
    used(UsageStore(paths.usage_db), "ann", at("2026-12-05 09:00"), 3600)
    assert noticed(Ledger(config, paths, NOW).states("ann", []), 80) is None


def test_months_end_on_their_last_day_utc():
    assert month_bounds(at("2027-02-10 00:00")) == (at("2027-02-01 00:00"), at("2027-03-01 00:00"))
    assert month_bounds(at("2026-12-31 23:59")) == (at("2026-12-01 00:00"), at("2027-01-01 00:00"))
