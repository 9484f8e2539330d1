"""Dask Gateway extensions: backend, limits, options, culling, the operator's API."""

#: The operator's API on the gateway's private port (see ``admin``); here so that its client, the
#: command line, does not import the server side (aiohttp) to know the path.
ADMIN_PATH = "/pangeohub/v1/clusters"
