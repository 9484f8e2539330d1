"""Monitoring on a real platform: the metrics endpoint at /services/usage/metrics (admins' tokens only), a real
Prometheus (Debian's) that scrapes it and answers a PromQL query with the CPU a person burned in their kernel,
the platform's own supervised Prometheus (monitoring.prometheus), the admin page in a real browser (Chromium),
and a damaged usage database that the page and the endpoint report while the platform keeps running.

One platform for the whole module: its start is the slow part."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from harness import kernel_json as run
from harness import wait_for
from prometheus_server import PROMETHEUS, PrometheusServer, get

pytestmark = pytest.mark.platform

INTERVAL = 3  # seconds between the sampler's rounds
SCRAPE = 2  # seconds between Prometheus's scrapes
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts" / "usage-page"


@pytest.fixture(scope="module")
def hub():
    from harness import Platform

    if not Path(PROMETHEUS).exists():
        pytest.fail(f"{PROMETHEUS} is missing: the test setup (install.py --dev) installs Debian's prometheus")
    platform = Platform(extra={
        "usage": {"sample_interval": f"{INTERVAL}s", "storage_interval": "5s"},
        "monitoring": {"prometheus": True, "retention": "2d", "scrape_interval": f"{SCRAPE}s"},
        "costs": {"prices": {"core_hour": 0.5, "memory_gb_hour": 0.01}},
    })
    try:
        platform.up()
        yield platform
    finally:
        from pangeohub.targets.local import cgroups
        from pangeohub.usage.cpuacct import CpuAccounting

        rt = platform.rt
        platform.close()
        CpuAccounting(cgroups.backend_for(rt.config.limits), rt.paths.gateway_clusters).prune()


@pytest.fixture(scope="module")
def admin(hub):
    name, _ = hub.add_user(admin=True)
    return name, hub.cli("token", name).stdout.strip()


@pytest.fixture(scope="module")
def person(hub, admin):
    """A person with a running server that the sampler has seen, and their own API token."""
    name, token = hub.started_user()
    wait_for(lambda: f'pangeohub_server_starts_total{{person="{name}"}} 1.0' in metrics(hub, admin[1])[1],
             "the sampler to record the person's server")
    return name, token


def metrics(hub, token: str | None) -> tuple[int, str]:
    return get(f"{hub.url}/services/usage/metrics", token)


def test_the_metrics_endpoint_is_for_admins_only(hub, admin, person):
    name, person_token = person
    assert metrics(hub, None)[0] == 401
    assert metrics(hub, "not-a-token")[0] == 401
    status, text = metrics(hub, person_token)
    assert status == 403 and "admins only" in text
    status, text = metrics(hub, admin[1])
    assert status == 200
    # Ours, per person, in Prometheus's conventions.
    assert f'pangeohub_server_cpu_seconds_total{{person="{name}"}}' in text
    assert f'pangeohub_home_bytes{{person="{name}"}}' in text
    assert 'pangeohub_service_up{service="hub"} 1.0' in text
    assert 'pangeohub_service_restarts_total{service="objectstore"} 0.0' in text
    assert "pangeohub_usage_database_readable 1.0" in text
    # The hub's own, passed through (its process figures renamed so they do not collide with the others').
    assert "jupyterhub_total_users" in text and "jupyterhub_process_cpu_seconds_total" in text
    # The object store's (SeaweedFS's), from inside its private network namespace.
    assert "SeaweedFS_" in text and "seaweedfs_go_goroutines" in text
    assert "\nprocess_cpu_seconds_total" not in text and "\ngo_goroutines" not in text


# Sleep past two samples first, so that the sampler has put the new kernel in the person's accounting group,
# then burn a known amount of CPU and report what the process itself measured.
BURN = """
import json, time
time.sleep({wait})
start = time.process_time()
while time.process_time() - start < {seconds}:
    sum(i * i for i in range(10000))
print(json.dumps({{"burned": time.process_time() - start}}))
"""


class Prometheus(PrometheusServer):
    """Debian's Prometheus, scraping the hub's public metrics path with a token."""

    def __init__(self, hub, token: str):
        port = hub.config_data["hub"]["port"]
        super().__init__([{
            "job_name": "pangeohub", "metrics_path": "/services/usage/metrics", "scrape_timeout": f"{SCRAPE}s",
            "authorization": {"type": "token", "credentials_file": "{dir}/token"},
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }], f"{SCRAPE}s", files={"token": token})


def test_prometheus_returns_the_cpu_seconds_a_person_burned_in_their_kernel(hub, admin, person):
    name, token = person
    prometheus = Prometheus(hub, admin[1])
    try:
        series = f'pangeohub_server_cpu_seconds_total{{person="{name}"}}'
        wait_for(lambda: prometheus.query('up{job="pangeohub"} == 1'), "Prometheus to scrape the endpoint")
        before = wait_for(lambda: prometheus.value(series), "the person's CPU seconds in Prometheus")
        burned = run(hub, name, token, BURN.format(wait=2 * INTERVAL + 1, seconds=5))["burned"]
        after = wait_for(lambda: (lambda v: v if v is not None and v - before >= 0.8 * burned else None)(
            prometheus.value(series)), "the burned CPU in Prometheus")
        # Within 20 %: the server's and kernel's own work (starting the kernel, messages) is the rest.
        assert 0.8 * burned <= after - before <= 1.2 * burned, (after - before, burned)
        # The hub's own spawn latency arrives through the same scrape.
        assert prometheus.query("jupyterhub_server_spawn_duration_seconds_count")
    finally:
        prometheus.close()


def test_the_platforms_own_prometheus_scrapes_with_the_configured_retention(hub, admin, person):
    rt = hub.rt
    status = json.loads(hub.cli("status", "--json").stdout)
    assert status["services"]["prometheus"]["state"] == "running", status
    port = hub.config_data["monitoring"]["port"]
    base = f"http://127.0.0.1:{port}"
    # Everyone on the machine reaches a loopback port: Prometheus asks for the platform's password.
    assert get(f"{base}/api/v1/targets")[0] == 401
    password = rt.paths.secret("prometheus_password").read_text().strip()
    auth = {"Authorization": "Basic " + base64.b64encode(f"pangeohub:{password}".encode()).decode()}

    def healthy_target():
        code, text = get(f"{base}/api/v1/targets", headers=auth)
        targets = json.loads(text)["data"]["activeTargets"] if code == 200 else []
        return [t for t in targets if t["health"] == "up"]

    target = wait_for(healthy_target, "the platform's Prometheus to scrape the usage service")[0]
    assert target["scrapeUrl"].endswith("/services/usage/metrics")
    query = urllib.parse.urlencode({"query": f'pangeohub_server_running{{person="{person[0]}"}}'})
    code, text = get(f"{base}/api/v1/query?{query}", headers=auth)
    assert code == 200 and json.loads(text)["data"]["result"][0]["value"][1] == "1"
    # Its data in the state dir, kept as long as monitoring.retention says (2d).
    code, text = get(f"{base}/api/v1/status/flags", headers=auth)
    flags = json.loads(text)["data"]
    assert flags["storage.tsdb.retention.time"] == "2d"
    assert Path(flags["storage.tsdb.path"]) == rt.paths.root / "prometheus" / "data"
    assert (rt.paths.root / "prometheus" / "data").is_dir()


@pytest.fixture
def browser():
    """Only for its test: Playwright's sync API keeps an event loop running in this thread until it stops, and
    the next test's kernel session (asyncio.run) needs the thread's loop free."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the test setup (install.py --dev) installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


