"""What ``install.py`` needs to upgrade a running platform: standard library only.

The installer runs on the system Python before the runtime environment exists or while it is being replaced,
so nothing here may import the runtime's packages (or the rest of pangeohub). It talks to the platform through
what every version has: the ``pangeohub`` command of an install, and the run dir's supervisor lock, status file
and pidfiles.
"""
