"""The scientist's journey end to end, as a real user: the quickstart notebook in their own kernel."""

import ast
import base64
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pangeohub.ops.journey import run_quickstart
from pangeohub.usersim import UserSim, run_sync

pytestmark = pytest.mark.platform


def _independent_climatology(zarr_path: str) -> tuple[float, float]:
    """The notebook's two numbers, recomputed on the host with plain numpy (no groupby, no Dask)."""
    ds = xr.open_zarr(zarr_path, consolidated=False)
    air = ds.air.values.astype("float64")
    months = pd.DatetimeIndex(ds.time.values).month
    clim = {m: air[months == m].mean(axis=0) for m in np.unique(months)}
    anomaly = np.stack([air[i] - clim[m] for i, m in enumerate(months)])
    return float(np.mean(list(clim.values()))), float(anomaly.mean(axis=(1, 2)).std())


def test_quickstart_notebook_runs_and_its_numbers_are_right(platform):
    entries = platform.wait_for_catalog()
    name, token = platform.started_user()

    async def go():
        async with UserSim(platform.url, name, token=token, timeout=900) as user:
            journey = await run_quickstart(user)
            listing = await user.run(
                "import os, json, fsspec\n"
                "fs, path = fsspec.core.url_to_fs(os.environ['PANGEO_SCRATCH'] + 'quickstart/anomaly.zarr')\n"
                "print(json.dumps(sorted(p.rsplit('/', 1)[-1] for p in fs.ls(path))))")
            return journey, listing

    journey, listing = run_sync(go())
    clim_mean, anomaly_std = ast.literal_eval(journey.cells[3].result)  # the cell's (float, float)
    expected_mean, expected_std = _independent_climatology(entries["air_temperature"]["args"]["urlpath"])
    assert clim_mean == pytest.approx(expected_mean, rel=1e-6)
    assert anomaly_std == pytest.approx(expected_std, rel=1e-3)
    # The result was written to the user's scratch prefix as zarr.
    assert listing.ok, f"{listing.error}\n{listing.stderr}"
    assert "anomaly" in json.loads(listing.stdout)
    # A real PNG figure came back from the plotting cell.
    assert journey.images and base64.b64decode(journey.images[0])[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_full_runs_the_journey(platform):
    platform.wait_for_catalog()
    report = json.loads(platform.cli("check", "--full", "--json", timeout=900).stdout)
    assert report["ok"], report
    journey = next(p for p in report["phases"] if p["name"] == "journey")
    assert "figure" in journey["detail"]
