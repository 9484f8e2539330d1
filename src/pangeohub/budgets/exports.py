"""Budget state for the usage service's metrics endpoint and admin page.

The usage service (``pangeohub.usage.metrics``, ``pangeohub.usage.page``) looks this module up by name when it
answers: budgets are read from the usage record, so a plain import from there would be a loop.
"""

from __future__ import annotations

from html import escape

from prometheus_client.core import GaugeMetricFamily

from pangeohub.budgets.ledger import Ledger
from pangeohub.paths import StatePaths


def _states(config):
    ledger = Ledger(config, StatePaths(config.state_dir))
    if not ledger.active:
        return []
    people = ledger.people() | {name for scope, name in ledger.overrides if scope == "person"}
    people |= set(config.budgets.people)
    groups = set(config.budgets.groups) | {name for scope, name in ledger.overrides if scope == "group"}
    found = [ledger.state("person", p) for p in sorted(people)] + [ledger.state("group", g) for g in sorted(groups)]
    return [s for s in found if s is not None]


def prometheus_families(config, store):
    """Per budget (person or group): its limit, what was used this month, and whether it is used up."""
    states = _states(config)
    if not states:
        return
    labels = ["scope", "name", "unit"]
    limit = GaugeMetricFamily("pangeohub_budget_limit", "A monthly budget (core-hours or money).", labels=labels)
    used = GaugeMetricFamily("pangeohub_budget_used", "What was used of it this month.", labels=labels)
    over = GaugeMetricFamily("pangeohub_budget_exhausted", "1 once it is used up (new Dask clusters and larger "
                             "profiles are refused until it resets).", labels=labels)
    for s in states:
        key = [s.scope, s.name, s.unit]
        limit.add_metric(key, s.limit)
        used.add_metric(key, s.used)
        over.add_metric(key, 1.0 if s.exhausted else 0.0)
    yield from (limit, used, over)


def admin_page_html(config, store) -> str:
    """Budgets at or past the notice level, fullest first, for the admin page."""
    states = _states(config)
    if not states:
        return ""
    level = config.budgets.notice_percent
    near = sorted((s for s in states if s.percent >= level), key=lambda s: s.percent, reverse=True)
    rows = "".join(
        f"<tr><td>{escape(s.scope)}</td><td>{escape(s.name)}</td><td>{escape(s.used_text)}</td>"
        f"<td>{'used up' if s.exhausted else 'near'}</td><td>{escape(s.source)}</td></tr>" for s in near)
    body = (f"<table id='budgets'><tr><th>scope</th><th>name</th><th>used this month</th><th>state</th>"
            f"<th>set by</th></tr>{rows}</table>" if near else
            f"<p id='budgets'>Nobody is at {level:g} % of a budget ({len(states)} budgets set).</p>")
    return f"<h2>Budgets near or used up</h2>{body}"
