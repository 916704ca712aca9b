"""Tests of physreg.data: the observation and covariate contract."""

import numpy as np
import pytest
import xarray as xr

from physreg import data
from physreg.data import (
    interpolate_covariates,
    to_gridded,
    to_scattered,
    validate_covariates,
    validate_observations,
)

# ---------------------------------------------------------------------------
# Fixtures: small datasets in both layouts
# ---------------------------------------------------------------------------

TIME = np.array([0.0, 1.0, 2.5])
X = np.array([0.0, 0.5, 1.0, 1.5])
Y = np.array([0.0, 2.0, 4.0])


def sd_field(t, x):
    """A known auxiliary field, to check that extras stay aligned with values."""
    return 0.1 + t + 10 * x


@pytest.fixture
def grid1d():
    t, x = np.meshgrid(TIME, X, indexing="ij")
    density = 1.0 + t * 100 + x
    density[1, 2] = np.nan
    return xr.Dataset(
        {
            "density": (("time", "x"), density, {"units": "cells/um^2", "long_name": "d"}),
            "density_sd": (("time", "x"), sd_field(t, x)),
            "effort": (("x",), 2.0 + X),
        },
        coords={"time": ("time", TIME, {"units": "h"}), "x": ("x", X, {"units": "um"})},
        attrs={"site": "lab"},
    )


@pytest.fixture
def grid2d():
    t, y, x = np.meshgrid(TIME, Y, X, indexing="ij")
    density = t * 100 + y * 10 + x
    density[0, 1, 1] = density[2, 2, 3] = np.nan
    return xr.Dataset(
        {"density": (("time", "y", "x"), density, {"units": "1/km^2"})},
        coords={
            "time": ("time", TIME, {"units": "year"}),
            "y": ("y", Y, {"units": "km"}),
            "x": ("x", X, {"units": "km"}),
        },
    )


@pytest.fixture
def scattered2d():
    return xr.Dataset(
        {"count": (("obs",), [3.0, np.nan, 5.0, 0.0])},
        coords={
            "time": ("obs", [0.0, 1.0, 1.0, 2.0]),
            "x": ("obs", [1.0, 2.0, 3.0, 1.0]),
            "y": ("obs", [0.0, 0.0, 1.0, 1.0]),
            "radius": 0.5,
        },
    )


# ---------------------------------------------------------------------------
# Valid input
# ---------------------------------------------------------------------------


def test_gridded_1d_flattens_observed_values(grid1d):
    obs = validate_observations(grid1d, domain={"x": (0, 2)})
    assert (obs.layout, obs.ndim, obs.target, obs.n_obs) == ("gridded", 1, "density", 11)
    assert obs.y is None
    np.testing.assert_array_equal(obs.value, 1.0 + obs.time * 100 + obs.x)
    assert obs.value.dtype == np.float64
    assert obs.grid["shape"] == (3, 4)
    np.testing.assert_array_equal(obs.grid["x"], X)
    np.testing.assert_array_equal(obs.value, grid1d.density.values.ravel()[obs.grid["index"]])
    assert obs.units == {"time": "h", "x": "um", "density": "cells/um^2"}
    assert obs.attrs == {"site": "lab", "units": "cells/um^2", "long_name": "d"}


def test_time_helpers(grid1d):
    obs = validate_observations(grid1d)
    np.testing.assert_array_equal(obs.unique_times, TIME)
    np.testing.assert_array_equal(obs.unique_times[obs.time_index], obs.time)


def test_any_dim_order_and_dataarray(grid2d):
    obs = validate_observations(grid2d)
    swapped = validate_observations(grid2d.density.transpose("x", "time", "y"))
    for name in ("time", "x", "y", "value"):
        np.testing.assert_array_equal(getattr(obs, name), getattr(swapped, name))
    assert obs.ndim == 2 and obs.n_obs == 3 * 3 * 4 - 2
    np.testing.assert_array_equal(obs.value, obs.time * 100 + obs.y * 10 + obs.x)


def test_dataarray_name_is_the_target(grid1d):
    assert validate_observations(grid1d.density.rename("u")).target == "u"
    assert validate_observations(grid1d.density.rename(None), "v").target == "v"


