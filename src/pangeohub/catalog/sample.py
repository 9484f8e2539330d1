"""Sample datasets made on this machine (no downloads), realistic enough to teach and test with.

``air_temperature``: daily near-surface air temperature on a global lat/lon grid, with a latitude-dependent
mean and seasonal cycle, a small warming trend and weather noise; CF attributes; chunked for time-series and
map access alike. ``precip_monthly``: a collection of NetCDF files (one per month) of daily precipitation
over a region, the classic "many files" layout.
"""

from __future__ import annotations

import numpy as np

DAYS_PER_YEAR = 365
START = "2015-01-01"


def air_temperature_shape(target_bytes: int, resolution: float = 1.0) -> tuple[int, int, int]:
    """(days, lats, lons) whose float32 size is close to ``target_bytes`` (at least one year)."""
    nlat = int(round(180 / resolution)) + 1
    nlon = int(round(360 / resolution))
    per_year = DAYS_PER_YEAR * nlat * nlon * 4
    years = max(1, round(target_bytes / per_year))
    days = years * DAYS_PER_YEAR if target_bytes >= per_year else max(30, target_bytes // (nlat * nlon * 4))
    return int(days), nlat, nlon


def _air_block(block: np.ndarray, block_info=None) -> np.ndarray:
    """One chunk of temperatures, a pure function of its position (so any chunk can be recomputed)."""
    (t0, t1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    nlat = block_info[None]["shape"][1]
    nlon = block_info[None]["shape"][2]
    day = np.arange(t0, t1)[:, None, None]
    lat = np.linspace(-90, 90, nlat)[y0:y1][None, :, None]
    lon = np.linspace(0, 360, nlon, endpoint=False)[x0:x1][None, None, :]
    mean = 300.0 - 45.0 * np.sin(np.deg2rad(lat)) ** 2            # warm tropics, cold poles
    amplitude = 15.0 * np.abs(np.sin(np.deg2rad(lat)))            # seasons grow with latitude
    seasonal = -amplitude * np.sign(lat) * np.cos(2 * np.pi * (day - 15) / DAYS_PER_YEAR)
    land_sea = 2.0 * np.sin(np.deg2rad(lon) * 3) * np.cos(np.deg2rad(lat) * 2)
    trend = 0.02 * day / DAYS_PER_YEAR                              # 0.2 K per decade
    rng = np.random.default_rng([t0, y0, x0, 42])
    noise = rng.normal(0.0, 2.0, size=(t1 - t0, y1 - y0, x1 - x0))
    return (mean + seasonal + land_sea + trend + noise).astype("float32")


def air_temperature(target_bytes: int = 512 * 2**20, resolution: float = 1.0):
    """A lazy (dask-backed) xarray Dataset; nothing is computed until it is written."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    days, nlat, nlon = air_temperature_shape(target_bytes, resolution)
    chunks = (min(days, 73), nlat, nlon)  # ~19 MB chunks at 1 degree: good for maps and for time series
    data = da.map_blocks(_air_block, da.empty((days, nlat, nlon), chunks=chunks, dtype="float32"),
                         dtype="float32")
    time = pd.date_range(START, periods=days, freq="D")
    ds = xr.Dataset(
        {"air": (("time", "lat", "lon"), data, {
            "standard_name": "air_temperature", "long_name": "Daily mean near-surface air temperature",
            "units": "K", "cell_methods": "time: mean"})},
        coords={
            "time": ("time", time, {"standard_name": "time", "long_name": "time", "axis": "T"}),
            "lat": ("lat", np.linspace(-90, 90, nlat), {"standard_name": "latitude", "units": "degrees_north",
                                                        "axis": "Y"}),
            "lon": ("lon", np.linspace(0, 360, nlon, endpoint=False), {"standard_name": "longitude",
                                                                        "units": "degrees_east", "axis": "X"}),
        },
        attrs={"Conventions": "CF-1.8", "title": "pangeohub sample: synthetic daily air temperature",
               "institution": "generated locally by pangeohub", "source": "synthetic (deterministic, seeded)",
               "history": "made by pangeohub.catalog.sample"},
    )
    return ds


def precip_month(year: int, month: int, lat=(30.0, 60.0), lon=(-20.0, 30.0), resolution: float = 0.5):
    """Daily precipitation over a region for one month, as an in-memory xarray Dataset."""
    import pandas as pd
    import xarray as xr

    time = pd.date_range(f"{year}-{month:02d}-01", periods=pd.Period(f"{year}-{month:02d}").days_in_month, freq="D")
    lats = np.arange(lat[0], lat[1] + resolution / 2, resolution)
    lons = np.arange(lon[0], lon[1] + resolution / 2, resolution)
    rng = np.random.default_rng([year, month, 7])
    wet = rng.random((len(time), len(lats), len(lons))) < 0.4
    amount = rng.gamma(0.8, 4.0, size=wet.shape) * wet
    return xr.Dataset(
        {"pr": (("time", "lat", "lon"), amount.astype("float32"), {
            "standard_name": "precipitation_amount", "long_name": "Daily precipitation", "units": "mm"})},
        coords={"time": time,
                "lat": ("lat", lats, {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", lons, {"standard_name": "longitude", "units": "degrees_east"})},
        attrs={"Conventions": "CF-1.8", "title": f"pangeohub sample: daily precipitation {year}-{month:02d}"},
    )
