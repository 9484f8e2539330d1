"""Turn the user site back on for user processes (notebook kernels, Dask schedulers and workers).

The platform runs from a venv, and a venv disables ``~/.local/lib/pythonX.Y/site-packages``: packages there do
not import, and ``pip install --user`` refuses ("User site-packages are not visible in this virtualenv").
This directory is put on PYTHONPATH for user processes only (never for root's services), so that what a
person installs with ``pip install --user`` imports in their kernels and on their Dask workers alike.
The user site goes after the platform's packages: a user package cannot shadow what the platform pins.

It also fixes two upstream modules as they are imported: pip's view of the user site, and dask-gateway's client
(``_pangeohub_gateway_client``).
"""

import importlib.abc
import importlib.util
import os
import site
import sys


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``fix(module)`` once the named module has been executed, whoever imports it."""

    def __init__(self, name, fix):
        self.name, self.fix = name, fix

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        original, fix = spec.loader.exec_module, self.fix

        def exec_module(module):
            original(module)
            fix(module)

        spec.loader.exec_module = exec_module
        return spec


def fix_on_import(name, fix):
    """Fix a module now if it is already imported (a forked kernel inherits its template's modules), else when
    it is."""
    if name in sys.modules:
        fix(sys.modules[name])
    else:
        sys.meta_path.insert(0, _AfterImport(name, fix))


def _pip_sees_the_user_site(module):
    # pip decides "no user site" from pyvenv.cfg, not from site.ENABLE_USER_SITE: tell it the truth here.
    module.virtualenv_no_global = lambda: False


if os.getuid() != 0:
    import _pangeohub_gateway_client

    site.ENABLE_USER_SITE = True
    site.addsitedir(site.getusersitepackages())
    fix_on_import("pip._internal.utils.virtualenv", _pip_sees_the_user_site)
    fix_on_import("dask_gateway.client", _pangeohub_gateway_client.fix)
