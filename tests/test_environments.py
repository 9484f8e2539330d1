"""Named environments through the real CLI and uv, against PyPI: build, versions, rollback, failures, removal.

`tabulate` and `inflection` are small pure-Python packages the runtime does not carry: a module that imports
in an environment and not in the runtime proves the environment is what ran.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import cli
from pangeohub.envs.layout import EnvDir

RUNTIME = Path(sys.prefix)


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    """Environment names of this run (they live in the shared runtime prefix); removed at the end."""
    made = []

    def name(label: str) -> str:
        made.append(f"t{secrets.token_hex(3)}-{label}")
        return made[-1]

    yield name
    cfg = config(tmp_path_factory.mktemp("cleanup"), [])  # this runtime's install_dir, not the default one
    for made_name in made:
        cli("--config", str(cfg), "env", "remove", made_name, "--force", check=False)
        assert not EnvDir.of(RUNTIME, made_name).path.exists()


def config(tmp_path: Path, envs: list[dict], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "install_dir": str(RUNTIME),
                                    "environments": envs}))
    return path


def runs(python: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True)


def test_build_versions_rollback_and_a_warm_second_build(tmp_path, names):
    name = names("tab")
    cfg = config(tmp_path, [{"name": name, "description": "tables", "packages": ["tabulate==0.9.0"]}])
    first = cli("--config", str(cfg), "env", "build", name)
    assert "version 1 is current" in first.stdout and "resolving" in first.stdout
    envdir = EnvDir.of(RUNTIME, name)
    # base: pangeo: the added package and the default stack import together; the runtime stays without it.
    assert runs(envdir.python(), "import tabulate, xarray, dask; print(tabulate.__version__)").stdout.strip() == "0.9.0"
    assert runs(RUNTIME / "bin" / "python", "import tabulate").returncode != 0
    assert "tabulate==0.9.0" in (envdir.version_dir(1) / "requirements.lock").read_text()
    assert "uv pip install" in (envdir.version_dir(1) / "build.log").read_text()

    second = cli("--config", str(cfg), "env", "build", name)
    assert "version 2 is current" in second.stdout
    # One shared cache: the second version's files are the first's, hard-linked, not copies.
    module = next(envdir.version_dir(1).glob("lib/python3*/site-packages/tabulate/__init__.py"))
    again = envdir.version_dir(2) / module.relative_to(envdir.version_dir(1))
    assert os.stat(module).st_ino == os.stat(again).st_ino

    listed = json.loads(cli("--config", str(cfg), "env", "list", "--json").stdout)
    [row] = listed
    assert row["current"] == 2 and [v["version"] for v in row["versions"]] == [1, 2]
    assert all(v["size"] > 0 for v in row["versions"])
    assert "used by: -" in cli("--config", str(cfg), "env", "list").stdout

    assert "now serves version 1" in cli("--config", str(cfg), "env", "rollback", name).stdout
    assert envdir.current() == 1
    refused = cli("--config", str(cfg), "env", "rollback", name, "7", check=False)
    assert refused.returncode == 2 and "no version 7" in refused.stderr and "1, 2" in refused.stderr
    spec = json.loads((envdir.kernels_parent / "kernels" / name / "kernel.json").read_text())
    assert spec["display_name"] == f"Python ({name})" and "/current/bin/python" in spec["argv"][0]


def test_failed_builds_keep_the_serving_version_and_say_why(tmp_path, names):
    name = names("fail")
    good = config(tmp_path, [{"name": name, "packages": ["tabulate==0.9.0"]}])
    cli("--config", str(good), "env", "build", name)
    envdir = EnvDir.of(RUNTIME, name)

    missing = config(tmp_path, [{"name": name, "packages": ["pangeohub-no-such-package-zz"]}], "missing.yaml")
    proc = cli("--config", str(missing), "env", "build", name, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pangeohub-no-such-package-zz" in proc.stderr and "version 1 still serves" in proc.stderr
    assert envdir.current() == 1 and envdir.versions() == [1]
    assert not envdir.version_dir(2).exists()  # nothing half-made
    assert "FAILED" in cli("--config", str(missing), "env", "list").stdout

    conflict = config(tmp_path, [{"name": name, "packages": ["tabulate==0.9.0", "tabulate==0.8.10"]}], "pins.yaml")
    proc = cli("--config", str(conflict), "env", "build", name, check=False)
    assert proc.returncode == 2 and "tabulate" in proc.stderr and "version 1 still serves" in proc.stderr
    assert envdir.versions() == [1] and runs(envdir.python(), "import tabulate").returncode == 0


def test_a_bare_environment_has_only_its_packages(tmp_path, names):
    name = names("bare")
    cfg = config(tmp_path, [{"name": name, "base": "none", "packages": ["inflection==0.5.1"]}])
    cli("--config", str(cfg), "env", "build", name)
    python = EnvDir.of(RUNTIME, name).python()
    assert runs(python, "import inflection, ipykernel").returncode == 0
    assert "No module named 'xarray'" in runs(python, "import xarray").stderr


def test_a_group_nobody_is_in_is_refused(tmp_path, names):
    name = names("grp")
    cfg = config(tmp_path, [{"name": name, "packages": ["tabulate"], "groups": ["oceanz"]}])
    proc = cli("--config", str(cfg), "env", "build", name, check=False)
    assert proc.returncode == 2 and "'oceanz'" in proc.stderr and "--group oceanz" in proc.stderr
    assert not EnvDir.of(RUNTIME, name).path.exists()


def test_unknown_environment_names_are_refused(tmp_path):
    cfg = config(tmp_path, [])
    for args in (["build", "nope"], ["rollback", "nope"], ["remove", "nope"]):
        proc = cli("--config", str(cfg), "env", *args, check=False)
        assert proc.returncode == 2 and "'nope'" in proc.stderr, args
