"""The runtime's installed distributions, listed once in the fork server for every server it forks.

A server asks for entry points several times as it starts (jupyter_lsp's listeners and specs in a thread,
jupyter_client's kernel provisioners, jupyter-server-proxy's servers, JupyterLab's language packs), through
``importlib.metadata`` or its backport ``importlib_metadata``. Each query lists the ~400 distributions of the
environment again and reads and parses every ``entry_points.txt`` (the backport each ``METADATA`` as well):
py-spy put ~40 % of a forked server's CPU there. A server sees only the runtime environment (the fork server runs
with ``-I``: no user site, no PYTHONPATH), which does not change while the fork server lives (an upgrade restarts
it); so the fork server lists the distributions once, with their names and entry points read, and a forked
server's queries are answered from that list.

Not for the kernel and Dask templates, forked before this runs: a person's own packages (user site, environments)
add distributions and entry points there.
"""

from __future__ import annotations

import importlib.metadata


def remember_distributions() -> None:
    """From here on, ``distributions()`` (what ``entry_points()`` and the backport's lookups iterate) answers
    from one listing made now. Lookups by name or path still look at the disk."""
    modules = [importlib.metadata]
    try:
        import importlib_metadata
    except ImportError:
        pass
    else:
        modules.append(importlib_metadata)
    for module in modules:
        remembered = _remembering(module.Distribution)
        listed = [remembered(dist) for dist in module.distributions()]
        discover = module.distributions

        def distributions(_listed=listed, _discover=discover, **query):
            return iter(_listed) if not query else _discover(**query)

        module.distributions = distributions


def _remembering(base: type) -> type:
    class Remembered(base):
        """A distribution whose name and entry points were read when the fork server started."""

        def __init__(self, dist) -> None:
            self._dist = dist
            self._name = dist._normalized_name
            self._entry_points = dist.entry_points
            # The backport orders distributions by whether they have metadata at each lookup.
            has = getattr(dist, "_has_metadata", None)
            self._metadata_found = has() if callable(has) else True

        def read_text(self, filename):
            return self._dist.read_text(filename)

        def _has_metadata(self) -> bool:
            return self._metadata_found

        def locate_file(self, path):
            return self._dist.locate_file(path)

        @property
        def entry_points(self):
            return self._entry_points

        @property
        def _normalized_name(self):
            return self._name

        def __getattr__(self, name):  # anything else a caller reaches for (``_path``...) is the original's
            return getattr(self._dist, name)

    return Remembered
