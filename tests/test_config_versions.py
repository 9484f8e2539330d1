"""Config files written for an earlier version: read with a notice per renamed option, rewritten on request with
the comments kept and the old file kept beside it; a file newer than the code is one clear error."""

import os
import stat

import yaml

from harness import cli
from pangeohub.config import parse_config
from pangeohub.config.versions import CURRENT, RENAMES

VERSION_1 = """\
# the research group's hub
hub:
  port: 8123   # the port everyone bookmarked
storage:
  scratch_bucket: group-scratch
  expiry: 3d   # workshop data goes quickly
  port: 8444
"""


def test_options_under_their_version_1_names_are_read_under_the_new_ones_with_a_notice(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VERSION_1)
    proc = cli("--config", str(path), "config", "show")
    shown = yaml.safe_load(proc.stdout)
    assert shown["storage"]["scratch"]["bucket"] == "group-scratch"
    assert shown["storage"]["scratch"]["expiry"] == "3d"
    assert shown["version"] == CURRENT
    notices = [line for line in proc.stderr.splitlines() if "is now" in line]
    assert notices == [
        f"{path}: 'storage.scratch_bucket' is now 'storage.scratch.bucket' (config version {CURRENT}); "
        "`pangeohub config migrate` rewrites the file",
        f"{path}: 'storage.expiry' is now 'storage.scratch.expiry' (config version {CURRENT}); "
        "`pangeohub config migrate` rewrites the file",
    ]
    assert path.read_text() == VERSION_1  # reading never rewrites


def test_migrate_rewrites_the_file_keeps_comments_and_a_copy_and_means_the_same(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(VERSION_1)
    path.chmod(0o640)
    proc = cli("config", "migrate", str(path))
    assert "renamed storage.scratch_bucket to storage.scratch.bucket" in proc.stdout
    assert "renamed storage.expiry to storage.scratch.expiry" in proc.stdout
    backup = tmp_path / "config.yaml.v1.bak"
    assert f"the old file is kept as {backup}" in proc.stdout
    assert backup.read_text() == VERSION_1
    text = path.read_text()
    assert "# the research group's hub" in text and "# the port everyone bookmarked" in text
    assert "scratch_bucket" not in text and f"version: {CURRENT}" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert parse_config(text) == parse_config(VERSION_1)
    # Read again: no notice, and a second migrate changes nothing.
    assert "is now" not in cli("--config", str(path), "config", "show").stderr
    again = cli("config", "migrate", str(path))
    assert "unchanged" in again.stdout and path.read_text() == text


def test_a_file_of_the_current_version_is_left_alone(tmp_path):
    path = tmp_path / "config.yaml"
    text = f"version: {CURRENT}\nhub:\n  port: 8100\n"
    path.write_text(text)
    assert "unchanged" in cli("config", "migrate", str(path)).stdout
    assert path.read_text() == text and sorted(os.listdir(tmp_path)) == ["config.yaml"]


def test_a_file_without_a_version_gets_one(tmp_path):
    """No `version:` means version 1: the file is stamped, so that a later rename knows which names it uses."""
    path = tmp_path / "config.yaml"
    path.write_text("hub:\n  port: 8100\n")
    assert "now config version 2 (was 1)" in cli("config", "migrate", str(path)).stdout
    assert yaml.safe_load(path.read_text()) == {"version": CURRENT, "hub": {"port": 8100}}


def test_migrate_refuses_a_newer_file_and_changes_nothing(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("version: 9\n")
    proc = cli("config", "migrate", str(path), check=False)
    assert proc.returncode == 2 and "config version 9 is newer than this pangeohub understands" in proc.stderr
    assert path.read_text() == "version: 9\n" and sorted(os.listdir(tmp_path)) == ["config.yaml"]


def test_every_rename_points_at_an_option_that_exists():
    from pangeohub.config import Config
    from pangeohub.config import _model_at

    for version, renames in RENAMES.items():
        assert version < CURRENT
        for _old, new in renames:
            *parents, name = new.split(".")
            assert name in _model_at(Config, parents).model_fields, new
