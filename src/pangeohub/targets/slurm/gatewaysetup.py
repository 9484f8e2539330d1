"""What this machine needs before the Dask Gateway can start jobs on Slurm: done by `up`, as root.

- The gateway's own account (``target.slurm.gateway.user``): a system account with no login, made if missing.
- The group of the people it may start jobs as (``target.slurm.gateway.people_group``): with platform accounts
  the platform makes it and adds each person as it makes their account; a site's group must exist already.
- The sudo rule (``pangeohub.targets.slurm.sudoers``) in /etc/sudoers.d, checked with ``visudo`` before it is
  installed: a broken file there would break sudo for the whole machine. A site that manages sudoers itself
  installs the same text (`pangeohub slurm sudoers`); `up` then finds it in place and leaves it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from pangeohub.errors import PangeoError
from pangeohub.targets.slurm.sudoers import launcher_path, sudoers_rules
from pangeohub.targets.sysusers import run_locked

SUDOERS_DIR = Path("/etc/sudoers.d")


def sudoers_file(config) -> Path:
    # No dot in the name: sudo skips files in sudoers.d whose names contain one.
    user = config.target.slurm.gateway.user
    return SUDOERS_DIR / (user if user.startswith("pangeohub") else f"pangeohub-{user}")


def rules(config) -> str:
    gateway = config.target.slurm.gateway
    return sudoers_rules(gateway.user, gateway.people_group, launcher_path(config))


def prepare_gateway(config) -> None:
    gateway = config.target.slurm.gateway
    ensure_gateway_account(gateway.user, config.state_dir)
    if config.target.slurm.accounts == "platform":
        ensure_group(gateway.people_group)
    else:
        try:
            grp.getgrnam(gateway.people_group)
        except KeyError:
            raise PangeoError(f"the group {gateway.people_group} (target.slurm.gateway.people_group) does not exist",
                              "with site accounts the gateway may start Dask jobs only as members of a site group: "
                              "name the site's group of the hub's people, or create it") from None
    install_sudoers(config)


def ensure_gateway_account(name: str, state_dir: Path) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        proc = run_locked(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                           str(Path(state_dir) / "gateway"), "--shell", "/usr/sbin/nologin", name])
        if proc.returncode not in (0, 9):
            raise PangeoError(f"could not create the gateway's account {name}: {proc.stderr.strip()}",
                              "create it (a system account), or name an existing one in target.slurm.gateway.user")
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise PangeoError(f"the gateway's account {name} has uid 0", "name an unprivileged account")
    return entry


def ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        proc = run_locked(["groupadd", "--system", name])
        if proc.returncode not in (0, 9):
            raise PangeoError(f"could not create the group {name}: {proc.stderr.strip()}") from None


def join_people_group(account: str, group: str) -> None:
    """Add a platform-made account to the people group (made first if missing): the gateway may then start
    Dask jobs as it."""
    ensure_group(group)
    entry = pwd.getpwnam(account)
    if grp.getgrnam(group).gr_gid in os.getgrouplist(account, entry.pw_gid):
        return
    proc = run_locked(["gpasswd", "--add", account, group])
    if proc.returncode:
        raise PangeoError(f"could not add {account} to the group {group}: {proc.stderr.strip()}")


def install_sudoers(config) -> None:
    text = rules(config)
    target = sudoers_file(config)
    if target.exists() and target.read_text() == text:
        return
    if not shutil.which("visudo") or not SUDOERS_DIR.is_dir():
        raise PangeoError("sudo is not installed: the Dask Gateway starts people's jobs through it",
                          "install sudo (Debian: apt-get install sudo), or set gateway.enabled: false")
    with tempfile.NamedTemporaryFile("w", dir=SUDOERS_DIR, prefix=".pangeohub-", delete=False) as handle:
        handle.write(text)
    candidate = Path(handle.name)
    try:
        candidate.chmod(0o440)
        check = subprocess.run(["visudo", "-cq", "-f", str(candidate)], capture_output=True, text=True)
        if check.returncode:
            raise PangeoError(f"the generated sudo rule does not pass visudo: {check.stderr.strip() or check.stdout}",
                              "see `pangeohub slurm sudoers`")
        os.replace(candidate, target)
    finally:
        candidate.unlink(missing_ok=True)

