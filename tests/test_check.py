"""`pangeohub check` runs a synthetic user end to end and tells the truth about it."""

import json
import pwd

import pytest

pytestmark = pytest.mark.platform


def test_check_passes_every_phase_and_cleans_up(platform):
    proc = platform.cli("check", "--json")
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    names = [phase["name"] for phase in report["phases"]]
    assert names == ["login", "spawn", "kernel", "imports", "home", "scratch", "gateway", "isolation", "stop"]
    details = {phase["name"]: phase["detail"] for phase in report["phases"]}
    assert "s3://" in details["scratch"] and "sum(range(1001))=500500" in details["gateway"]
    # A second synthetic person's home, temp file, scratch object and Dask cluster were each tried and refused.
    neighbour, _, isolation = details["isolation"].partition("'s ")
    assert isolation == "home, temp, scratch, cluster: each refused"
    assert platform.traces_of(neighbour) == []
    assert all(phase["ok"] and phase["seconds"] > 0 for phase in report["phases"])
    # The temporary user is gone: account store, hub, Linux account, and their home (mount, image, directory)
    # and runtime dir, which the next account to get their uid would otherwise own.
    listed = {row["name"] for row in json.loads(platform.cli("users", "list", "--json").stdout)}
    assert report["user"] not in listed
    with pytest.raises(KeyError):
        pwd.getpwnam(platform.prefix + report["user"])
    assert platform.traces_of(report["user"]) == []


def test_check_fails_and_says_why_when_the_platform_is_down(fresh_platform):
    proc = fresh_platform.cli("check", check=False)
    assert proc.returncode == 2
    assert "not running" in proc.stderr
