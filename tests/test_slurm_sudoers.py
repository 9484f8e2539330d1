"""The sudo rules for the Dask Gateway's Slurm launcher: exactly one command, as platform people only."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.sudoers import sudoers_rules

LAUNCHER = "/opt/pangeohub/bin/dask-gateway-jobqueue-launcher"


def test_rules_name_one_command_as_the_people_group_never_root():
    rules = sudoers_rules("pangeohub-gw", "pangeohub-people", LAUNCHER)
    assert "Runas_Alias PANGEOHUB_PEOPLE_PANGEOHUB_GW = %pangeohub-people, !root" in rules
    assert f'Cmnd_Alias PANGEOHUB_LAUNCHER_PANGEOHUB_GW = {LAUNCHER} ""' in rules
    assert "pangeohub-gw ALL = (PANGEOHUB_PEOPLE_PANGEOHUB_GW) NOPASSWD: PANGEOHUB_LAUNCHER_PANGEOHUB_GW" in rules
    assert "ALL = (ALL" not in rules and "SETENV" not in rules


@pytest.mark.parametrize("args", [("gw user", "people", LAUNCHER), ("gw", "people,ALL", LAUNCHER),
                                  ("gw", "people", "relative/launcher"), ("gw", "people", "/bin/* ")])
def test_names_that_would_widen_the_rule_are_refused(args):
    with pytest.raises(PangeoError):
        sudoers_rules(*args)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("visudo"),
                    reason="installing a sudoers rule needs root and sudo (install.py --dev installs it)")
def test_gateway_account_cannot_use_the_rule_to_become_root_or_an_outsider(tmp_path):
    tag = os.getpid() % 100000
    gw, person, outsider, group = f"phgw{tag}", f"phpp{tag}", f"phout{tag}", f"phpeople{tag}"
    launcher = Path(tempfile.mkdtemp(prefix="pangeohub-test-sudo-", dir="/var/tmp")) / "launcher"
    launcher.parent.chmod(0o755)
    launcher.write_text("#!/bin/sh\nid -un\n")
    launcher.chmod(0o755)
    rule = Path(f"/etc/sudoers.d/pangeohub-test-{tag}")
    try:
        subprocess.run(["groupadd", group], check=True)
        for name in (gw, outsider):
            subprocess.run(["useradd", "-M", name], check=True)
        subprocess.run(["useradd", "-M", "-G", group, person], check=True)
        text = sudoers_rules(gw, group, str(launcher))
        candidate = tmp_path / "rule"
        candidate.write_text(text)
        # visudo first: a broken file in sudoers.d would break sudo for the whole machine.
        subprocess.run(["visudo", "-cq", "-f", str(candidate)], check=True)
        rule.write_text(text)
        rule.chmod(0o440)

        def as_gw(*argv):
            return subprocess.run([shutil.which("runuser"), "-u", gw, "--", "sudo", "-n", *argv],
                                  capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        ok = as_gw("-Hu", person, str(launcher))
        assert ok.returncode == 0 and ok.stdout.strip() == person
        for attack in (("-u", "root", str(launcher)), ("-u", outsider, str(launcher)),
                       ("-u", person, "/bin/sh", "-c", "id"), ("-u", person, str(launcher), "extra"),
                       ("-u", person, "-E", str(launcher)), ("/bin/sh",)):
            assert as_gw(*attack).returncode != 0, attack
    finally:
        rule.unlink(missing_ok=True)
        for name in (gw, outsider, person):
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(launcher.parent, ignore_errors=True)
