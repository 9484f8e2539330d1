"""Make the catalog and its sample data on first start, and hand its location to every server."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pangeohub.catalog import CATALOG_ENV
from pangeohub.catalog.sample import air_temperature, precip_month
from pangeohub.catalog.store import Catalog, Entry

log = logging.getLogger(__name__)

AIR = "air_temperature"
PRECIP = "precip_monthly"


def catalog_dir(rt) -> Path:
    return rt.paths.root / "catalog"


def catalog_file(rt) -> Path:
    return catalog_dir(rt) / "catalog.yaml"


def data_dir(rt) -> Path:
    return catalog_dir(rt) / "data"


def ensure_sample_data(rt, echo=log.info) -> list[str]:
    """Write the sample datasets and their catalog entries if they are missing; returns what it made."""
    cfg = rt.config.catalog
    made = []
    root = catalog_dir(rt)
    for path in (root, data_dir(rt)):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)  # every user (and their Dask workers) reads the catalog and its data
    catalog = Catalog(catalog_file(rt))
    if not catalog_file(rt).exists():
        catalog._write(catalog.read())
    if not cfg.sample_data:
        return made
    entries = catalog.entries()
    if AIR not in entries:
        target = data_dir(rt) / f"{AIR}.zarr"
        echo(f"catalog: generating {AIR} (~{cfg.sample_size // 2**20} MB) in {target}")
        _write_zarr(air_temperature(cfg.sample_size), target)
        catalog.add(Entry(AIR, str(target), "zarr",
                          "Synthetic daily near-surface air temperature, global 1 degree grid (CF, zarr)",
                          args={"consolidated": False}, metadata={"units": "K", "frequency": "daily"}),
                    replace=True)
        made.append(AIR)
    if PRECIP not in entries:
        target = data_dir(rt) / PRECIP
        echo(f"catalog: generating {PRECIP} (12 NetCDF files) in {target}")
        _write_netcdf_collection(target)
        catalog.add(Entry(PRECIP, str(target / "pr_*.nc"), "netcdf",
                          "Synthetic daily precipitation over Europe, one NetCDF file per month",
                          args={"xarray_kwargs": {"combine": "by_coords", "engine": "h5netcdf"}},
                          metadata={"units": "mm", "frequency": "daily"}),
                    replace=True)
        made.append(PRECIP)
    return made


def _write_zarr(ds, target: Path) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    # Zarr format 3 without consolidated metadata: what zarr-python 3 writes by default, so that results
    # derived from it (which inherit its codecs) can be written back with a plain to_zarr().
    ds.to_zarr(tmp, mode="w", consolidated=False)
    _world_readable(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # a dataset appears whole or not at all


def _write_netcdf_collection(target: Path, year: int = 2020) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for month in range(1, 13):
        precip_month(year, month).to_netcdf(tmp / f"pr_{year}{month:02d}.nc", engine="h5netcdf")
    _world_readable(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _world_readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


async def catalog_env(spawner, account) -> dict[str, str]:
    """Spawn hook: every server (and through it, every kernel and Dask worker) knows the catalog."""
    return {CATALOG_ENV: str(catalog_file(spawner.runtime))}
