"""Named software environments: built with uv into ``install_dir/envs/NAME/<version>``, one immutable folder per
build with its resolved lock and build log, a ``current`` link choosing the one that serves.

- ``layout``: where versions, links, logs and the shared uv cache live; reading what is there.
- ``build``: resolving and installing one version (the only module that runs uv).
- ``usage``: which people's processes run which version (``env list``, ``env remove``).
- ``kernels``: the kernelspec of each environment and the spawn hook that shows a person theirs.
"""
