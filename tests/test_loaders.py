"""Tests of the real-data loaders of physreg.datasets.

The data are read from ``PHYSREG_DATA_HOME`` (CI sets it), falling back to
the shared data folder of the development machine; tests that need a file
that is not there are skipped.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from physreg import datasets
from physreg.data import validate_observations
from physreg.datasets import (
    get_data_home,
    lanternfly_years,
    load_jin2016,
    load_jin2016_reference,
    load_lanternfly,
)

DATA_HOME = Path(os.environ.get("PHYSREG_DATA_HOME") or "/work/shared/data")
JIN = DATA_HOME / "jin2016_pc3"
LANTERNFLY = DATA_HOME / "lanternfly" / "lyde_10k.csv"


def need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} not available (set PHYSREG_DATA_HOME)")


# ---------------------------------------------------------------------------
# Data home
# ---------------------------------------------------------------------------


def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("PHYSREG_DATA_HOME", str(tmp_path))
    assert get_data_home() == tmp_path
    assert get_data_home("~/elsewhere") == Path.home() / "elsewhere"
    monkeypatch.delenv("PHYSREG_DATA_HOME")
    assert get_data_home() == Path.home() / "physreg_data"


@pytest.mark.parametrize(
    ("load", "origin"),
    [
        (lambda home: load_jin2016(12000, data_home=home), "ProfMJSimpson/Warne2019"),
        (lambda home: load_jin2016_reference(data_home=home), "Lagergren"),
        (lambda home: load_lanternfly(data_home=home), "ieco-lab/lydemapr"),
    ],
)
def test_missing_file_says_where_to_get_it(tmp_path, load, origin):
    with pytest.raises(
        FileNotFoundError,
        match=f"(?s)not found: {tmp_path}.*PHYSREG_DATA_HOME.*data_home=.*{origin}",
    ):
        load(tmp_path)


# ---------------------------------------------------------------------------
# Jin et al. (2016)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jin():
    for n in (12000, 16000, 20000):
        need(JIN / f"fbs{n}.csv")
    return {n: load_jin2016(n, data_home=DATA_HOME) for n in (12000, 16000, 20000)}


@pytest.mark.parametrize("n", [12000, 16000, 20000])
def test_jin_layout(jin, n):
    ds = jin[n]
    for name in ("density", "density_sd", "count"):
        assert ds[name].dims == ("time", "x") and ds[name].shape == (5, 38)
    np.testing.assert_array_equal(ds.time, [0.0, 12.0, 24.0, 36.0, 48.0])
    np.testing.assert_array_equal(ds.x, np.arange(25.0, 1900.0, 50.0))
    assert ds.time.attrs["units"] == "h" and ds.x.attrs["units"] == "um"
    assert ds.density.attrs["units"] == "cells/um^2"
    assert ds.attrs["initial_density"] == n
    assert ds.attrs["carrying_capacity"] == 1.7e-3
    assert ds.attrs["domain_x"] == (0.0, 1900.0)
    assert ds.attrs["column_area_um2"] == 71500.0


@pytest.mark.parametrize("n", [12000, 16000, 20000])
def test_jin_values_plausible(jin, n):
    ds = jin[n]
    # The 20,000-cell assay slightly exceeds K = 1.7e-3 (max 2.06e-3): allow 1.5 K.
    assert 0 <= ds.density.min() and ds.density.max() < 1.5 * ds.attrs["carrying_capacity"]
    assert 0 <= ds.density_sd.min() and ds.density_sd.max() < ds.density.max()
    np.testing.assert_allclose(ds["count"], ds.density * 71500.0)
    # cells fill the scratch: the density grows on average over time
    assert np.all(np.diff(ds.density.mean("x")) > 0)


def test_jin_transposed_file_matches_the_others(jin):
    a, b = jin[16000], jin[20000]
    assert a.density.dims == b.density.dims and a.density.shape == b.density.shape
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.x, b.x)
    # first row of the transposed file, read by hand: t = 0, x = 25 um
    assert b.density.values[0, 0] == pytest.approx(0.0012494)


def test_jin_fits_the_data_contract(jin):
    ds = jin[12000]
    obs = validate_observations(ds, extras={"sd": "density_sd"}, domain={"x": ds.attrs["domain_x"]})
    assert obs.n_obs == 190 and obs.units["x"] == "um"
    counts = validate_observations(ds, "count")
    np.testing.assert_allclose(counts.value, obs.value * 71500.0)


def test_jin_writes_to_netcdf(jin, tmp_path):
    jin[12000].to_netcdf(tmp_path / "jin.nc", engine="h5netcdf")


def test_jin_bad_initial_density():
    with pytest.raises(
        ValueError, match=r"initial_density must be one of \(12000, 16000, 20000\).*15000"
    ):
        load_jin2016(15000)


def write_jin(tmp_path: Path, table: np.ndarray) -> Path:
    folder = tmp_path / "jin2016_pc3"
    folder.mkdir(exist_ok=True)
    np.savetxt(folder / "fbs12000.csv", table, delimiter=",")
    return tmp_path


def test_jin_malformed_shape(tmp_path):
    home = write_jin(tmp_path, np.ones((5, 5)))
    with pytest.raises(
        ValueError, match=r"fbs12000\.csv: expected a 77 x 6 table.*found shape \(5, 5\)"
    ):
        load_jin2016(12000, data_home=home)


def test_jin_sd_block_must_share_x(jin, tmp_path):
    table = np.loadtxt(JIN / "fbs12000.csv", delimiter=",")
    table[40, 0] += 1.0
    with pytest.raises(ValueError, match=r"fbs12000\.csv: unexpected content.*sd block"):
        load_jin2016(12000, data_home=write_jin(tmp_path, table))


def test_jin_not_numeric(tmp_path):
    folder = tmp_path / "jin2016_pc3"
    folder.mkdir()
    (folder / "fbs12000.csv").write_text("time,a,b\n1,2,3\n")
    with pytest.raises(ValueError, match=r"fbs12000\.csv: not a numeric CSV"):
        load_jin2016(12000, data_home=tmp_path)


def test_jin_reference():
    need(JIN / "reference_estimates.csv")
    refs = load_jin2016_reference(data_home=DATA_HOME)
    assert len(refs) == 9
    assert set(refs[0]) == {"initial_density", "model", "source", "D", "r", "K", "c_min", "note"}
    fkpp = [e for e in refs if e["model"] == "FKPP" and e["source"].startswith("Jin2016")]
    assert [(e["initial_density"], e["D"], e["r"]) for e in fkpp] == [
        (12000, 250.0, 0.044), (16000, 570.0, 0.049), (20000, 1030.0, 0.064),
    ]  # fmt: skip
    assert all(e["K"] == 1.7e-3 for e in refs)
    assert [e["c_min"] for e in refs if e["model"].startswith("Porous")] == [None] * 3


# ---------------------------------------------------------------------------
# Spotted lanternfly
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lanternfly():
    need(LANTERNFLY)
    return load_lanternfly(data_home=DATA_HOME)


def test_lanternfly_layout(lanternfly):
    ds = lanternfly
    assert ds.lyde_established.dims == ("obs",) and ds.sizes["obs"] > 10_000
    for name in ("time", "x", "y", "lon", "lat"):
        assert ds[name].dims == ("obs",)
    assert float(ds.cell_size) == 10.0 and ds.cell_size.attrs["units"] == "km"
    assert ds.x.attrs["units"] == "km" and ds.time.attrs["units"] == "year"
    assert "2024" in ds.attrs["note"] and "Lambert" in ds.attrs["projection"]
    assert ds.lyde_density.attrs["flag_meanings"] == "Unpopulated Low Medium High"


def test_lanternfly_values(lanternfly):
    ds = lanternfly
    assert np.all(np.abs(ds.x) < 5000) and np.all(np.abs(ds.y) < 3000)
    np.testing.assert_array_equal(lanternfly_years(ds), np.arange(2014, 2025))
    assert np.all(np.diff(ds.time) >= 0)
    assert ds.lyde_established.notnull().all()
    assert set(np.unique(ds.lyde_established)) == {0.0, 1.0}
    present = ds.lyde_present.values
    assert set(np.unique(present[~np.isnan(present)])) == {0.0, 1.0}
    density = ds.lyde_density.values
    assert set(np.unique(density[~np.isnan(density)])) == {0.0, 1.0, 2.0, 3.0}


def test_lanternfly_starts_in_berks_county(lanternfly):
    near_origin = (np.abs(lanternfly.lon + 75.93) < 0.1) & (np.abs(lanternfly.lat - 40.42) < 0.1)
    assert near_origin.any()
    assert np.all(np.hypot(lanternfly.x, lanternfly.y).values[near_origin.values] < 15.0)
    first = lanternfly.isel(obs=(lanternfly.time == 2014) & (lanternfly.lyde_established == 1))
    assert first.sizes["obs"] > 0 and np.all(np.hypot(first.x, first.y) < 100.0)


def test_lanternfly_variable_selects_rows(lanternfly):
    ds = load_lanternfly(data_home=DATA_HOME, variable="lyde_density")
    assert ds.lyde_density.notnull().all()
    assert ds.sizes["obs"] != lanternfly.sizes["obs"]
    with pytest.raises(ValueError, match="variable must be one of.*'abundance'"):
        load_lanternfly(data_home=DATA_HOME, variable="abundance")


def test_lanternfly_fits_the_data_contract(lanternfly):
    obs = validate_observations(lanternfly, "lyde_established")
    assert obs.ndim == 2 and obs.layout == "scattered"
    np.testing.assert_array_equal(obs.extras["cell_size"], 10.0)
    np.testing.assert_array_equal(obs.unique_times, np.arange(2014.0, 2025.0))


def test_lanternfly_writes_to_netcdf(lanternfly, tmp_path):
    lanternfly.to_netcdf(tmp_path / "lyde.nc", engine="h5netcdf")


def test_lanternfly_bad_value(tmp_path):
    need(LANTERNFLY)
    folder = tmp_path / "lanternfly"
    folder.mkdir()
    lines = LANTERNFLY.read_text().splitlines()[:3]
    lines[2] = lines[2].replace("False", "maybe", 1)
    (folder / "lyde_10k.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ValueError, match=r"lyde_10k\.csv, line 3: unexpected lyde_present value 'maybe'"
    ):
        load_lanternfly(data_home=tmp_path)


def test_lanternfly_custom_origin(lanternfly):
    ds = load_lanternfly(data_home=DATA_HOME, origin=(-100.0, 40.0))
    assert ds.attrs["origin_lon"] == -100.0
    np.testing.assert_array_equal(np.sign(ds.x), np.sign(ds.lon + 100.0))


def test_projection_is_equal_area_and_centred():
    lonlat_to_km, radius = datasets._lonlat_to_km, datasets.EARTH_RADIUS_KM
    origin = (-75.93, 40.42)
    np.testing.assert_allclose(lonlat_to_km(*origin, origin), (0.0, 0.0), atol=1e-9)
    # due north by an angle c: the projected distance is 2 R sin(c / 2)
    x, y = lonlat_to_km(-75.93, 50.42, origin)
    assert x == pytest.approx(0.0, abs=1e-9)
    assert y == pytest.approx(2 * radius * np.sin(np.radians(10.0) / 2), rel=1e-12)
    # a small lon/lat cell keeps its spherical area R^2 cos(lat) dlon dlat
    lon, lat, d = -90.0, 30.0, 1e-3
    corners = np.array(
        [lonlat_to_km(lon + a, lat + b, origin) for a, b in [(0, 0), (d, 0), (0, d)]]
    )
    e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
    area = abs(e1[0] * e2[1] - e1[1] * e2[0])
    expected = radius**2 * np.cos(np.radians(lat)) * np.radians(d) ** 2
    assert area == pytest.approx(expected, rel=1e-4)
