"""The platform's data catalog. Inside a user server: ``from pangeohub.catalog import open_catalog``."""

from __future__ import annotations

import os

CATALOG_ENV = "PANGEO_CATALOG"


def open_catalog(path: str | None = None):
    """The shared intake catalog (``$PANGEO_CATALOG``), re-read at every call so that changes show at once."""
    import intake

    target = path or os.environ.get(CATALOG_ENV)
    if not target:
        raise RuntimeError(f"${CATALOG_ENV} is not set: this helper works inside a pangeohub server")
    return intake.open_catalog(target)
