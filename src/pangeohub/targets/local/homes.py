"""Home quotas that hold on any ext4/xfs machine: each home is its own filesystem.

A user's home is a sparse file ``<images_dir>/<account>.img`` of exactly the quota's size, formatted ext4 and
loop-mounted (nosuid, nodev) at the home directory. The kernel refuses any write past the end of that
filesystem with ENOSPC, whoever writes and however; nothing outside the image is touched, so existing files
stay intact. The image only takes the disk space actually used. It is mounted when the server starts (the
spawn hook) and unmounted by ``pangeohub down`` and ``users remove``; a server restart, a hub restart or
``down``/``up`` keep its content. A larger quota in the config grows existing images at their next mount.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from pangeohub import privileged
from pangeohub.errors import PangeoError

MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"


def images_dir(config) -> Path:
    return config.homes.images_dir or config.state_dir / "homes"


def image_path(config, account: str) -> Path:
    return images_dir(config) / f"{account}.img"


def quota_problems(config) -> list[str]:
    """Why this machine cannot enforce home quotas (empty: it can, or quotas are off)."""
    if not config.homes.quota:
        return []
    problems = []
    for tool in ("mkfs.ext4", "mount", "umount", "resize2fs", "dumpe2fs"):
        if not shutil.which(tool):
            problems.append(f"home quotas need `{tool}` (Debian package e2fsprogs / mount)")
    if not Path("/dev/loop-control").exists():
        problems.append("home quotas need loop devices, and /dev/loop-control is missing (modprobe loop)")
    if os.geteuid() != 0:
        problems.append("home quotas need root to mount each home")
    elif not problems:
        problems += _image_size_problems(config)
    return problems


def _image_size_problems(config) -> list[str]:
    """Whether the filesystem that keeps the images can hold one of ``homes.quota``'s size at all (ext4 holds
    at most 16T per file): asked of the filesystem itself, with a sparse file that takes no space."""
    from pangeohub.units import format_size

    directory = images_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    with tempfile.TemporaryFile(dir=directory) as handle:
        try:
            os.ftruncate(handle.fileno(), config.homes.quota)
        except OSError as exc:
            return [f"the filesystem of {directory} cannot hold a home image of {format_size(config.homes.quota)} "
                    f"({exc.strerror}; ext4 holds at most 16T per file): lower homes.quota, or keep the images on "
                    "a filesystem that can (homes.images_dir)"]
    return []


def require_quotas(config) -> None:
    problems = quota_problems(config)
    if problems:
        raise PangeoError(
            "this machine cannot enforce the home quota (homes.quota = "
            f"{config.homes.model_dump(mode='json')['quota']}):\n" + "\n".join(f"  - {p}" for p in problems),
            "do what each line says, or turn quotas off explicitly with `homes: {quota: 0}`",
        )


def mounted_homes() -> dict[str, str]:
    """{mount point: loop device} of every loop-mounted filesystem."""
    found = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        source = after.split(" ")[1] if after.count(" ") >= 1 else ""
        if source.startswith("/dev/loop"):
            found[before.split(" ")[4].replace("\\040", " ")] = source
    return found


def backing_file(device: str) -> str | None:
    try:
        text = Path(f"/sys/block/{Path(device).name}/loop/backing_file").read_text().strip()
    except OSError:
        return None
    return text.removesuffix(" (deleted)")  # an image deleted while mounted is still this image


def mount_points(image: Path) -> list[str]:
    """Where ``image`` is mounted (normally at most once: at its account's home)."""
    return [point for point, device in mounted_homes().items() if backing_file(device) == str(image)]


def ensure_home(config, account: pwd.struct_passwd) -> bool:
    """Mount ``account``'s quota'd home (creating its image on first use). Returns True if newly created."""
    if not config.homes.quota:
        return False
    home = Path(account.pw_dir)
    image = image_path(config, account.pw_name)
    if str(home) in mounted_homes():
        return False
    created = prepare_image(config, account)
    if not created and image.stat().st_size < config.homes.quota:
        _grow(image, config.homes.quota)
    _migrate_and_mount(image, home, account)
    return created


def prepare_image(config, account: pwd.struct_passwd) -> bool:
    """Make ``account``'s home image unless it exists (also ahead of the first spawn: ops.prepare)."""
    if not config.homes.quota:
        return False
    image = image_path(config, account.pw_name)
    image.parent.mkdir(parents=True, exist_ok=True)
    image.parent.chmod(0o700)  # images hold everybody's files: root only
    if image.exists():
        return False
    _make_image(image, config.homes.quota, account)
    return True


def _run(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise PangeoError(f"`{' '.join(argv)}` failed: {(proc.stderr or proc.stdout).strip()}")


def _make_image(image: Path, size: int, account: pwd.struct_passwd) -> None:
    tmp = image.with_suffix(".new")
    with open(tmp, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.truncate(size)
    # A small journal and fewer inodes keep the filesystem's own overhead out of the person's quota.
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-J", "size=4" if size < 512 * 1024**2 else "size=16",
         "-i", "65536", "-L", account.pw_name[:16],
         "-E", f"root_owner={account.pw_uid}:{account.pw_gid},nodiscard", str(tmp))
    os.replace(tmp, image)


def _grow(image: Path, size: int) -> None:
    with open(image, "r+b") as handle:
        handle.truncate(size)
    _run("e2fsck", "-f", "-p", str(image))
    _run("resize2fs", "-f", str(image))


def _migrate_and_mount(image: Path, home: Path, account: pwd.struct_passwd) -> None:
    """Mount the image at the home. Files already in the (unmounted) home directory, e.g. the skeleton
    useradd copied, or a home from before quotas were on, are moved into the image first, never hidden."""
    home.mkdir(parents=True, exist_ok=True)
    if any(home.iterdir()):
        # Moved as the person (pangeohub.privileged): root never copies a tree they control. The directory is
        # opened before the mount covers it, and its files moved from there into the mounted image.
        with privileged.opened_home(account) as covered:
            _run("mount", "-o", MOUNT_OPTIONS, str(image), str(home))
            try:
                privileged.move_covered_home(account, covered)
            except PangeoError as exc:
                _run("umount", str(home))
                raise PangeoError(
                    f"the files already in {home} do not fit in its quota image: {exc.what}",
                    "raise homes.quota, or make room in that home",
                ) from None
    else:
        _run("mount", "-o", MOUNT_OPTIONS, str(image), str(home))
    lost = home / "lost+found"
    if lost.is_dir() and not lost.is_symlink() and not any(lost.iterdir()):
        lost.rmdir()  # e2fsck recreates it when it needs it; people should not see it in their home
    privileged.make_home_private(account)


def release_home(config, home: Path, delete_image: str | None = None) -> bool:
    """Unmount one home (lazily if something still holds it). Deletes ``delete_image`` if given."""
    released = False
    if str(home) in mounted_homes():
        proc = subprocess.run(["umount", str(home)], capture_output=True)
        if proc.returncode:
            subprocess.run(["umount", "-l", str(home)], capture_output=True)
        released = True
    if delete_image:
        Path(delete_image).unlink(missing_ok=True)
    return released


def release_all(config) -> int:
    """Unmount every home whose image lives in this platform's images dir (``pangeohub down``)."""
    root = str(images_dir(config))
    count = 0
    for point, device in sorted(mounted_homes().items(), reverse=True):
        backing = backing_file(device) or ""
        if backing.startswith(root + "/"):
            count += release_home(config, Path(point))
    return count


def home_usage(config, account: pwd.struct_passwd) -> dict:
    """Bytes used and available in a home: from the mounted filesystem, else from the image's superblock."""
    quota = config.homes.quota
    home = account.pw_dir
    if quota and home in mounted_homes():
        st = os.statvfs(home)
        return {"used": (st.f_blocks - st.f_bfree) * st.f_frsize, "quota": quota, "mounted": True}
    image = image_path(config, account.pw_name)
    if quota and image.exists():
        proc = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True)
        fields = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
        try:
            blocks = int(fields["Block count"]) - int(fields["Free blocks"])
            return {"used": blocks * int(fields["Block size"]), "quota": quota, "mounted": False}
        except (KeyError, ValueError):
            pass
    used = subprocess.run(["du", "-sb", home], capture_output=True, text=True).stdout.split("\t")[0]
    return {"used": int(used or 0), "quota": quota or None, "mounted": False}
