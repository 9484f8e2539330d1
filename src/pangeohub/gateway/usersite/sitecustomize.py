"""Turn the user site back on for user processes (notebook kernels, Dask schedulers and workers).

The platform runs from a venv, and a venv disables ``~/.local/lib/pythonX.Y/site-packages``: packages there do
not import, and ``pip install --user`` refuses ("User site-packages are not visible in this virtualenv").
This directory is put on PYTHONPATH for user processes only (never for root's services), so that what a
person installs with ``pip install --user`` imports in their kernels and on their Dask workers alike.
The user site goes after the platform's packages: a user package cannot shadow what the platform pins.
"""

import importlib.abc
import os
import site
import sys

_PIP_VENV = "pip._internal.utils.virtualenv"


class _PipUserSite(importlib.abc.MetaPathFinder):
    """pip decides "no user site" from pyvenv.cfg, not from site.ENABLE_USER_SITE: tell it the truth here."""

    def find_spec(self, name, path=None, target=None):
        if name != _PIP_VENV:
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util

            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            module.virtualenv_no_global = lambda: False

        loader.exec_module = exec_module
        return spec


if os.getuid() != 0:
    site.ENABLE_USER_SITE = True
    site.addsitedir(site.getusersitepackages())
    sys.meta_path.insert(0, _PipUserSite())
