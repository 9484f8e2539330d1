"""The admin page at /services/usage/: the last 30 days per person and group with plots, the Dask clusters
running now with their cost so far, and the top consumers. Plain HTML built here (no template engine, no
script): every value from the database or the hub is escaped.

A usage database that cannot be read makes the page say so (with the fix) and answer 503; the clusters running
now come from the gateway's records and are still shown.
"""

from __future__ import annotations

import importlib
import io
import time
from html import escape

from pangeohub.errors import PangeoError
from pangeohub.paths import StatePaths
from pangeohub.usage.clusters import cost_so_far, running_clusters
from pangeohub.usage.cost import apply_costs, core_hours
from pangeohub.usage.report import active_people, aggregate
from pangeohub.usage.store import HOUR, UsageStore

DAYS = 30
TOP = 5
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border-bottom:1px solid #ddd;padding:.25em .7em;text-align:right}th:first-child,td:first-child{text-align:left}
.error{background:#fde8e8;border:1px solid #c00;padding:1em;white-space:pre-wrap}img{max-width:100%}"""


def _size(nbytes: float) -> str:
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.1f} {unit}"
    return f"{int(nbytes)} B"


def _priced(config) -> bool:
    costs = config.costs
    return bool(costs.machine_monthly or any(costs.prices.model_dump().values()))


def _table(rows: list[dict], key: str, priced: bool, currency: str, css_id: str) -> str:
    head = [key, "people", "core-hours (server + Dask)", "server CPU h", "Dask core-h", "Dask requested core-h",
            "memory GB-h", "home", "scratch", "server hours", "starts"] + ([f"cost ({currency})"] if priced else [])
    body = []
    for r in rows:
        cells = [escape(str(r[key])), r["people"], f"{core_hours(r):.3f}", f"{r['server_cpu_seconds'] / HOUR:.3f}",
                 f"{r['dask_core_hours']:.3f}", f"{r['dask_requested_core_hours']:.3f}",
                 f"{r['server_memory_gb_hours'] + r['dask_memory_gb_hours']:.3f}", _size(r["home_bytes"]),
                 _size(r["scratch_bytes"]), f"{r['server_hours']:.2f}", r["server_starts"]]
        if priced:
            cells.append(f"{r['cost']:.2f}")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not body:
        body.append(f"<tr><td colspan='{len(head)}'>nothing recorded in the last {DAYS} days</td></tr>")
    return (f"<table id='{css_id}'><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join(body) + "</table>")


def _clusters_section(config, paths: StatePaths, now: float) -> str:
    if not config.gateway.enabled:
        return ""
    try:
        clusters = running_clusters(paths.gateway_db, now)
    except Exception as exc:  # the gateway migrating its database
        return f"<h2>Dask clusters running now</h2><p>the gateway's records could not be read: {escape(str(exc))}</p>"
    currency = escape(config.costs.currency)
    rows = "".join(
        f"<tr><td>{escape(c['name'])}</td><td>{escape(c['person'])}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(c['started']))}</td><td>{c['workers']}</td>"
        f"<td>{c['cores']:g}</td><td>{_size(c['memory_bytes'])}</td>"
        f"<td>{cost_so_far(c, config.costs, now):.2f}</td></tr>" for c in clusters)
    if not rows:
        rows = "<tr><td colspan='7'>none</td></tr>"
    return ("<h2>Dask clusters running now</h2><table id='clusters'><tr><th>cluster</th><th>person</th><th>started</th>"
            f"<th>workers</th><th>cores held</th><th>memory held</th><th>cost so far ({currency})</th></tr>{rows}</table>"
            "<p>Cost so far: the cluster's current size since it started, at the <code>costs:</code> prices.</p>")


def _budgets_section(config, store) -> str:
    """Who is near their budget, when the platform has budgets: ``pangeohub.budgets.exports`` defines
    ``admin_page_html(config, store) -> str``; without it the page has no budget section."""
    try:
        budgets = importlib.import_module("pangeohub.budgets.exports")
    except ImportError:
        return ""
    section = getattr(budgets, "admin_page_html", None)
    return section(config, store) if section else ""


def render_page(config) -> tuple[int, str]:
    """(HTTP status, HTML)."""
    paths = StatePaths(config.state_dir)
    store = UsageStore(paths.usage_db)
    now = time.time()
    since, until = now - DAYS * 86400, now + HOUR
    parts = [f"<h1>Usage over the last {DAYS} days</h1>"]
    status = 200
    try:
        people = aggregate(store, since, until, "person")
        groups = aggregate(store, since, until, "group")
        active = active_people(store, now)
        budgets = _budgets_section(config, store)
    except PangeoError as exc:
        status = 503
        parts.append(f"<div class='error' id='error'><b>The usage record cannot be shown.</b>\n{escape(str(exc))}</div>")
    else:
        priced = _priced(config)
        if priced:
            apply_costs(people, config.costs, until - since)
            apply_costs(groups, config.costs, until - since)
        currency = config.costs.currency
        parts.append(f"<p id='active'>Active people: {active['24h']} in the last 24 hours, {active['7d']} in 7 days, "
                     f"{active['30d']} in 30 days.</p>")
        top = sorted(people, key=core_hours, reverse=True)[:TOP]
        parts.append("<h2>Top consumers</h2>" + _table(top, "person", priced, currency, "top"))
        parts.append(budgets)
        parts.append("<h2>Per person</h2><img id='plot-person' alt='daily core-hours per person' src='plot-person.png'>"
                     + _table(people, "person", priced, currency, "people"))
        parts.append("<h2>Per group</h2><img id='plot-group' alt='daily core-hours per group' src='plot-group.png'>"
                     + _table(groups, "group", priced, currency, "groups"))
    parts.append(_clusters_section(config, paths, now))
    parts.append("<p>Prometheus metrics of the platform: <code>metrics</code> (an admin's API token in the "
                 "Authorization header).</p>")
    html = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>pangeohub usage</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    return status, html


def plot_png(config, by: str) -> bytes | None:
    """The daily stacked bars of the last 30 days (plot.py) as PNG bytes; None when the record cannot be read."""
    from pangeohub.usage.plot import daily_plot

    store = UsageStore(StatePaths(config.state_dir).usage_db)
    now = time.time()
    out = io.BytesIO()
    try:
        daily_plot(store, now - DAYS * 86400, now + HOUR, by, out)
    except PangeoError:
        return None
    return out.getvalue()
