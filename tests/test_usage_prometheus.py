"""``pangeohub usage report --prometheus``: the real CLI against Debian's Prometheus, which scrapes a stand-in for
a Kubernetes node's cAdvisor and for kube-state-metrics (there is no cluster here) that burn a known CPU."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from harness import cli, free_port, wait_for
from prometheus_server import PROMETHEUS, PrometheusServer

from pangeohub.usage.promsource import QUERIES

BURN = 10.0  # seconds the stand-in's counters rise for, then stay level
RATES = {  # CPU-seconds per second
    ("pangeohub", "jupyter-ada", "notebook"): 0.5,
    ("pangeohub", "dask-worker-c1-x1", "dask-worker"): 1.5,
    ("pangeohub", "dask-scheduler-c1", "dask-scheduler"): 0.25,
    ("pangeohub", "jupyter-bob", "notebook"): 0.1,
    ("elsewhere", "jupyter-ada", "notebook"): 5.0,  # another namespace: not this hub's
}
LABELS = [  # kube_pod_labels as kube-state-metrics gives them with the allowlist in docs/kubernetes.md
    ("pangeohub", "jupyter-ada", {"label_hub_jupyter_org_username": "ada"}),
    ("pangeohub", "jupyter-bob", {"label_hub_jupyter_org_username": "bob"}),
    ("pangeohub", "dask-worker-c1-x1", {"label_hub_jupyter_org_username": "ada", "label_gateway_dask_org_cluster": "c1"}),
    ("pangeohub", "dask-scheduler-c1", {"label_hub_jupyter_org_username": "ada", "label_gateway_dask_org_cluster": "c1"}),
    ("elsewhere", "jupyter-ada", {"label_hub_jupyter_org_username": "ada"}),
]


class StandIn:
    """/metrics/cadvisor (a kubelet's) and /metrics (kube-state-metrics'), on a random loopback port."""

    def __init__(self):
        self.started: float | None = None  # the first scrape of cAdvisor's: the counters rise from 0 from then
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                text = stand_in.cadvisor() if self.path == "/metrics/cadvisor" else stand_in.kube_state()
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def burned(self, rate: float) -> float:
        return rate * min(time.time() - self.started, BURN)

    def cadvisor(self) -> str:
        if self.started is None:
            self.started = time.time()
        lines = ["# TYPE container_cpu_usage_seconds_total counter"]
        for (namespace, pod, container), rate in RATES.items():
            lines.append(f'container_cpu_usage_seconds_total{{namespace="{namespace}",pod="{pod}",'
                         f'container="{container}"}} {self.burned(rate):.6f}')
        lines.append("# TYPE container_memory_working_set_bytes gauge")
        for namespace, pod, container in RATES:
            lines.append(f'container_memory_working_set_bytes{{namespace="{namespace}",pod="{pod}",'
                         f'container="{container}"}} 2e9')
        return "\n".join(lines) + "\n"

    def kube_state(self) -> str:
        lines = ["# TYPE kube_pod_labels gauge"]
        for namespace, pod, labels in LABELS:
            extra = "".join(f',{k}="{v}"' for k, v in labels.items())
            lines.append(f'kube_pod_labels{{namespace="{namespace}",pod="{pod}"{extra}}} 1')
        return "\n".join(lines) + "\n"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def scrape(stand_in: StandIn, cadvisor: bool = True) -> list[dict]:
    """Two jobs, as on a cluster: the series of each carry their own job and instance labels."""
    jobs = [{"job_name": "kube-state-metrics", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{stand_in.port}"]}]}]
    if cadvisor:
        jobs.append({"job_name": "kubelet-cadvisor", "metrics_path": "/metrics/cadvisor", "honor_labels": True,
                     "static_configs": [{"targets": [f"127.0.0.1:{stand_in.port}"]}]})
    return jobs


@pytest.fixture(scope="module")
def stand_in():
    server = StandIn()
    yield server
    server.close()


@pytest.fixture(scope="module")
def prometheus(stand_in):
    if not Path(PROMETHEUS).exists():
        pytest.fail(f"{PROMETHEUS} is missing: the test setup (install.py --dev) installs Debian's prometheus")
    server = PrometheusServer(scrape(stand_in), "1s")
    try:
        final = 0.5 * BURN
        wait_for(lambda: server.value('max(container_cpu_usage_seconds_total{pod="jupyter-ada",namespace="pangeohub"})')
                 == final, "Prometheus to scrape the stand-in's level counters", timeout=60, every=0.5)
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("site") / "config.yaml"
    (path.parent / "state").mkdir()
    path.write_text(yaml.safe_dump({"state_dir": str(path.parent / "state")}))
    return path


def report(config, *args, check=True):
    return cli("usage", "report", *args, config=config, check=check, timeout=120)


def test_the_report_gives_each_persons_cpu_from_prometheus(prometheus, config):
    rows = json.loads(report(config, "--prometheus", prometheus.url, "--since", "1m", "--format", "json").stdout)
    by_name = {r["person"]: r for r in rows}
    assert set(by_name) == {"ada", "bob"}
    ada = by_name["ada"]
    # Within 20 %: increase() extrapolates a little past the first and last samples.
    assert ada["server_cpu_seconds"] == pytest.approx(0.5 * BURN, rel=0.2)
    assert ada["dask_core_hours"] == pytest.approx((1.5 + 0.25) * BURN / 3600, rel=0.2)
    assert by_name["bob"]["server_cpu_seconds"] == pytest.approx(0.1 * BURN, rel=0.2)
    assert by_name["bob"]["dask_core_hours"] == 0
    assert ada["server_memory_gb_hours"] >= 0
    # The same keys as the report from the usage record; what Prometheus lacks is null.
    for key in ("server_memory_gb_hours", "dask_memory_gb_hours", "home_bytes", "scratch_bytes", "server_starts"):
        assert key in ada
    assert ada["home_bytes"] is None and ada["scratch_bytes"] is None
    # Table and csv through the same formatting; the table says where the figures come from.
    table = report(config, "--prometheus", prometheus.url, "--since", "1m").stdout
    assert re.search(r"^ada\s+0\.00\d", table, re.MULTILINE), table
    assert f"compute: Prometheus at {prometheus.url} (cAdvisor via kube-state-metrics labels)" in table
    csv = report(config, "--prometheus", prometheus.url, "--since", "1m", "--person", "bob",
                 "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("person,people,server_cpu_seconds") and len(csv) == 2 and csv[1].startswith("bob,")


def test_bad_prometheus_requests_are_clear_errors(prometheus, config, tmp_path):
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o640)
    for args, words in (
        (["--prometheus", f"http://127.0.0.1:{free_port()}"], "cannot be reached"),
        (["--prometheus", prometheus.url, "--by", "group"], "groups are the hub's, not labels on pods"),
        (["--prometheus", prometheus.url, "--group", "ocean"], "--group is not possible with --prometheus"),
        (["--prometheus", prometheus.url, "--by", "day"], "--by day is not possible with --prometheus"),
        (["--prometheus", prometheus.url, "--prometheus-token-file", str(token)], "is readable by others"),
        (["--prometheus", prometheus.url + "/nothing-here"], "answered HTTP 404"),
    ):
        proc = report(config, *args, check=False)
        assert proc.returncode == 2 and words in proc.stderr and "fix:" in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_a_prometheus_without_cadvisor_names_the_missing_metric(stand_in, config):
    server = PrometheusServer(scrape(stand_in, cadvisor=False), "1s")
    try:
        wait_for(lambda: server.query("kube_pod_labels"), "Prometheus to scrape kube-state-metrics", timeout=60,
                 every=0.5)
        proc = report(config, "--prometheus", server.url, "--since", "1m", check=False)
    finally:
        server.close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no container_cpu_usage_seconds_total series" in proc.stderr and "cAdvisor" in proc.stderr


def test_docs_show_the_queries_the_report_runs():
    docs = (Path(__file__).parent.parent / "docs" / "kubernetes.md").read_text()
    for column, query in QUERIES.items():
        assert f"`{query.replace('RANGE', '30d')}`" in docs, column
