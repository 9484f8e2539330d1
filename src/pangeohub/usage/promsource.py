"""``pangeohub usage report --prometheus``: the report's compute columns from a Prometheus on Kubernetes.

On Kubernetes the per-person compute is in the cluster's own metrics, not in usage.sqlite: cAdvisor's
container series (through the kubelet) joined to kube-state-metrics' ``kube_pod_labels`` by the label
KubeSpawner and the gateway backend give each person's pods (``hub.jupyter.org/username``). ``QUERIES`` is the
one definition of the PromQL: docs/kubernetes.md shows the same strings (a test holds them equal).

Figures Prometheus does not have (homes, scratch, starts, logins, time running, Dask memory and requests) are
None in the rows: the usage sampler in the hub pod records them in usage.sqlite.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from pangeohub.errors import PangeoError
from pangeohub.secrets import read_token_file

TIMEOUT = 30  # seconds for one query; a 30-day increase() over a big cluster takes a while
PERSON = "label_hub_jupyter_org_username"
NOTEBOOK = 'namespace="NAMESPACE", container="notebook"'
DASK = 'namespace="NAMESPACE", container=~"dask-.*"'
OWNER = f'kube_pod_labels{{{PERSON}!=""}}'
DASK_OWNER = f'kube_pod_labels{{{PERSON}!="", label_gateway_dask_org_cluster!=""}}'
JOIN = f"* on (namespace, pod) group_left ({PERSON})"

# Report column -> PromQL, with NAMESPACE and RANGE (a Prometheus duration such as 30d) to fill in.
QUERIES = {
    "server_cpu_seconds":
        f"sum by ({PERSON}) (increase(container_cpu_usage_seconds_total{{{NOTEBOOK}}}[RANGE]) {JOIN} {OWNER})",
    "server_memory_gb_hours":
        f"sum by ({PERSON}) (sum_over_time(container_memory_working_set_bytes{{{NOTEBOOK}}}[RANGE:1m]) / 60 / 1e9 "
        f"{JOIN} {OWNER})",
    "dask_core_hours":
        f"sum by ({PERSON}) (increase(container_cpu_usage_seconds_total{{{DASK}}}[RANGE]) {JOIN} {DASK_OWNER}) "
        "/ 3600",
}
# What must be scraped for the queries to answer, and from where.
NEEDED = {
    "container_cpu_usage_seconds_total": "cAdvisor (the kubelet's /metrics/cadvisor)",
    "container_memory_working_set_bytes": "cAdvisor (the kubelet's /metrics/cadvisor)",
    "kube_pod_labels": "kube-state-metrics, with --metric-labels-allowlist="
                       "pods=[hub.jupyter.org/username,gateway.dask.org/cluster]",
}
# Columns of the local report that Prometheus does not have: None in these rows.
NOT_IN_PROMETHEUS = ("dask_memory_gb_hours", "dask_requested_core_hours", "dask_requested_memory_gb_hours",
                     "home_bytes", "scratch_bytes", "scratch_objects", "logins", "server_starts", "server_hours")
ROUNDING = {"server_cpu_seconds": 3, "server_memory_gb_hours": 6, "dask_core_hours": 6}


def describe(url: str) -> str:
    """The report's ``compute:`` line."""
    return f"Prometheus at {url} (cAdvisor via kube-state-metrics labels); homes, scratch, starts and logins " \
           "are in the hub pod's usage record"


def promql(column: str, namespace: str, seconds: float) -> str:
    return QUERIES[column].replace("NAMESPACE", namespace).replace("RANGE", f"{max(1, math.ceil(seconds))}s")


def token_from(path: str | None) -> str | None:
    """The bearer token in ``path``, refused if others may read it (as ``--token-file`` is)."""
    if not path:
        return None
    return read_token_file(path, "--prometheus-token-file", "the bearer token Prometheus accepts")


class PrometheusSource:
    """Instant queries against one Prometheus's HTTP API (``/api/v1/query``)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT):
        if not url.startswith(("http://", "https://")):
            raise PangeoError(f"--prometheus {url!r} is not an http(s) URL", "give e.g. http://prometheus.monitoring:9090")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def query(self, expr: str, at: float) -> list[dict]:
        """The vector ``expr`` evaluates to at ``at``."""
        body = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **({"Authorization": f"Bearer {self.token}"} if self.token else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = _error_of(exc.read())
            hint = ("give a bearer token Prometheus accepts (--prometheus-token-file)" if exc.code in (401, 403)
                    else "check the URL is Prometheus's (its /api/v1/query answers) and the query in the message")
            raise PangeoError(f"Prometheus at {self.url} answered HTTP {exc.code}{': ' + detail if detail else ''}",
                              hint) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PangeoError(f"Prometheus at {self.url} cannot be reached ({reason})",
                              "check the URL and that this machine reaches it (e.g. kubectl port-forward "
                              "svc/prometheus 9090)") from None
        except ValueError:
            raise PangeoError(f"{self.url}/api/v1/query did not answer JSON: it is not Prometheus's API",
                              "give the Prometheus server's base URL, e.g. http://prometheus.monitoring:9090") from None
        if answer.get("status") != "success":
            raise PangeoError(f"Prometheus at {self.url} refused the query: {answer.get('error')}",
                              f"the query was: {expr}")
        return answer["data"]["result"]

    def require(self, at: float, seconds: float) -> None:
        """Refuse, naming the metric, when a series the queries join is not in Prometheus at all."""
        for metric, source in NEEDED.items():
            if not self.query(f"count(last_over_time({metric}[{max(1, math.ceil(seconds))}s]))", at):
                raise PangeoError(f"Prometheus at {self.url} has no {metric} series in the period",
                                  f"it must scrape {source}")

    def rows(self, namespace: str, start: float, end: float, people: list[str] | None = None) -> list[dict]:
        """Report rows by person over [start, end), with the local report's keys."""
        seconds = end - start
        self.require(end, seconds)
        figures: dict[str, dict[str, float]] = {}
        for column in QUERIES:
            for sample in self.query(promql(column, namespace, seconds), end):
                person = sample["metric"].get(PERSON, "")
                value = float(sample["value"][1])
                if person and math.isfinite(value):
                    figures.setdefault(person, {})[column] = value
        out = []
        for person in sorted(figures):
            if people and person not in people:
                continue
            row = {"person": person, "people": 1}
            for column in ("server_cpu_seconds", "server_memory_gb_hours", "dask_core_hours"):
                row[column] = round(figures[person].get(column, 0.0), ROUNDING[column])
            out.append({**row, **dict.fromkeys(NOT_IN_PROMETHEUS)})
        return [_ordered(r) for r in out]


def _ordered(row: dict) -> dict:
    """The local report's key order (report.aggregate), so csv columns line up with it."""
    order = ("person", "people", "server_cpu_seconds", "server_memory_gb_hours", "dask_core_hours",
             "dask_memory_gb_hours", "dask_requested_core_hours", "dask_requested_memory_gb_hours", "home_bytes",
             "scratch_bytes", "scratch_objects", "logins", "server_starts", "server_hours")
    return {key: row[key] for key in order}


def _error_of(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))[:300]
    except ValueError:
        return body.decode(errors="replace").strip()[:300]
