"""Resources every target shares: hardware profiles (``profiles``) and the shared folders (``shared``).

What enforces them on one machine (cgroups, home images and quotas, the spawn hook) is the local target's:
``pangeohub.targets.local``.
"""
