#!/usr/bin/env python3
"""How long backup and restore take, on a throw-away platform with people, home files and scratch objects.

    sudo /opt/pangeohub/bin/python benchmarks/backup.py [--people 5] [--mb 20]

Each person gets ``--mb`` MB of home files (random, so incompressible and not deduplicated) and as many MB of
scratch objects. Prints the seconds of: a first backup, a second one with nothing changed, a third after one
person changed 1 MB, `backup list`, a full restore onto an emptied state dir, and a one-person restore.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Platform  # noqa: E402

from pangeohub.storage.admin import admin_client  # noqa: E402
from pangeohub.targets.local.homes import ensure_home  # noqa: E402
from pangeohub.targets.sysusers import ensure_account  # noqa: E402


def timed(hub, *args: str) -> float:
    began = time.monotonic()
    hub.cli(*args, timeout=3600)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--mb", type=int, default=20)
    opts = parser.parse_args()
    dest = Path(tempfile.mkdtemp(prefix="pangeohub-backup-bench-", dir="/var/tmp"))
    hub = Platform(extra={"backup": {"destination": str(dest)}})
    try:
        hub.up()
        s3 = admin_client(hub.rt)
        names = [f"p{i}" for i in range(opts.people)]
        for name in names:
            hub.add_user(name)
            entry = ensure_account(name, hub.rt.config.users)
            ensure_home(hub.rt.config, entry)
            data = Path(entry.pw_dir) / "data.bin"
            data.write_bytes(os.urandom(opts.mb << 20))
            os.chown(data, entry.pw_uid, entry.pw_gid)
            s3.put_object(Bucket="scratch", Key=f"{name}/data.bin", Body=os.urandom(opts.mb << 20))
        figures = {"people": opts.people, "mb_home_each": opts.mb, "mb_scratch_each": opts.mb}
        figures["first_backup_s"] = timed(hub, "backup")
        figures["unchanged_backup_s"] = timed(hub, "backup")
        with open(Path(hub.system_user(names[0]).pw_dir) / "data.bin", "r+b") as handle:
            handle.write(os.urandom(1 << 20))
        figures["one_mb_changed_backup_s"] = timed(hub, "backup")
        figures["list_s"] = timed(hub, "backup", "list")
        figures["repository_mb"] = int(subprocess.run(["du", "-sm", str(dest)], capture_output=True,
                                                      text=True).stdout.split()[0])
        figures["user_restore_s"] = timed(hub, "restore", "--user", names[0])
        password = dest.parent / f"{dest.name}.password"
        shutil.copy(hub.rt.paths.secret("backup_password"), password)
        hub.down()
        shutil.rmtree(hub.rt.paths.root)
        figures["full_restore_s"] = timed(hub, "restore", "--password-file", str(password))
        password.unlink()
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}, indent=2))
    finally:
        hub.close()
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    main()
