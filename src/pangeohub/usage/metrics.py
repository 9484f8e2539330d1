"""The platform's own Prometheus metrics, built at each scrape from the usage database and live records.

Counters are totals over everything the usage database holds (the hourly rows summed per person), so they only
grow while the record is kept, as Prometheus expects; levels (bytes stored, memory in use, clusters running)
are gauges. Names follow Prometheus's conventions: base units (seconds, bytes), ``_total`` on counters,
``person`` as the label. Dask core-hours are ``pangeohub_dask_cpu_seconds_total / 3600``.

A usage database that cannot be read does not fail the scrape: everything else is still exported, with
``pangeohub_usage_database_readable 0`` and the reason as a comment, so the hub's metrics and the alerts on
them keep working while the operator restores it.
"""

from __future__ import annotations

import importlib
import json
import logging
import time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from pangeohub.errors import PangeoError
from pangeohub.paths import StatePaths
from pangeohub.usage.clusters import running_clusters
from pangeohub.usage.store import HOUR, LEVELS as LEVEL_COLUMNS, SUMMED, UsageStore, hour_of

log = logging.getLogger(__name__)

# (metric name, help, column of the person's all-time row, factor to base units)
COUNTERS = (
    ("pangeohub_server_cpu_seconds", "CPU seconds used by the person's server and kernels (cgroup counters).",
     "server_cpu_seconds", 1.0),
    ("pangeohub_dask_cpu_seconds", "CPU seconds used by the person's Dask schedulers and workers (measured).",
     "dask_cpu_seconds", 1.0),
    ("pangeohub_server_memory_byte_seconds", "Memory held by the person's server, integrated over time.",
     "server_memory_gb_hours", 1e9 * HOUR),
    ("pangeohub_dask_memory_byte_seconds", "Memory held by the person's Dask processes, integrated over time.",
     "dask_memory_gb_hours", 1e9 * HOUR),
    ("pangeohub_dask_requested_core_seconds", "Cores the person's Dask clusters held (requested size x time).",
     "dask_requested_core_hours", HOUR),
    ("pangeohub_server_running_seconds", "Time the person's server was running.", "server_seconds", 1.0),
    ("pangeohub_server_starts", "Starts of the person's server.", "server_starts", 1.0),
    ("pangeohub_logins", "The person's logins.", "logins", 1.0),
)
LEVELS = (
    ("pangeohub_home_bytes", "Bytes in the person's home (last measurement).", "home_bytes"),
    ("pangeohub_scratch_bytes", "Bytes under the person's scratch prefix (last measurement).", "scratch_bytes"),
    ("pangeohub_scratch_objects", "Objects under the person's scratch prefix (last measurement).", "scratch_objects"),
)


class Totals:
    """Each person's totals over the whole record, without summing the whole record at every scrape (90 days of
    100 people take ~1.6 s of CPU to sum; a scrape every 30 s would spend 5 % of a core on it).

    Hours that are over no longer change, so they are summed once per hour and kept; each scrape adds the rows of
    the current and the previous hour (a sample taken just before the hour turned may land after the sum was
    made). A database put back from a backup is a new file: its identity (inode) starts a new sum.
    """

    def __init__(self, store: UsageStore):
        self.store = store
        self.key: tuple | None = None
        self.past: dict[str, dict] = {}

    def people(self, now: float) -> dict[str, dict]:
        recent = hour_of(now) - HOUR
        try:
            stat = self.store.path.stat()
            key = (stat.st_dev, stat.st_ino, recent)
        except OSError:
            key = None  # missing: the store's own error says so below
        if key is None or key != self.key:
            self.past = {}
            for row in self.store.aggregate(0, recent, "person"):
                self.past[row["grouping"]] = {c: row[c] for c in (*SUMMED, *LEVEL_COLUMNS)}
            self.key = key
        out = {person: dict(row) for person, row in self.past.items()}
        for row in self.store.rows(recent, now + HOUR):  # hour by hour, oldest first
            total = out.setdefault(row["person"], {c: 0 for c in (*SUMMED, *LEVEL_COLUMNS)})
            for column in SUMMED:
                total[column] += row[column]
            for column in LEVEL_COLUMNS:
                if row[column] is not None:  # levels are measured every usage.storage_interval only
                    total[column] = row[column]
        return out


_TOTALS: dict[str, Totals] = {}  # per database path, for the life of the service


def totals_for(store: UsageStore) -> Totals:
    return _TOTALS.setdefault(str(store.path), Totals(store))


