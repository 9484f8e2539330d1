"""The quickstart notebook every new home gets: the whole Pangeo journey in a dozen cells.

Open the catalog, load a dataset lazily, start a Dask Gateway cluster, compute a climatology and anomalies,
write the result to the personal scratch bucket, plot a map. The end-to-end test runs exactly this notebook.
"""

from __future__ import annotations

import asyncio
import functools

import nbformat

NOTEBOOK_NAME = "quickstart.ipynb"

CELLS = [
    ("markdown", "# Welcome to pangeohub\n\nThis notebook walks through the platform: the shared data catalog, "
                 "a Dask cluster of your own, and your private scratch space in object storage. "
                 "Run the cells from top to bottom (Shift-Enter)."),
    ("markdown", "## 1. Open the data catalog\n`PANGEO_CATALOG` points at the catalog every user shares."),
    ("code", "import os\nimport xarray as xr\nfrom pangeohub.catalog import open_catalog\n\n"
             "cat = open_catalog()\nsorted(cat)"),
    ("markdown", "## 2. Load a dataset lazily\nNothing is read yet: the data stays in storage until you compute."),
    ("code", "ds = cat[\"air_temperature\"].to_dask()\nds"),
    ("markdown", "## 3. Start a Dask cluster\n`Gateway()` needs no arguments here; the cluster runs as you, "
                 "within the limits your administrator set."),
    ("code", "from dask_gateway import Gateway\n\ngateway = Gateway()\ncluster = gateway.new_cluster()\n"
             "cluster.scale(2)\nclient = cluster.get_client()\ncluster"),
    ("markdown", "## 4. Climatology and anomalies"),
    ("code", "climatology = ds.air.groupby(\"time.month\").mean(\"time\")\n"
             "anomaly = ds.air.groupby(\"time.month\") - climatology\n"
             "global_mean = anomaly.mean((\"lat\", \"lon\")).compute()\n"
             "float(climatology.mean().compute()), float(global_mean.std())"),
    ("markdown", "## 5. Save to your scratch space\n`PANGEO_SCRATCH` is private to you; objects there are "
                 "deleted after a few days, so keep results you need elsewhere."),
    ("code", "target = os.environ[\"PANGEO_SCRATCH\"] + \"quickstart/anomaly.zarr\"\n"
             "result = anomaly.isel(time=slice(0, 31)).to_dataset(name=\"anomaly\")\n"
             "result.to_zarr(target, mode=\"w\", consolidated=False)\n"
             "xr.open_zarr(target, consolidated=False).anomaly.sizes"),
    ("markdown", "## 6. Plot a map"),
    ("code", "import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots(figsize=(8, 4))\n"
             "seasonal_range = climatology.max(\"month\") - climatology.min(\"month\")\n"
             "seasonal_range.plot(ax=ax, cmap=\"viridis\")\n"
             "ax.set_title(\"Range of monthly mean temperature (K)\")\nplt.show()"),
    ("markdown", "## 7. Clean up\nClusters also stop by themselves when idle, and when your server stops."),
    ("code", "client.close()\ncluster.shutdown()"),
]


def build_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        nb.cells.append(cell)
    return nb


def code_cells() -> list[str]:
    return [source for kind, source in CELLS if kind == "code"]


def install_into_home(account) -> bool:
    """Put the notebook in a home unless something is already at that name. Returns whether it wrote one.

    Runs as root inside a directory the user owns: through ``pangeohub.privileged``, which never
    follows a link the user may have planted there (that would let them make root overwrite any file).
    """
    from pangeohub import privileged

    return privileged.create_file(account, NOTEBOOK_NAME, notebook_bytes())


@functools.cache
def notebook_bytes() -> bytes:
    """The notebook as written: the same for everyone, built once per hub."""
    return nbformat.writes(build_notebook()).encode()


async def quickstart_hook(spawner, account) -> dict[str, str]:
    """Spawn hook: every home has the quickstart notebook; one the user renamed or deleted comes back as new.

    No marker file is kept: writing one as root in a user-owned directory is one more path to race. Written from
    a thread: the write forks a child that becomes the person, which would hold the hub's event loop meanwhile.
    """
    await asyncio.to_thread(install_into_home, account)
    return {}
