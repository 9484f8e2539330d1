"""The config file through the real CLI: valid files pass, each kind of mistake gets a precise message."""

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, strategies as st

from harness import cli
from pangeohub.config import Config, parse_config
from pangeohub.errors import PangeoError
from pangeohub.units import format_duration, format_size, parse_duration, parse_size

FIXTURES = Path(__file__).parent / "config"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.ok.yaml")), ids=lambda p: p.name)
def test_valid_config_files(path):
    proc = cli("config", "validate", str(path), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.error.*.yaml")), ids=lambda p: p.name)
def test_invalid_config_files_name_the_field_value_and_fix(path):
    expected = [line.split(":", 1)[1].strip() for line in path.read_text(errors="replace").splitlines()
                if line.startswith("# expect:")]
    assert expected, f"{path.name} says what its error must mention"
    proc = cli("config", "validate", str(path), check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr
    for fragment in expected:
        assert fragment in proc.stderr, f"{fragment!r} missing from:\n{proc.stderr}"


def test_debug_shows_the_traceback():
    proc = cli("--debug", "config", "validate", str(FIXTURES / "port.error.out-of-range.yaml"), check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_config_file_is_a_clear_error(tmp_path):
    proc = cli("--config", str(tmp_path / "nope.yaml"), "config", "show", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_config_env_variable_selects_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("hub:\n  port: 9123\n")
    monkeypatch.setenv("PANGEOHUB_CONFIG", str(path))
    shown = yaml.safe_load(cli("config", "show").stdout)
    assert shown["hub"]["port"] == 9123


def test_show_prints_every_default_in_human_units(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("hub:\n  start_timeout: 90s\n")
    shown = yaml.safe_load(cli("--config", str(path), "config", "show").stdout)
    assert shown["hub"]["start_timeout"] == "90s"
    assert shown["auth"]["failed_login_window"] == "15m"
    assert shown["users"]["system_prefix"] == "jupyter-"
    # What `show` prints is itself a valid config that means the same thing.
    assert parse_config(yaml.safe_dump(shown)) == parse_config(path.read_text())


def test_schema_documents_every_field():
    schema = json.loads(cli("config", "schema").stdout)
    defs = schema.get("$defs", {})

    def undocumented(properties, where):
        return [f"{where}.{name}" for name, prop in properties.items()
                if "description" not in prop and "$ref" not in prop and "allOf" not in prop]

    missing = undocumented(schema["properties"], "config")
    for name, model in defs.items():
        missing += undocumented(model.get("properties", {}), name)
    assert not missing, f"fields without a description: {missing}"
    assert schema["additionalProperties"] is False


def test_validate_does_not_modify_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    text = "# keep my comment\nhub:\n  port: 8100\n"
    path.write_text(text)
    cli("config", "validate", str(path))
    assert path.read_text() == text


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trips(nbytes):
    assert abs(parse_size(format_size(nbytes)) - nbytes) <= max(1, nbytes * 0.05)


@given(st.integers(min_value=0, max_value=10**7))
def test_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text,expected", [("2G", 2 * 2**30), ("512M", 512 * 2**20), ("1.5T", int(1.5 * 2**40)),
                                           ("10GiB", 10 * 2**30), ("100", 100), (4096, 4096)])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["2X", "-1G", "G", "", True, [1]])
def test_bad_sizes_say_what_is_expected(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_a_pangeo_error(text):
    try:
        parse_config(text)
    except PangeoError:
        pass


def test_defaults_are_a_working_config():
    config = Config()
    assert config.hub.port == 8000 and config.hub.ip == "0.0.0.0"
