"""What the resources feature adds to a server start: home image + mount, shared links, cgroup.

Run as root: ``python benchmarks/resources.py``. Creates throw-away Linux accounts and state in /var/tmp,
prints milliseconds per step, and removes everything it made.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pangeohub.config import Config
from pangeohub.targets.local import homes, lifecycle
from pangeohub.targets.local.hook import prepare_user
from pangeohub.targets.sysusers import ensure_account


def main(users: int = 5) -> None:
    root = Path(tempfile.mkdtemp(prefix="pangeohub-bench-", dir="/var/tmp"))
    root.chmod(0o755)
    prefix = f"bn{secrets.token_hex(2)}-"
    config = Config.model_validate({
        "state_dir": str(root / "state"), "install_dir": sys.prefix,
        "users": {"system_prefix": prefix, "home_root": str(root / "home")},
    })
    first, again, remount = [], [], []
    try:
        lifecycle.preflight(config)
        for i in range(users):
            account = ensure_account(f"u{i}", config.users)
            started = time.perf_counter()
            prepare_user(config, account, config.profiles[0], admin=False)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            prepare_user(config, account, config.profiles[0], admin=False)
            again.append(time.perf_counter() - started)
            homes.release_home(config, Path(account.pw_dir))
            started = time.perf_counter()
            prepare_user(config, account, config.profiles[0], admin=False)
            remount.append(time.perf_counter() - started)
    finally:
        lifecycle.release(config)
        for i in range(users):
            subprocess.run(["userdel", "-r", f"{prefix}u{i}"], capture_output=True)
        subprocess.run(["groupdel", f"{prefix}admins"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    ms = lambda xs: f"median {1000 * statistics.median(xs):.0f} ms, max {1000 * max(xs):.0f} ms"  # noqa: E731
    print(f"resources spawn hook, {users} users, quota {config.homes.model_dump(mode='json')['quota']}:")
    print(f"  first start (mkfs + mount + links + cgroup): {ms(first)}")
    print(f"  restart, home still mounted:                 {ms(again)}")
    print(f"  start after `down` (mount again):            {ms(remount)}")


if __name__ == "__main__":
    main()
