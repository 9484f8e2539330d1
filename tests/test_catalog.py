"""The shared data catalog: sample data made locally, one line to open it, admins change it live."""

import numpy as np
import pytest

from harness import cli
from pangeohub.catalog.sample import air_temperature, air_temperature_shape, precip_month
from pangeohub.catalog.store import Catalog, Entry, guess_driver
from pangeohub.errors import PangeoError


def test_sample_air_temperature_is_cf_and_plausible():
    ds = air_temperature(4 * 2**20)
    assert ds.air.attrs["units"] == "K" and ds.air.attrs["standard_name"] == "air_temperature"
    assert ds.lat.attrs["units"] == "degrees_north" and ds.attrs["Conventions"].startswith("CF")
    first = ds.air.isel(time=slice(0, 10)).compute()
    assert 250 < float(first.mean()) < 300
    tropics = float(first.sel(lat=slice(-10, 10)).mean())
    poles = float(first.sel(lat=slice(70, 90)).mean())
    assert tropics > poles + 20
    # Deterministic: the same chunk computes to the same numbers (a dataset, not a random draw per read).
    again = air_temperature(4 * 2**20).air.isel(time=slice(0, 10)).compute()
    np.testing.assert_array_equal(first.values, again.values)


def test_sample_size_follows_the_config():
    days, nlat, nlon = air_temperature_shape(512 * 2**20)
    assert (nlat, nlon) == (181, 360)
    assert days % 365 == 0 and 400e6 < days * nlat * nlon * 4 < 700e6


def test_precip_month_has_every_day():
    ds = precip_month(2020, 2)
    assert ds.sizes["time"] == 29 and float(ds.pr.min()) >= 0


def test_catalog_entries_are_validated(tmp_path):
    catalog = Catalog(tmp_path / "catalog.yaml")
    catalog.add(Entry("sst", "/data/sst.zarr", guess_driver("/data/sst.zarr")))
    with pytest.raises(PangeoError, match="already has 'sst'"):
        catalog.add(Entry("sst", "/data/other.zarr", "zarr"))
    with pytest.raises(PangeoError, match="not allowed"):
        catalog.add(Entry("bad name", "/x.zarr", "zarr"))
    with pytest.raises(PangeoError, match="cannot tell the format"):
        guess_driver("/data/thing.bin")
    with pytest.raises(PangeoError, match="no entry 'nope'"):
        catalog.remove("nope")
    catalog.remove("sst")
    assert catalog.entries() == {}


@pytest.mark.platform
def test_user_opens_the_catalog_in_one_line_and_gets_the_right_numbers(platform):
    platform.wait_for_catalog()
    name, token = platform.started_user()
    code = (
        "from pangeohub.catalog import open_catalog\n"
        "cat = open_catalog()\n"
        "ds = cat['air_temperature'].to_dask()\n"
        "pr = cat['precip_monthly'].to_dask()\n"
        "print(sorted(cat), dict(ds.air.sizes), type(ds.air.data).__module__.split('.')[0])\n"
        "print(repr(float(ds.air.isel(time=slice(0, 5)).mean())), pr.sizes['time'])\n"
    )

    out = platform.run_code(name, token, code)
    assert out.ok, out.error + out.stderr
    listing, numbers = out.stdout.strip().split("\n")
    assert "'air_temperature', 'precip_monthly'" in listing and "dask" in listing
    mean, days = numbers.split()
    # Independent computation, on the host, from the generator itself.
    expected = float(air_temperature(8 * 2**20).air.isel(time=slice(0, 5)).mean())
    assert float(mean) == pytest.approx(expected, rel=1e-5)
    assert int(days) == 366


@pytest.mark.platform
def test_catalog_changes_are_visible_without_restart_and_users_cannot_change_it(platform):
    entries = platform.wait_for_catalog()
    name, token = platform.started_user()
    data = entries["precip_monthly"]["args"]["urlpath"]
    platform.cli("catalog", "add", "precip_copy", data, "--description", "the same files again")
    code = (
        "import os\n"
        "from pangeohub.catalog import open_catalog\n"
        "print('precip_copy' in list(open_catalog()))\n"
        "for path in (os.environ['PANGEO_CATALOG'], os.path.dirname(os.environ['PANGEO_CATALOG']) + '/data/x'):\n"
        "    try:\n"
        "        open(path, 'a').write('x'); print('WROTE')\n"
        "    except PermissionError:\n"
        "        print('denied')\n"
    )

    try:
        assert platform.run_code(name, token, code).stdout.split() == ["True", "denied", "denied"]
    finally:
        platform.cli("catalog", "remove", "precip_copy")
    listed = platform.cli("catalog", "list", "--json").stdout
    assert "precip_copy" not in listed


def test_catalog_cli_refuses_unknown_formats(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {tmp_path}/state\n")
    proc = cli("--config", str(config), "catalog", "add", "thing", "/data/thing.bin", check=False)
    assert proc.returncode == 2 and "--driver" in proc.stderr


def test_quickstart_is_not_written_through_a_planted_symlink(tmp_path):
    import os

    from pangeohub.catalog.quickstart import NOTEBOOK_NAME, install_into_home

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(victim, home / NOTEBOOK_NAME)
    import pwd

    account = pwd.struct_passwd(("someone", "x", os.getuid(), os.getgid(), "", str(home), "/bin/sh"))
    assert install_into_home(account) is False
    assert victim.read_text() == "precious"


@pytest.mark.platform
def test_quickstart_notebook_is_valid_and_in_a_new_home(platform):
    import nbformat

    from pangeohub.catalog.quickstart import NOTEBOOK_NAME

    name, _ = platform.started_user()
    entry = platform.system_user(name)
    path = f"{entry.pw_dir}/{NOTEBOOK_NAME}"
    import os

    assert os.stat(path).st_uid == entry.pw_uid
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    sources = "\n".join(cell.source for cell in nb.cells)
    for step in ("open_catalog()", "Gateway()", "PANGEO_SCRATCH", "groupby(\"time.month\")", "plt.show()"):
        assert step in sources
