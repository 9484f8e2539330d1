"""``pangeohub loadtest`` as an operator runs it: simulated people, a report and a plot, nothing left behind."""

import json
import pwd
from pathlib import Path

import pytest

pytestmark = pytest.mark.platform


def test_loadtest_reports_every_phase_and_removes_its_people(platform, tmp_path):
    proc = platform.cli("loadtest", "--users", "3", "--ramp", "1", "--api-every", "0.5", "--out", str(tmp_path))
    assert "report:" in proc.stdout and "hub API" in proc.stdout
    [report_file] = tmp_path.glob("loadtest-*.json")
    [plot_file] = tmp_path.glob("loadtest-*.png")
    report = json.loads(report_file.read_text())
    assert report["ok"] and report["failures"] == []
    for phase in ("login", "spawn", "kernel", "execute", "stop"):
        stats = report["phases"][phase]
        assert stats["count"] == 3 and stats["failures"] == 0
        assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    # The hub API was timed all along, as an admin's page meets it, and answered every time.
    api = report["hub_api"]
    assert api["request"] == "GET /hub/api/users" and api["failures"] == 0 and api["count"] >= 3
    assert 0 < api["p50"] <= api["p95"] <= api["max"]
    spawns = [e["at"] for j in report["journeys"] for e in j["events"] if e["phase"] == "spawn"]
    assert min(s["at"] for s in api["samples"]) <= min(spawns)  # from before the first arrival
    assert report["machine"]["cpus"] and len(report["machine"]["loadavg_before"]) == 3
    assert plot_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The temporary people are gone: from the account store, the hub and the Linux accounts.
    listed = {row["name"] for row in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert not [name for name in listed if name.startswith("lt")]
    assert not [e for e in pwd.getpwall() if e.pw_name.startswith(platform.prefix + "lt")]
    # Their homes (mount, image, directory) and runtime dirs too: a later account with their uid would own them.
    left = [path.name for path in (platform.root / "home").glob(platform.prefix + "lt*")]
    left += [path.name for path in (platform.root / "state" / "homes").glob(platform.prefix + "lt*")]
    left += [path.name for path in (platform.root / "state" / "run" / "users").glob(platform.prefix + "lt*")]
    left += [point for point in _mounts() if f"/{platform.prefix}lt" in point]
    assert left == []


def _mounts() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


@pytest.mark.parametrize("args, message", [
    (["--users", "0", "--ramp", "1"], "--users is 0"),
    (["--users", "2", "--ramp", "-1"], "cannot be negative"),
    (["--users", "2", "--ramp", "1", "--gateway", "3"], "--gateway is 3"),
    (["--users", "2", "--ramp", "1", "--api-every", "0"], "--api-every"),
])
def test_loadtest_refuses_what_it_cannot_run_before_creating_anyone(platform, args, message):
    names = lambda: {row["name"] for row in json.loads(platform.cli("users", "list", "--json").stdout)}  # noqa: E731
    before = names()
    proc = platform.cli("loadtest", *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert names() == before
