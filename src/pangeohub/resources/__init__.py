"""Resources: hardware profiles, kernel-enforced CPU/memory limits (cgroups), home quotas, shared folders.

For other launchers of user processes (Dask Gateway backend, fast spawners)::

    from pangeohub.resources import user_cgroup, enter_user_cgroup
    cg = user_cgroup(config, "jupyter-alice")      # in the (root) parent: create/update, returns None if off
    ... preexec_fn=lambda: (enter_user_cgroup(cg), drop_privileges())  # in the child, before exec
"""

from pangeohub.resources.cgroups import UserCgroup, enter_user_cgroup, user_cgroup

__all__ = ["UserCgroup", "enter_user_cgroup", "user_cgroup"]
