"""The usage record and its reports, through the real store and the real CLI (no platform needed)."""

import json
import time

import pytest
import yaml

from harness import cli
from pangeohub.usage.store import HOUR, PersonSample, UsageStore, hour_of


@pytest.fixture
def site(tmp_path):
    """A config whose state dir holds a usage database, and the store."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"),
        "costs": {"currency": "EUR", "prices": {"core_hour": 0.5, "memory_gb_hour": 0.1,
                                                "home_gb_month": 2.0, "object_gb_month": 1.0}},
    }))
    (tmp_path / "state").mkdir()
    return config, UsageStore(tmp_path / "state" / "usage.sqlite")


def sample(person, server_cpu=0.0, dask_cpu=0.0, memory=0.0, groups=(), **kw):
    return PersonSample(person=person, counters={"server_cpu": server_cpu, "dask_cpu": dask_cpu},
                        memory_bytes=memory, groups=list(groups), **kw)


def test_counter_increases_are_added_once_even_across_a_sampler_restart(tmp_path):
    path = tmp_path / "usage.sqlite"
    at = hour_of(time.time()) - 2 * HOUR
    UsageStore(path).record([sample("ann", server_cpu=100.0)], at, 60)  # first reading: a baseline only
    UsageStore(path).record([sample("ann", server_cpu=130.0)], at + 60, 60)
    # A new store object (the sampler restarted) reads the last reading from the database, not from memory.
    UsageStore(path).record([sample("ann", server_cpu=150.0)], at + 120, 60)
    # The same reading again (a sample repeated after a crash) adds nothing.
    UsageStore(path).record([sample("ann", server_cpu=150.0)], at + 180, 60)
    rows = UsageStore(path).rows(at, at + HOUR)
    assert [r["server_cpu_seconds"] for r in rows] == [50.0]
    assert rows[0]["samples"] == 4


def test_a_counter_that_starts_again_from_zero_is_new_use(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    at = hour_of(time.time()) - HOUR
    for offset, reading in ((0, 500.0), (60, 520.0), (120, 7.0)):  # the person's cgroup was made anew
        store.record([sample("ann", server_cpu=reading)], at + offset, 60)
    assert store.rows(at, at + HOUR)[0]["server_cpu_seconds"] == 27.0


def test_downtime_is_a_gap_and_levels_are_not_invented_over_it(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    at = hour_of(time.time()) - 3 * HOUR
    gb = 1e9
    store.record([sample("ann", memory=2 * gb, server_running=True)], at, 60)
    store.record([sample("ann", memory=2 * gb, server_running=True)], at + 60, 60)
    # Down for two hours: the next sample counts one interval, not the two hours it was away.
    store.record([sample("ann", memory=2 * gb, server_running=True)], at + 2 * HOUR + 60, 60)
    rows = store.rows(at, at + 3 * HOUR)
    assert sum(r["server_memory_gb_hours"] for r in rows) == pytest.approx(3 * 2 * 60 / HOUR)
    assert sum(r["server_seconds"] for r in rows) == 180
    assert store.gaps(at, at + 3 * HOUR) == [(at + 60, at + 2 * HOUR + 60)]


def test_server_starts_and_logins_are_counted_once_each(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    at = hour_of(time.time()) - HOUR
    store.record([sample("ann", server_running=True, server_started_at=at - 5, last_login=at - 9)], at, 60)
    store.record([sample("ann", server_running=True, server_started_at=at - 5, last_login=at - 9)], at + 60, 60)
    store.record([sample("ann", server_running=True, server_started_at=at + 90, last_login=at + 80)], at + 120, 60)
    row = store.rows(at, at + HOUR)[0]
    assert (row["server_starts"], row["logins"]) == (2, 2)


def fill(store, days=3):
    """ann (group ocean) and bob (groups ocean, ice), a known use per hour for ``days`` days up to now."""
    now = time.time()
    start = hour_of(now) - days * 24 * HOUR
    cpu = {"ann": 0.0, "bob": 0.0}
    at = start
    while at <= now:
        cpu["ann"] += 36.0   # 0.01 core-hours an hour
        cpu["bob"] += 72.0
        store.record([
            sample("ann", server_cpu=cpu["ann"], dask_cpu=cpu["ann"] * 2, memory=1e9, groups=["ocean"],
                   server_running=True, profile="small", levels={"home_bytes": 2_000_000, "scratch_bytes": 5}),
            sample("bob", server_cpu=cpu["bob"], memory=0, groups=["ocean", "ice"], profile="large",
                   server_running=True, levels={"home_bytes": 1_000_000, "scratch_bytes": 7}),
        ], at, 3600)
        at += 3600
    return start


def test_report_json_by_person_includes_the_current_hour(site):
    config, store = site
    start = fill(store)
    hours = (hour_of(time.time()) - start) // HOUR  # increases after the first (baseline) sample
    rows = json.loads(cli("usage", "report", "--since", "30d", "--format", "json", config=config).stdout)
    by_name = {r["person"]: r for r in rows}
    assert set(by_name) == {"ann", "bob"}
    ann = by_name["ann"]
    for key in ("server_cpu_seconds", "server_memory_gb_hours", "dask_core_hours", "dask_memory_gb_hours",
                "home_bytes", "scratch_bytes"):
        assert key in ann
    assert ann["server_cpu_seconds"] == pytest.approx(36.0 * hours)
    assert ann["dask_core_hours"] == pytest.approx(72.0 * hours / HOUR)
    assert ann["server_memory_gb_hours"] == pytest.approx(hours + 1)
    assert (ann["home_bytes"], ann["scratch_bytes"]) == (2_000_000, 5)
    assert "cost" not in ann
    # The current hour is in: leaving it out (--until its start) makes the sum one hour's increase smaller.
    until = time.strftime("%Y-%m-%dT%H:00:00", time.gmtime(hour_of(time.time())))
    earlier = json.loads(cli("usage", "report", "--until", until, "--format", "json", config=config).stdout)
    assert {r["person"]: r for r in earlier}["ann"]["server_cpu_seconds"] == pytest.approx(36.0 * (hours - 1))


def test_report_by_group_profile_and_day(site):
    config, store = site
    fill(store, days=2)
    groups = {r["group"]: r for r in json.loads(cli("usage", "report", "--by", "group", "--format", "json",
                                                    config=config).stdout)}
    assert groups["ocean"]["people"] == 2 and groups["ice"]["people"] == 1
    assert groups["ice"]["server_cpu_seconds"] < groups["ocean"]["server_cpu_seconds"]
    assert groups["ocean"]["home_bytes"] == 3_000_000
    profiles = json.loads(cli("usage", "report", "--by", "profile", "--format", "json", config=config).stdout)
    assert sorted(r["profile"] for r in profiles) == ["large", "small"]
    days = json.loads(cli("usage", "report", "--by", "day", "--format", "json", config=config).stdout)
    assert len(days) in (3, 4) and all(r["day"].count("-") == 2 for r in days)
    only_ice = json.loads(cli("usage", "report", "--group", "ice", "--format", "json", config=config).stdout)
    assert [r["person"] for r in only_ice] == ["bob"]


def test_report_cost_csv_table_and_plot(site, tmp_path):
    config, store = site
    fill(store, days=1)
    rows = json.loads(cli("usage", "report", "--cost", "--format", "json", config=config).stdout)
    ann = {r["person"]: r for r in rows}["ann"]
    cpu_hours = ann["server_cpu_seconds"] / HOUR + ann["dask_core_hours"]
    assert ann["currency"] == "EUR"
    assert ann["cost"] >= round(cpu_hours * 0.5 + ann["server_memory_gb_hours"] * 0.1, 4) > 0
    text = cli("usage", "report", "--format", "csv", config=config).stdout.splitlines()
    assert text[0].startswith("person,people,server_cpu_seconds") and len(text) == 3
    png = tmp_path / "use.png"
    table = cli("usage", "report", "--cost", "--plot", str(png), config=config).stdout
    assert "ann" in table and "EUR" in table and "active people: 2 in 24 h" in table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_report_requests_are_clear_errors(site):
    config, store = site
    fill(store, days=1)
    for args, words in (
        (["--since", "2026-01-02", "--until", "2026-01-01"], "is not before --until"),
        (["--since", "yesterday"], "neither a date nor a duration"),
        (["--person", "nobody"], "no usage recorded for nobody"),
        (["--group", "nogroup"], "no usage recorded for group nogroup"),
        (["--by", "planet"], "--by 'planet' is not a grouping"),
        (["--format", "xml"], "--format 'xml' is not a format"),
    ):
        proc = cli("usage", "report", *args, config=config, check=False)
        assert proc.returncode == 2 and words in proc.stderr and "fix:" in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_a_corrupted_usage_database_is_a_clear_error(site):
    config, store = site
    fill(store, days=1)
    store.path.write_bytes(b"this is not a database" * 100)
    proc = cli("usage", "report", config=config, check=False)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "move it aside" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cost_estimate_sizes_the_plan_from_the_profile_and_workers(site):
    config, _ = site
    plan = json.loads(cli("cost", "estimate", "--people", "60", "--hours", "3", "--profile", "small",
                          "--format", "json", config=config).stdout)
    bigger = json.loads(cli("cost", "estimate", "--people", "60", "--hours", "3", "--profile", "small",
                            "--cluster-workers", "4", "--format", "json", config=config).stdout)
    # 60 people with 2 GB each and 0.1 GiB of platform: at least 120 GB; Dask workers add cores and memory.
    assert plan["memory_needed_gib"] >= 60 * (2e9 + 0.1 * 2**30) / 2**30
    assert bigger["cores_needed"] > plan["cores_needed"] and bigger["memory_needed_gib"] > plan["memory_needed_gib"]
    assert plan["prices_as_of"] and plan["sources"]
    for item in plan["instances"]:
        assert item["machines"] * item["memory_gib"] >= plan["memory_needed_gib"]
        assert item["machines"] * item["cpus"] >= plan["cores_needed"]
        assert item["cost"] == pytest.approx(item["machines"] * item["hourly"] * 3, abs=0.01)
    proc = cli("cost", "estimate", "--people", "6", "--hours", "1", "--profile", "huge", config=config, check=False)
    assert proc.returncode == 2 and "no profile 'huge'" in proc.stderr and "small" in proc.stderr