def test_extras_stay_aligned(grid1d):
    obs = validate_observations(grid1d, extras={"sd": "density_sd", "offset": "effort"})
    np.testing.assert_allclose(obs.extras["sd"], sd_field(obs.time, obs.x))
    np.testing.assert_allclose(obs.extras["offset"], 2.0 + obs.x)
    scattered = validate_observations(
        to_scattered(grid1d), extras={"sd": "density_sd", "offset": "effort"}
    )
    np.testing.assert_allclose(scattered.extras["sd"], sd_field(scattered.time, scattered.x))


def test_extra_nan_where_unobserved_is_fine(grid1d):
    grid1d["density_sd"] = grid1d.density_sd.where(grid1d.density.notnull())
    obs = validate_observations(grid1d, extras={"sd": "density_sd"})
    assert np.all(np.isfinite(obs.extras["sd"]))


def test_scattered_2d_with_radius_coordinate(scattered2d):
    obs = validate_observations(scattered2d, "count")
    assert (obs.layout, obs.ndim, obs.n_obs, obs.grid) == ("scattered", 2, 3, None)
    np.testing.assert_array_equal(obs.value, [3.0, 5.0, 0.0])
    np.testing.assert_array_equal(obs.y, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(obs.extras["radius"], [0.5, 0.5, 0.5])
    assert obs.units == {"time": None, "y": None, "x": None, "count": None}


def test_areal_support_from_attr(grid1d):
    grid1d.attrs["cell_size"] = 10
    obs = validate_observations(grid1d)
    np.testing.assert_array_equal(obs.extras["cell_size"], np.full(obs.n_obs, 10.0))


# ---------------------------------------------------------------------------
# Conversions and round trips
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["grid1d", "grid2d"])
def test_gridded_scattered_gridded_round_trip(name, request):
    ds = request.getfixturevalue(name)
    scattered = to_scattered(ds)
    assert scattered.density.dims == ("obs",)
    assert int(scattered.density.isnull().sum()) == 0
    assert scattered.x.attrs["units"] == ds.x.attrs["units"]
    back = to_gridded(scattered)
    xr.testing.assert_identical(back.density, ds.density)
    assert back.time.attrs == ds.time.attrs


def test_round_trip_carries_other_variables(grid1d):
    back = to_gridded(to_scattered(grid1d))
    observed = grid1d.density.notnull()
    xr.testing.assert_allclose(back.density_sd, grid1d.density_sd.where(observed))


def test_to_scattered_drops_unobserved_rows(scattered2d):
    out = to_scattered(scattered2d, "count")
    np.testing.assert_array_equal(out["count"].values, [3.0, 5.0, 0.0])


def test_to_gridded_of_gridded_transposes(grid2d):
    out = to_gridded(grid2d.transpose("x", "y", "time"))
    assert out.density.dims == ("time", "y", "x")


def test_to_gridded_refuses_duplicates(scattered2d):
    dup = scattered2d.assign_coords(time=("obs", [0.0, 1.0, 0.0, 0.0]), x=("obs", [1.0] * 4))
    dup = dup.assign_coords(y=("obs", [0.0, 0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="'count' do not form a grid.*1 observation"):
        to_gridded(dup, "count")


def test_to_gridded_refuses_points_off_a_grid(monkeypatch, scattered2d):
    monkeypatch.setattr(data, "_MAX_GRID_CELLS", 5)
    with pytest.raises(ValueError, match="'count' do not form a grid.*cells"):
        to_gridded(scattered2d, "count")


@pytest.mark.parametrize("name", ["grid1d", "scattered2d"])
def test_observations_to_dataset_round_trip(name, request):
    ds = request.getfixturevalue(name)
    target = "count" if name == "scattered2d" else "density"
    extras = {"density_sd": "density_sd"} if name == "grid1d" else {}
    obs = validate_observations(ds, target, extras=extras)
    again = validate_observations(obs.to_dataset(), target, extras=extras)
    assert again.layout == obs.layout and again.units == obs.units and again.attrs == obs.attrs
    for field in ("time", "x", "y", "value"):
        np.testing.assert_array_equal(getattr(again, field), getattr(obs, field))
    assert again.extras.keys() == obs.extras.keys()
    for key, values in obs.extras.items():
        np.testing.assert_array_equal(again.extras[key], values)
    if obs.layout == "gridded":
        np.testing.assert_array_equal(again.grid["index"], obs.grid["index"])


# ---------------------------------------------------------------------------
# Errors: each names the variable at fault
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), [1.0, 2.0], None])
def test_not_xarray_is_type_error(bad):
    with pytest.raises(
        TypeError, match=f"xarray.Dataset or xarray.DataArray, got .*{type(bad).__name__}"
    ):
        validate_observations(bad)