class PlatformCollector:
    """A prometheus_client collector: ``collect()`` reads everything afresh at each scrape."""

    def __init__(self, config, live=None):
        self.config = config
        self.paths = StatePaths(config.state_dir)
        self.store = UsageStore(self.paths.usage_db)
        self.live = live  # callable -> the sampler's latest samples (memory now, servers running), or None
        self.problem: str | None = None

    def collect(self):
        self.problem = None
        yield from self._usage()
        yield from self._live()
        yield from self._clusters()
        yield from self._services()
        yield from self._certificate()
        yield from budget_families(self.config, self.store)

    def _usage(self):
        readable = GaugeMetricFamily("pangeohub_usage_database_readable",
                                     "1 when the usage database can be read, 0 when it is damaged or missing.")
        try:
            people = totals_for(self.store).people(time.time())
            last = self.store.last_sample()
        except PangeoError as exc:
            self.problem = str(exc)
            log.error("%s", exc)
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        for name, text, column, factor in COUNTERS:
            family = CounterMetricFamily(name, text, labels=["person"])
            for person, row in sorted(people.items()):
                family.add_metric([person], row[column] * factor)
            yield family
        for name, text, column in LEVELS:
            family = GaugeMetricFamily(name, text, labels=["person"])
            for person, row in sorted(people.items()):
                family.add_metric([person], row[column])
            yield family
        yield from self._quotas(people)
        if last is not None:
            yield GaugeMetricFamily("pangeohub_usage_last_sample_timestamp_seconds",
                                    "When the sampler last recorded everybody's use.", value=last)

    def _quotas(self, people: dict[str, dict]):
        home_quota = int(self.config.homes.quota)
        scratch_quota = self.config.storage.scratch.quota
        scratch_quota = home_quota if scratch_quota is None else int(scratch_quota)
        yield GaugeMetricFamily("pangeohub_home_quota_bytes", "Each person's home quota (0: none).", value=home_quota)
        yield GaugeMetricFamily("pangeohub_scratch_quota_bytes", "Each person's scratch quota (0: none).",
                                value=scratch_quota)
        for name, column, quota in (("pangeohub_home_quota_used_ratio", "home_bytes", home_quota),
                                    ("pangeohub_scratch_quota_used_ratio", "scratch_bytes", scratch_quota)):
            if quota:
                family = GaugeMetricFamily(name, f"Share of the quota in use ({column} / quota).", labels=["person"])
                for person, row in sorted(people.items()):
                    family.add_metric([person], row[column] / quota)
                yield family

    def _live(self):
        samples = self.live() if self.live else None
        if samples is None:
            return
        running = GaugeMetricFamily("pangeohub_server_running", "1 while the person's server runs.", labels=["person"])
        memory = GaugeMetricFamily("pangeohub_server_memory_bytes", "Memory the person's server and kernels hold now.",
                                   labels=["person"])
        dask_memory = GaugeMetricFamily("pangeohub_dask_memory_bytes", "Memory the person's Dask processes hold now.",
                                        labels=["person"])
        for sample in samples:
            running.add_metric([sample.person], 1 if sample.server_running else 0)
            memory.add_metric([sample.person], sample.memory_bytes)
            dask_memory.add_metric([sample.person], sample.dask_memory_bytes)
        yield from (running, memory, dask_memory)

    def _clusters(self):
        if not self.config.gateway.enabled:
            return
        try:
            clusters = running_clusters(self.paths.gateway_db)
        except Exception as exc:  # the gateway migrating its database: the next scrape has it
            log.warning("gateway records not read: %s", exc)
            return
        held = {}
        for cluster in clusters:
            totals = held.setdefault(cluster["person"], [0, 0, 0.0, 0.0])
            totals[0] += 1
            totals[1] += cluster["workers"]
            totals[2] += cluster["cores"]
            totals[3] += cluster["memory_bytes"]
        families = [GaugeMetricFamily(name, text, labels=["person"]) for name, text in (
            ("pangeohub_dask_clusters", "The person's Dask clusters running now (dask-gateway's records)."),
            ("pangeohub_dask_workers", "Workers of the person's running Dask clusters."),
            ("pangeohub_dask_cores", "Cores the person's running Dask clusters hold (scheduler and workers)."),
            ("pangeohub_dask_memory_requested_bytes", "Memory the person's running Dask clusters hold."))]
        for person, values in sorted(held.items()):
            for family, value in zip(families, values):
                family.add_metric([person], value)
        yield from families

    def _services(self):
        try:
            status = json.loads(self.paths.status_file.read_text())
        except (OSError, ValueError):
            return
        up = GaugeMetricFamily("pangeohub_service_up", "1 while the platform service runs (supervisor's view).",
                               labels=["service"])
        restarts = CounterMetricFamily("pangeohub_service_restarts", "Times the supervisor restarted the service "
                                       "after it died, since `pangeohub up`.", labels=["service"])
        for name, service in sorted(status.get("services", {}).items()):
            up.add_metric([name], 1 if service.get("state") == "running" else 0)
            restarts.add_metric([name], service.get("restarts_total", service.get("restarts", 0)))
        yield from (up, restarts)

    def _certificate(self):
        if self.config.hub.tls_mode == "off":
            return
        from pangeohub.services.runtime import Runtime
        from pangeohub.tls.domain import domain
        from pangeohub.tls.store import read_installed, tls_paths

        rt = Runtime(config=self.config)
        try:
            info = read_installed(tls_paths(rt))
            name = domain(self.config)
        except Exception as exc:  # no public address for 'auto': the certificate status says so
            log.warning("certificate not read: %s", exc)
            return
        family = GaugeMetricFamily("pangeohub_certificate_expiry_timestamp_seconds",
                                   "When the hub's HTTPS certificate expires.", labels=["domain"])
        if info is not None:
            family.add_metric([name], info.not_after)
        yield family


def budget_families(config, store):
    """Budget state, when the platform has budgets: ``pangeohub.budgets.exports`` defines
    ``prometheus_families(config, store)`` yielding metric families (e.g. used share per person); without that
    module nothing is exported here."""
    try:
        budgets = importlib.import_module("pangeohub.budgets.exports")
    except ImportError:
        return
    families = getattr(budgets, "prometheus_families", None)
    if families is None:
        return
    try:
        yield from families(config, store)
    except PangeoError as exc:
        log.error("budget metrics not exported: %s", exc)


def platform_metrics(config, live=None) -> tuple[bytes, str | None]:
    """(our metrics in Prometheus's text format, the usage database's problem or None)."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    collector = PlatformCollector(config, live)
    registry.register(collector)
    text = generate_latest(registry)
    return text, collector.problem
