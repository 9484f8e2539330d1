"""pangeohub: a self-hosted Pangeo platform."""

__version__ = "0.1.0"