def test_target_missing_lists_variables(grid1d):
    with pytest.raises(
        ValueError, match=r"'count' not found.*\['density', 'density_sd', 'effort'\]"
    ):
        validate_observations(grid1d, "count")


def test_wrong_dims(grid1d):
    bad = grid1d.density.rename(x="z")
    with pytest.raises(ValueError, match=r"'density' has dims \('time', 'z'\)"):
        validate_observations(bad)
    with pytest.raises(ValueError, match="'density' has dims"):
        validate_observations(grid1d.density.isel(time=0))


def test_missing_coordinate(grid1d):
    with pytest.raises(ValueError, match="dimension 'x' of variable 'density' has no coordinate"):
        validate_observations(grid1d.drop_vars("x"))


def test_non_numeric_data(grid1d):
    text = grid1d.density.astype(str)
    with pytest.raises(ValueError, match="variable 'density' has non-numeric dtype"):
        validate_observations(text)


def test_non_numeric_coordinate(grid1d):
    dated = grid1d.assign_coords(
        time=np.array(["2020-01-01", "2020-01-02", "2020-01-05"], "M8[ns]")
    )
    with pytest.raises(ValueError, match="coordinate 'time' of variable 'density' has non-numeric"):
        validate_observations(dated)


def test_not_increasing_coordinate(grid1d):
    with pytest.raises(
        ValueError, match="coordinate 'x' of variable 'density' is not strictly increasing"
    ):
        validate_observations(grid1d.isel(x=[0, 2, 1, 3]))


def test_duplicate_coordinate(grid1d):
    with pytest.raises(
        ValueError, match="coordinate 'x' of variable 'density' has duplicate values"
    ):
        validate_observations(grid1d.assign_coords(x=[0.0, 0.5, 0.5, 1.0]))


def test_all_nan(grid1d):
    with pytest.raises(ValueError, match="'density' has no observed value: it is all NaN"):
        validate_observations(grid1d.density * np.nan)


def test_infinite_values(grid1d):
    grid1d.density[0, 0] = np.inf
    with pytest.raises(ValueError, match="variable 'density' has 1 infinite value"):
        validate_observations(grid1d)


def test_negative_times(grid1d):
    with pytest.raises(ValueError, match="coordinate 'time' of variable 'density' has negative"):
        validate_observations(grid1d.assign_coords(time=TIME - 1))


