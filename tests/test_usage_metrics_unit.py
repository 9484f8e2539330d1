"""The metrics endpoint's parts that need no running platform: totals that stay exact while only the last
hours are summed at each scrape, the certificate's expiry, and the renaming that keeps each source's process
figures apart."""

import datetime
import random
import time

from prometheus_client.parser import text_string_to_metric_families

from pangeohub.config import parse_config
from pangeohub.usage.metrics import Totals, platform_metrics
from pangeohub.usage.store import HOUR, PersonSample, UsageStore
from pangeohub.usage.web import prefixed


def _record(store, at, readings, levels=None):
    store.record([PersonSample(person, counters={"server_cpu": value, "dask_cpu": value / 2}, memory_bytes=1e8,
                               server_running=True, levels=(levels or {}).get(person, {}))
                  for person, value in readings.items()], at, 600)


def test_totals_equal_the_sum_of_the_whole_record_as_it_grows(tmp_path):
    store = UsageStore(tmp_path / "usage.sqlite")
    rng = random.Random(1)
    now = time.time()
    cpu = {"alice": 0.0, "bob": 0.0}
    for step in range(60, -1, -1):  # ten hours, a sample every ten minutes
        for person in cpu:
            cpu[person] += rng.random() * 30
        levels = {p: {"home_bytes": rng.randint(1, 10**6)} for p in cpu if rng.random() < 0.3}
        _record(store, now - step * 600, cpu, levels)
    totals = Totals(store)
    for _ in range(2):  # the second time from the kept sum of the finished hours
        got = totals.people(now)
        whole = {r["grouping"]: r for r in store.aggregate(0, now + HOUR, "person")}
        for person in cpu:
            for column in ("server_cpu_seconds", "dask_cpu_seconds", "server_seconds", "server_memory_gb_hours",
                           "home_bytes"):
                assert abs(got[person][column] - whole[person][column]) < 1e-6, (person, column)
        cpu["alice"] += 100.0
        _record(store, now + 1, cpu)  # new use after the sum was kept: a scrape sees it
        now += 1
    assert got["alice"]["server_cpu_seconds"] == whole["alice"]["server_cpu_seconds"]


def test_the_certificate_expiry_is_exported(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.example.org")])
    expires = datetime.datetime(2027, 3, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc))
            .not_valid_after(expires)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hub.example.org")]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    live = tmp_path / "state" / "tls" / "live"
    live.mkdir(parents=True)
    (live / "cert.pem").write_bytes(pem)  # where the platform installs the certificate it serves
    config = parse_config(f"state_dir: {tmp_path / 'state'}\nhub:\n  domain: hub.example.org\n  https:\n"
                          f"    mode: files\n    cert_file: {tmp_path / 'cert.pem'}\n    key_file: {tmp_path / 'key.pem'}\n")
    text, problem = platform_metrics(config)
    found = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
             for family in text_string_to_metric_families(text.decode()) for sample in family.samples}
    key = ("pangeohub_certificate_expiry_timestamp_seconds", (("domain", "hub.example.org"),))
    assert found[key] == expires.timestamp()
    # No usage recorded yet: said, not a failure of the scrape.
    assert found[("pangeohub_usage_database_readable", ())] == 0 and "no usage has been recorded" in problem


def test_each_sources_process_figures_keep_their_own_names():
    hub = (b"# HELP process_cpu_seconds_total Total user and system CPU time.\n"
           b"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.5\n"
           b"python_gc_objects_collected_total{generation=\"0\"} 12.0\njupyterhub_total_users 4.0\n")
    renamed = prefixed(hub, b"jupyterhub_").decode()
    assert "# TYPE jupyterhub_process_cpu_seconds_total counter" in renamed
    assert "\njupyterhub_process_cpu_seconds_total 3.5" in renamed
    assert 'jupyterhub_python_gc_objects_collected_total{generation="0"}' in renamed
    assert "\njupyterhub_total_users 4.0" in renamed  # the hub's own names are left as they are
    assert "\nprocess_" not in renamed


def test_the_installer_adds_prometheus_when_the_config_turns_monitoring_on(tmp_path):
    """The installer reads the config with the installed pangeohub; the package itself is already on a test
    machine (install.py --dev), so the step finds it there rather than installing it."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("installer_script", Path(__file__).parent.parent / "install.py")
    install = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(install)
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {tmp_path}\nmonitoring: {{prometheus: true}}\n")
    assert install.Installer(Path(sys.prefix), dev=False, config=str(config)).config_packages() == "already installed"
    config.write_text(f"state_dir: {tmp_path}\n")
    assert install.Installer(Path(sys.prefix), dev=False, config=str(config)).config_packages() == "none needed"
    config.write_text("monitoring: {prometheus: maybe}\n")  # `up` and `config validate` say what is wrong
    assert "does not load" in install.Installer(Path(sys.prefix), dev=False, config=str(config)).config_packages()
