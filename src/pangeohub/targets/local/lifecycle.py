"""What ``pangeohub up`` checks and ``pangeohub down`` releases for the resources feature.

``up`` refuses to start when a configured limit cannot be enforced here (no silent no-op); the config must
turn it off explicitly instead. ``down`` ends whatever of the users still runs, unmounts the homes (their
images keep the files) and removes the users' now empty cgroups.
"""

from __future__ import annotations

from pangeohub.resources import shared
from pangeohub.targets.local import cgroups, homes


def preflight(config) -> None:
    """Raise a PangeoError naming every limit this machine cannot enforce; prepare the shared folders."""
    cgroups.require_enforceable(config)
    homes.require_quotas(config)
    shared.ensure_shared_dirs(config)


def release(config) -> None:
    from pangeohub.targets.sysusers import end_leftover_processes

    end_leftover_processes(config.users)  # before the homes go: nothing may run in an unmounted home
    homes.release_all(config)
    if not config.limits.enforce:
        return
    try:
        backend = cgroups.backend_for(config.limits)
        for name in backend.names():
            if name.startswith(config.users.system_prefix):
                backend.remove(name)
        backend.remove_parent()
    except OSError:
        pass  # nothing to release on a machine without cgroups


def release_user(config, system_user: str, delete: bool) -> None:
    """After a user's processes are gone (``pangeohub.release``): unmount their home wherever their image is
    mounted, drop their cgroup and Jupyter runtime dir, and with ``delete`` remove the image too. Without it the
    image keeps the files, and the home comes back at their next start."""
    import shutil
    from pathlib import Path

    image = homes.image_path(config, system_user)
    shutil.rmtree(runtime_root(config) / system_user, ignore_errors=True)  # Jupyter runtime files
    # Found by the image, not by the home directory: the account may be gone already (an interrupted removal),
    # and whatever else is mounted at a home is not the platform's to unmount.
    for point in sorted(homes.mount_points(image), reverse=True):
        homes.release_home(config, Path(point))
    if delete:
        image.unlink(missing_ok=True)
    if config.limits.enforce:
        try:
            cgroups.backend_for(config.limits).remove(system_user)
        except OSError:
            pass


def runtime_root(config):
    """Parent of every person's Jupyter runtime dir (made by the spawn hook: resources.hook.runtime_dir)."""
    return config.state_dir / "run" / "users"