def test_non_finite_scattered_time(scattered2d):
    bad = scattered2d.assign_coords(time=("obs", [0.0, 1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="coordinate 'time' of variable 'count' has 1 non-finite"):
        validate_observations(bad, "count")


def test_observations_outside_domain(grid1d):
    with pytest.raises(
        ValueError, match=r"3 observation\(s\) of variable 'density' lie outside .*x=1\.5"
    ):
        validate_observations(grid1d, domain={"x": (0.0, 1.2)})


@pytest.mark.parametrize(
    ("domain", "match"),
    [
        ({"x": (2.0, 1.0)}, r"domain\['x'\].*inverted"),
        ({"x": (0.0, np.inf)}, r"domain\['x'\].*finite"),
        ({"x": (0.0, 1.0), "y": (0.0, 1.0)}, "axis 'y'.*1-D"),
        ({"x": 3.0}, r"domain\['x'\] must be a pair"),
    ],
)
def test_bad_domain(grid1d, domain, match):
    with pytest.raises(ValueError, match=match):
        validate_observations(grid1d, domain=domain)


def test_scattered_needs_coordinates_along_obs(scattered2d):
    with pytest.raises(ValueError, match="'count' needs a coordinate 'time'.*set_coords"):
        validate_observations(scattered2d.reset_coords("time"), "count")
    with pytest.raises(ValueError, match="'count' needs a coordinate 'x'"):
        validate_observations(scattered2d.drop_vars("x"), "count")
    wrong = scattered2d.assign_coords(x=("site", [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(
        ValueError, match="coordinate 'x' of scattered variable 'count' must be on dim 'obs'"
    ):
        validate_observations(wrong, "count")


def test_scattered_with_extra_dim(scattered2d):
    bad = scattered2d["count"].expand_dims(rep=2)
    with pytest.raises(
        ValueError, match="scattered variable 'count' must have the single dim 'obs'"
    ):
        validate_observations(bad)


def test_extra_variable_missing(grid1d):
    with pytest.raises(ValueError, match=r"extras\['sd'\] refers to 'sigma'.*available"):
        validate_observations(grid1d, extras={"sd": "sigma"})


def test_extra_nan_where_observed(grid1d):
    grid1d.density_sd[2, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"variable 'density_sd' \(extras\['sd'\]\) is NaN at 1 point"
    ):
        validate_observations(grid1d, extras={"sd": "density_sd"})


def test_extra_with_foreign_dims(grid1d):
    grid1d["rep_sd"] = (("rep", "x"), np.ones((2, 4)))
    with pytest.raises(ValueError, match="variable 'rep_sd'.*dims"):
        validate_observations(grid1d, extras={"sd": "rep_sd"})


def test_radius_and_cell_size_are_exclusive(scattered2d):
    with pytest.raises(ValueError, match="both 'radius' and 'cell_size'"):
        validate_observations(scattered2d.assign_attrs(cell_size=1.0), "count")


def test_negative_radius(scattered2d):
    with pytest.raises(ValueError, match="'radius' of variable 'count' has negative"):
        validate_observations(scattered2d.assign_coords(radius=-1.0), "count")


def test_bad_areal_attr(grid1d):
    with pytest.raises(ValueError, match="attribute 'radius' must be a scalar"):
        validate_observations(grid1d.assign_attrs(radius="big"))


# ---------------------------------------------------------------------------
# Covariates
# ---------------------------------------------------------------------------

CX = np.linspace(0.25, 9.75, 20)  # cell centres of [0, 10], step 0.5
CY = np.linspace(0.5, 4.5, 5)  # cell centres of [0, 5], step 1
CT = np.array([2014.5, 2016.5, 2018.5])


def linear(t, y, x):
    return 1.0 + 0.3 * x - 2.0 * y + 0.5 * (t - 2014)


@pytest.fixture
def cov2d():
    t, y, x = np.meshgrid(CT, CY, CX, indexing="ij")
    return xr.Dataset(
        {
            "elev": (("y", "x"), linear(2014, y[0], x[0]), {"units": "m"}),
            "temp": (("time", "y", "x"), linear(t, y, x)),
        },
        coords={"time": CT, "y": CY, "x": ("x", CX, {"units": "km"})},
    )


def test_covariates_valid_and_transposed(cov2d):
    out = validate_covariates(
        cov2d.transpose("x", "y", "time"), ndim=2,
        domain={"x": (0, 10), "y": (0, 5)}, time_range=(2014, 2019),
    )  # fmt: skip
    assert out.temp.dims == ("time", "y", "x") and out.elev.dims == ("y", "x")
    assert out.temp.dtype == np.float64 and out.x.dtype == np.float64
    assert out.x.attrs["units"] == "km" and out.elev.attrs["units"] == "m"


def test_covariates_1d_integer_values():
    cov = xr.Dataset({"soil": (("x",), np.arange(5))}, coords={"x": np.arange(5)})
    out = validate_covariates(cov, ndim=1, domain={"x": (-0.5, 4.5)})
    assert out.soil.dtype == np.float64 and out.x.dtype == np.float64


def test_covariate_dims_must_match_ndim(cov2d):
    with pytest.raises(ValueError, match=r"covariate 'elev' has dims \('y', 'x'\); with 1-D"):
        validate_covariates(cov2d[["elev"]], ndim=1)
    with pytest.raises(ValueError, match=r"covariate 'elev' has dims \('x',\); with 2-D"):
        validate_covariates(cov2d[["elev"]].isel(y=0), ndim=2)
    with pytest.raises(ValueError, match="covariate 'band'"):
        validate_covariates(xr.Dataset({"band": (("b", "x"), np.ones((2, 3)))}), ndim=1)


def test_covariate_domain_not_covered(cov2d):
    with pytest.raises(
        ValueError,
        match=r"covariate 'elev' does not cover the domain along 'x'.*\[0\.25, 9\.75\].*\[0, 12\]",
    ):
        validate_covariates(cov2d, ndim=2, domain={"x": (0, 12)})
    with pytest.raises(ValueError, match="covariate 'elev' does not cover the domain along 'y'"):
        validate_covariates(cov2d, ndim=2, domain={"y": (-0.6, 5)})


def test_covariate_coverage_tolerates_half_a_step(cov2d):
    validate_covariates(cov2d, ndim=2, domain={"x": (0.0, 10.0), "y": (0.0, 5.0)})


def test_covariate_time_range_not_covered(cov2d):
    with pytest.raises(
        ValueError, match="covariate 'temp' does not cover the time range along 'time'"
    ):
        validate_covariates(cov2d, ndim=2, time_range=(2014, 2021))


def test_covariate_nan(cov2d):
    cov2d.elev[0, 0] = np.nan
    with pytest.raises(ValueError, match="covariate 'elev' has 1 NaN"):
        validate_covariates(cov2d, ndim=2)


def test_covariate_bad_coordinate(cov2d):
    with pytest.raises(ValueError, match="coordinate 'x' of covariates is not strictly increasing"):
        validate_covariates(cov2d.isel(x=slice(None, None, -1)), ndim=2)


def test_covariate_types(cov2d):
    with pytest.raises(TypeError, match="cov must be an xarray.Dataset"):
        validate_covariates(np.ones(3), ndim=1)
    with pytest.raises(ValueError, match="needs a name"):
        validate_covariates(xr.DataArray(np.ones(3), dims="x"), ndim=1)
    with pytest.raises(ValueError, match="no data variables"):
        validate_covariates(xr.Dataset(), ndim=1)


def test_interpolation_is_exact_on_linear_fields(cov2d):
    rng = np.random.default_rng(0)
    x = rng.uniform(CX[0], CX[-1], size=(4, 6))
    y = rng.uniform(CY[0], CY[-1], size=(4, 6))
    t = np.array([2014.5, 2015.2, 2018.0])
    out = interpolate_covariates(validate_covariates(cov2d, ndim=2), x, y, time=t)
    assert out["elev"].shape == (4, 6) and out["temp"].shape == (3, 4, 6)
    np.testing.assert_allclose(out["elev"], linear(2014, y, x), rtol=1e-12)
    np.testing.assert_allclose(out["temp"], linear(t[:, None, None], y, x), rtol=1e-12)


def test_interpolation_without_time_uses_covariate_times(cov2d):
    out = interpolate_covariates(cov2d, x=[1.0, 2.0], y=2.0)
    assert out["temp"].shape == (3, 2)
    np.testing.assert_allclose(out["temp"], linear(CT[:, None], 2.0, np.array([1.0, 2.0])))


def test_interpolation_clamps_to_nearest_edge(cov2d):
    out = interpolate_covariates(cov2d, x=[0.0, 10.0], y=[4.9, 0.1], time=[2014.0, 2019.0])
    np.testing.assert_allclose(out["elev"], linear(2014, np.array([4.5, 0.5]), CX[[0, -1]]))
    np.testing.assert_allclose(out["temp"][:, 0], linear(CT[[0, -1]], 4.5, CX[0]))


def test_interpolation_1d_and_single_point_axes():
    cov = xr.Dataset(
        {"a": (("x",), [1.0, 3.0]), "b": (("time", "x"), [[5.0, 5.0]])},
        coords={"x": [0.0, 1.0], "time": [0.0]},
    )
    out = interpolate_covariates(cov, x=np.array([0.25, 2.0]), time=[0.0, 7.0])
    np.testing.assert_allclose(out["a"], [1.5, 3.0])
    np.testing.assert_allclose(out["b"], np.full((2, 2), 5.0))
    with pytest.raises(ValueError, match="covariate 'a'.*is 1-D: do not pass y"):
        interpolate_covariates(cov, x=[0.5], y=[0.5])


def test_interpolation_needs_y_in_2d(cov2d):
    with pytest.raises(ValueError, match="covariate 'elev'.*needs y="):
        interpolate_covariates(cov2d, x=[1.0])