CLUSTER = """
import json
from dask_gateway import Gateway
with Gateway() as gateway:
    cluster = gateway.new_cluster(shutdown_on_close=False)
    print(json.dumps({"name": cluster.name}))
"""


@pytest.fixture
def cluster(hub, person):
    """A Dask cluster of the person's that keeps running (scheduler only) while the test looks at it."""
    name, token = person
    started = run(hub, name, token, CLUSTER)["name"]
    yield started
    run(hub, name, token, "import json\nfrom dask_gateway import Gateway\nwith Gateway() as g:\n"
        f"    g.stop_cluster({started!r})\nprint(json.dumps({{}}))")


def _log_in(browser, hub, name):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", hub.passwords[name])
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    return context, page


def test_an_admin_sees_the_usage_page_in_a_browser_and_a_person_gets_403(hub, admin, person, cluster, browser):
    name = person[0]
    # The cluster is in the scrape too (from the gateway's records: dask-gateway has no metrics of its own).
    assert f'pangeohub_dask_clusters{{person="{name}"}} 1.0' in metrics(hub, admin[1])[1]
    context, page = _log_in(browser, hub, admin[0])
    try:
        response = page.goto(f"{hub.url}/services/usage/")  # through the hub's OAuth: no second login
        assert response.status == 200, page.content()[:2000]
        page.locator("#people").wait_for()
        page.screenshot(path=ARTIFACTS / "admin-page.png", full_page=True)
        assert name in page.locator("#people").inner_text()
        assert name in page.locator("#top").inner_text()  # the only one who used anything
        assert "cost (USD)" in page.locator("#people").inner_text()
        clusters = page.locator("#clusters").inner_text()
        assert cluster in clusters and name in clusters  # running now, with its cost so far
        plot = page.locator("#plot-person")
        plot.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('#plot-person').naturalWidth > 200")
    finally:
        context.close()

    someone, _ = hub.add_user()
    context, page = _log_in(browser, hub, someone)
    try:
        response = page.goto(f"{hub.url}/services/usage/")
        page.screenshot(path=ARTIFACTS / "person-refused.png")
        assert response.status == 403
        assert name not in page.content()
    finally:
        context.close()


def test_a_damaged_usage_database_is_reported_and_the_platform_keeps_running(hub, admin, person):
    name, token = person
    hub.rt.paths.usage_db.write_bytes(b"not a database" * 1000)
    status, text = metrics(hub, admin[1])
    # The scrape still works (the hub's and the object store's metrics, alerts on them), and says what is wrong.
    assert status == 200
    assert "pangeohub_usage_database_readable 0.0" in text
    assert "# ERROR the usage database" in text and "cannot be read" in text and "fix:" in text
    assert "jupyterhub_total_users" in text
    code, page = get(f"{hub.url}/services/usage/", admin[1])
    assert code == 503 and "cannot be read" in page and "pangeohub restore" in page
    # People keep working; the platform's services all run.
    assert run(hub, name, token, "import json; print(json.dumps({'sum': sum(range(10))}))") == {"sum": 45}
    services = json.loads(hub.cli("status", "--json").stdout)["services"]
    assert all(s["state"] == "running" for s in services.values()), services


def test_without_the_prometheus_package_up_says_how_to_install_it(tmp_path):
    from pangeohub.config import parse_config
    from pangeohub.errors import PangeoError
    from pangeohub.services.prometheus import PrometheusService
    from pangeohub.services.runtime import Runtime

    config = parse_config(f"state_dir: {tmp_path}\nmonitoring: {{prometheus: true}}\n")
    service = Runtime(config=config).service("prometheus")
    service.search_path = str(tmp_path)  # a machine without the package
    with pytest.raises(PangeoError) as raised:
        service.prepare()  # what the supervisor calls first, so `up` stops with this message
    assert "Prometheus is not installed" in raised.value.what
    assert "apt-get install" in raised.value.fix and "install.py" in raised.value.fix
    assert isinstance(service, PrometheusService)
