"""The command line as an operator meets it: clear refusals, nothing half-done."""

import os
import subprocess
import sys

import pytest

from harness import cli


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged account")
def test_up_without_root_explains_that_isolation_needs_root(tmp_path):
    proc = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-m", "pangeohub", "up"],
        capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
    )
    assert proc.returncode == 2
    assert "needs root" in proc.stderr and "sudo pangeohub up" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_service_names_the_known_ones(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    proc = cli("--config", str(config), "logs", "nosuch", check=False)
    assert proc.returncode == 2 and "no service named 'nosuch'" in proc.stderr and "hub" in proc.stderr


def test_status_of_a_stopped_platform_exits_1(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    proc = cli("--config", str(config), "status", check=False)
    assert proc.returncode == 1 and "stopped" in proc.stdout


def test_short_password_is_refused_and_no_account_is_made(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\nusers:\n  system_prefix: ptx-\n")
    proc = cli("--config", str(config), "users", "add", "carol", "--password-stdin", input="short\n", check=False)
    assert proc.returncode == 2 and "minimum is 8" in proc.stderr
    listed = cli("--config", str(config), "users", "list", "--json").stdout
    assert "carol" not in listed


def test_adding_the_same_user_twice_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n"
                      f"users:\n  system_prefix: ptx-\n  home_root: {tmp_path}/home\n")
    cli("--config", str(config), "users", "add", "dave", "--password-stdin", input="longenough\n")
    try:
        proc = cli("--config", str(config), "users", "add", "dave", "--password-stdin", input="otherpassword\n",
                   check=False)
        assert proc.returncode == 2 and "already exists" in proc.stderr
    finally:
        cli("--config", str(config), "users", "remove", "dave", check=False)
