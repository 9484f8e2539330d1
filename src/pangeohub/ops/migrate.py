"""`pangeohub migrate`: bring what an earlier version left (config file, databases) up to this version.

Run by the installer on upgrade, with the platform's services stopped (people's servers may run): the config
file's renamed options are rewritten (``pangeohub.config.versions``; a copy of the old file is kept), the hub
database goes through JupyterHub's own ``upgrade-db`` (which copies a SQLite file before it changes it; nothing
to do when the schema is current), and the account store's tables are brought to this version's (it adds and
drops its own tables on open). Safe to run again: each step does nothing once done.

``--dry-run`` changes nothing: it checks that this version accepts the config, and tells the installer which
files an upgrade changes, so that it can copy them first and put them back if the upgrade fails.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from pangeohub.errors import PangeoError


def plan(rt) -> dict:
    """What a migration would change, and the files to keep for a rollback. Raises if the config is refused."""
    import yaml

    from pangeohub.config.versions import CURRENT, migrate
    from pangeohub.ops.backup import databases
    from pangeohub.targets import checked_target

    checked_target(rt.config)  # what `config validate` refuses, refused before anything stops
    renames, version = [], CURRENT
    if rt.config_file is not None:
        data = yaml.safe_load(rt.config_file.read_text()) or {}
        migrated = migrate(data, str(rt.config_file))
        renames, version = migrated.renames, migrated.version
    return {
        "config_file": str(rt.config_file) if rt.config_file else None,
        "config_version": version,
        "config_renames": renames,
        "state_dir": str(rt.paths.root),
        "run_dir": str(rt.paths.run),
        "databases": {name: str(path) for name, path in databases(rt).items()},
    }


def migrate(rt, echo=print) -> None:
    from pangeohub.accounts import AccountStore
    from pangeohub.config.rewrite import rewrite

    if rt.config_file is not None:
        migrated, backup = rewrite(rt.config_file)
        for line in migrated.notices(str(rt.config_file)) if backup else []:
            echo(line.split("; ")[0])
        if backup is not None:
            echo(f"{rt.config_file}: rewritten for config version {migrated.data['version']}; the old file is "
                 f"kept as {backup}")
    hub_db = rt.paths.hub / "jupyterhub.sqlite"
    if hub_db.exists():
        upgrade_hub_db(rt, hub_db)
        echo(f"hub database {hub_db}: at this JupyterHub's schema")
    if rt.paths.accounts_db.exists():
        AccountStore(rt.paths.accounts_db).list()  # opening it brings its tables to this version's
        echo(f"account store {rt.paths.accounts_db}: at this version's tables")


def upgrade_hub_db(rt, path: Path) -> None:
    # In an empty directory: upgrade-db also reads a jupyterhub_config.py from its working directory.
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([str(rt.python_bin("jupyterhub")), "upgrade-db", f"--db=sqlite:///{path}"],
                              cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        tail = "\n".join(("  | " + line) for line in (proc.stdout + proc.stderr).splitlines()[-15:])
        raise PangeoError(f"JupyterHub could not upgrade the hub database {path}:\n{tail}",
                          "the database is unchanged, or JupyterHub kept a copy beside it "
                          "(jupyterhub.sqlite.<date>); see JupyterHub's upgrade notes for this version")
