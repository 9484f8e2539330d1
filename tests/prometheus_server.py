"""Debian's Prometheus on a random loopback port with a temporary config and data dir, for tests that need a
real one (the platform's metrics endpoint, ``usage report --prometheus``)."""

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from harness import free_port, wait_for

PROMETHEUS = "/usr/bin/prometheus"


def get(url: str, token: str | None = None, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={**({"Authorization": f"token {token}"} if token else {}),
                                                   **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class PrometheusServer:
    """``scrape_configs`` as in prometheus.yml; ``files`` are written beside it first (name -> text, mode 600),
    for credentials the configs name through ``{dir}``."""

    def __init__(self, scrape_configs: list[dict], interval: str, files: dict[str, str] | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="pangeohub-prometheus-", dir="/var/tmp"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)
            (self.dir / name).chmod(0o600)
        config = {"global": {"scrape_interval": interval}, "scrape_configs": scrape_configs}
        (self.dir / "prometheus.yml").write_text(json.dumps(config).replace("{dir}", str(self.dir)))
        self.log = open(self.dir / "prometheus.log", "wb")  # noqa: SIM115 (open for the life of the process)
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(self.ready, "the test's Prometheus to start", timeout=60)
        except BaseException:
            self.close()
            raise

    def ready(self) -> bool:
        try:
            return get(f"{self.url}/-/ready")[0] == 200
        except urllib.error.URLError:
            assert self.proc.poll() is None, (self.dir / "prometheus.log").read_text()
            return False

    def query(self, promql: str) -> list:
        status, text = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert status == 200, text
        return json.loads(text)["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
