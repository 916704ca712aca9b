"""Synthetic Fisher-KPP generators (physreg.datasets.make_*) and the bundled examples."""

import numpy as np
import pytest
import xarray as xr

from physreg import datasets
from physreg.data import validate_covariates, validate_observations
from physreg.datasets import (
    EXAMPLES,
    load_example,
    make_example,
    make_fisher_kpp_1d,
    make_fisher_kpp_2d,
    spec_of,
    truth_of,
)
from physreg.likelihoods import Gaussian, Poisson


def _domain(ds):
    dom = {"x": tuple(ds.attrs["domain_x"])}
    if "domain_y" in ds.attrs:
        dom["y"] = tuple(ds.attrs["domain_y"])
    return dom


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


# Generated once per session: the canonical datasets (also what the bundled files hold).
@pytest.fixture(scope="module")
def examples():
    return {name: _as_tuple(make_example(name)) for name in EXAMPLES}


@pytest.fixture(scope="module")
def gauss1d(examples):
    return examples["fkpp1d_gaussian"][0]


def test_yardstick_case_shape_and_attrs(gauss1d):
    ds = gauss1d
    assert ds["density"].dims == ("time", "x")
    assert ds.sizes == {"time": 8, "x": 25}
    assert ds["time"].attrs["units"] == "day" and ds["x"].attrs["units"] == "km"
    assert "units" in ds["density"].attrs
    obs = validate_observations(ds, domain=_domain(ds))
    assert obs.layout == "gridded" and obs.n_obs == 200
    assert ds.attrs["likelihood"] == "gaussian"
    assert ds.attrs["likelihood_sigma"] == pytest.approx(0.05 * ds["u_true"].max())
    # the front moves across the domain: u = 0.5 crossing goes right by > 3 km
    u = ds["u_true"].values
    x = ds["x"].values
    front = [x[np.flatnonzero(row > 0.5)].max() for row in u[1:]]
    assert front[-1] - front[0] > 3.0
    assert np.all(np.diff(front) >= 0)


def test_noise_level_is_right(gauss1d):
    ds = gauss1d
    resid = (ds["density"] - ds["u_true"]).values.ravel()
    assert resid.size == 200
    ratio = resid.std() / (0.05 * ds["u_true"].values.max())
    assert abs(ratio - 1.0) < 0.15


def test_same_seed_same_data_other_seed_other_data(gauss1d, examples):
    xr.testing.assert_identical(make_fisher_kpp_1d(random_state=0), gauss1d)
    other = make_fisher_kpp_1d(random_state=1)
    np.testing.assert_array_equal(other["u_true"], gauss1d["u_true"])
    assert not np.array_equal(other["density"], gauss1d["density"])
    # scattered: the sites move with the seed too
    scat = examples["fkpp1d_scattered_poisson"][0]
    again = make_fisher_kpp_1d(layout="scattered", noise="poisson", kappa=50.0, random_state=1)
    xr.testing.assert_identical(again, scat)
    moved = make_fisher_kpp_1d(layout="scattered", noise="poisson", kappa=50.0, random_state=2)
    assert not np.array_equal(moved["x"], scat["x"])


def test_truth_round_trip(gauss1d, tmp_path):
    expected = {
        "D": 0.1,
        "r": 1.0,
        "gamma": 1.0,
        "ic_x": 2.0,
        "ic_width": 0.3,
        "ic_mass": 0.5,
        "sigma": gauss1d.attrs["likelihood_sigma"],
    }
    assert truth_of(gauss1d) == pytest.approx(expected)
    path = tmp_path / "d.nc"
    gauss1d.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    assert truth_of(back) == truth_of(gauss1d)
    xr.testing.assert_identical(back, gauss1d)
    with pytest.raises(ValueError, match="truth"):
        truth_of(xr.Dataset())


def test_spec_of_rebuilds_model_and_observation_model(gauss1d, examples):
    model, om = spec_of(gauss1d)
    assert model.domain.x == (0.0, 10.0) and model.ndim == 1
    assert set(truth_of(gauss1d)) == set(model.param_names()) | set(om._NUISANCE_FIELDS)
    assert isinstance(om, Gaussian) and om.sigma == gauss1d.attrs["likelihood_sigma"]
    obs, _ = examples["fkpp2d_poisson"]
    model, om = spec_of(obs)
    assert model.r.covariates == ("elevation",) and model.D.covariates == ()
    assert om == Poisson(kappa=10.0)
    truth = truth_of(obs)
    assert set(truth) == set(model.param_names()) | {"kappa"}
    assert truth["r_elevation"] == -0.3


def test_counts_are_integers(examples):
    ds = examples["fkpp1d_scattered_poisson"][0]
    o = validate_observations(ds, domain=_domain(ds))
    assert o.layout == "scattered" and o.n_obs == 200 and set(ds["x"].dims) == {"obs"}
    y = ds["density"].values
    assert np.all(y >= 0) and np.all(y == np.round(y)) and y.max() > 10
    assert ds["density"].attrs["units"] == "count"


def test_2d_poisson_and_covariates(examples):
    obs, cov = examples["fkpp2d_poisson"]
    dom = _domain(obs)
    assert dom == {"x": (0.0, 20.0), "y": (0.0, 12.0)}
    o = validate_observations(obs, domain=dom)
    assert o.ndim == 2 and o.n_obs == 300 and len(o.unique_times) == 5
    # fixed sites: the same 60 positions at every time
    assert np.unique(obs["site"]).size == 60
    first = obs.isel(obs=obs["time"].values == obs["time"].values[0])
    last = obs.isel(obs=obs["time"].values == obs["time"].values[-1])
    np.testing.assert_array_equal(first["x"], last["x"])
    y = obs["density"].values
    assert np.all(y == np.round(y)) and np.all(y >= 0)
    assert obs.attrs["likelihood_kappa"] == 10.0
    checked = validate_covariates(cov, ndim=2, domain=dom)
    z = checked["elevation"].values
    assert checked["elevation"].dims == ("y", "x")
    assert abs(z.mean()) < 1e-12 and z.std() == pytest.approx(1.0)
    assert cov["x"].values[[0, -1]].tolist() == [0.0, 20.0]
    # the population spreads: more sites occupied at the end than at the start
    assert (last["u_true"] > 0.5).mean() > (first["u_true"] > 0.5).mean() + 0.3


def test_2d_bernoulli_areal_random_sites():
    obs, cov = make_fisher_kpp_2d(likelihood="bernoulli", cell_size=1.0, sites="random")
    o = validate_observations(obs, domain=_domain(obs))
    assert set(np.unique(obs["density"])) <= {0.0, 1.0}
    assert 0.2 < obs["density"].mean() < 0.9
    np.testing.assert_array_equal(o.extras["cell_size"], 1.0)
    assert np.unique(obs["site"]).size == 300  # new sites at each time
    assert spec_of(obs)[1].kappa == 10.0


def test_lognormal_noise_level():
    ds = make_fisher_kpp_1d(noise="lognormal", random_state=3)
    validate_observations(ds, domain=_domain(ds))
    y, u = ds["density"].values, ds["u_true"].values
    assert np.all(y > 0)
    seen = u > 1e-6  # the sampler floors u at 1e-30
    ratio = np.log(y[seen] / u[seen]).std() / 0.05
    assert abs(ratio - 1.0) < 0.15
    assert spec_of(ds)[1].sigma == 0.05


def test_noise_conventions_without_sampling():
    mu = np.array([0.0, 0.5, 2.0])
    om, nuis, settings = datasets._observation_model(
        "negbin", mu, noise_level=0.1, kappa=None, phi=None, trials=None
    )
    assert nuis == pytest.approx({"kappa": 1 / (0.1**2 * 2.0), "phi": 10.0}) and settings == {}
    assert (om.kappa, om.phi) == (nuis["kappa"], 10.0)
    om, nuis, settings = datasets._observation_model(
        "binomial", mu, noise_level=0.1, kappa=None, phi=None, trials=None
    )
    assert 1 - np.exp(-nuis["kappa"] * 2.0) == pytest.approx(0.95) and settings == {"trials": 10.0}
    om, nuis, _ = datasets._observation_model(
        "poisson", mu, noise_level=0.1, kappa=7.0, phi=None, trials=None
    )
    assert om == Poisson(kappa=7.0) and nuis == {"kappa": 7.0}
    with pytest.raises(ValueError, match="density is zero at every observation"):
        datasets._observation_model(
            "bernoulli", np.zeros(3), noise_level=0.1, kappa=None, phi=None, trials=None
        )


def test_exact_data():
    ds = make_fisher_kpp_1d(noise_level=0.0)
    np.testing.assert_array_equal(ds["density"], ds["u_true"])
    assert truth_of(ds)["sigma"] == 0.0
    assert spec_of(ds)[1].sigma is None  # nothing to fix: left to be fitted


@pytest.mark.slow
@pytest.mark.parametrize("noise", ["negbin", "binomial", "bernoulli"])
def test_other_likelihoods_1d(noise):
    ds = make_fisher_kpp_1d(noise=noise, random_state=3)
    extras = {"trials": "trials"} if noise == "binomial" else None
    validate_observations(ds, extras=extras, domain=_domain(ds))
    _, om = spec_of(ds)
    om.validate(ds["density"].values, {"trials": ds["trials"].values} if extras else {})
    y = ds["density"].values
    if noise == "negbin":
        assert ds.attrs["likelihood_phi"] == 10.0
        assert ds.attrs["likelihood_kappa"] == pytest.approx(400 / ds["u_true"].values.max())
        assert np.all(y == np.round(y)) and y.var() > y.mean()
    elif noise == "binomial":
        assert ds.attrs["likelihood_trials"] == 10.0 and y.max() <= 10
    else:
        assert set(np.unique(y)) == {0.0, 1.0}


@pytest.mark.slow
def test_carrying_capacity():
    ds = make_fisher_kpp_1d(K=2.0)
    assert truth_of(ds)["K"] == 2.0 and "gamma" not in truth_of(ds)
    assert ds["u_true"].values.max() > 1.5  # grows towards K = 2
    model, _ = spec_of(ds)
    assert model.competition == "K"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_load_example_equals_regeneration(name, examples):
    """The bundled files are what the code makes now (else: python data/make_data.py).

    Tolerances allow round-off changes in the solver; counts must be the same draws.
    """
    for f in EXAMPLES[name]["files"]:
        assert (datasets.EXAMPLES_DIR / f).is_file(), f
    loaded = _as_tuple(load_example(name))
    for a, b in zip(loaded, examples[name], strict=True):
        xr.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
        assert a.attrs.keys() == b.attrs.keys()
        for key, value in b.attrs.items():
            if key.startswith(("truth_", "likelihood_")):
                assert a.attrs[key] == pytest.approx(value, rel=1e-7), key
            elif key != "source":
                np.testing.assert_array_equal(a.attrs[key], value, err_msg=key)
        if "density" in b and name.endswith("poisson"):  # the same draws
            np.testing.assert_array_equal(a["density"], b["density"])


def test_load_example_falls_back_to_regeneration(monkeypatch, tmp_path, gauss1d):
    monkeypatch.setattr(datasets, "EXAMPLES_DIR", tmp_path)
    xr.testing.assert_identical(load_example("fkpp1d_gaussian"), gauss1d)
    with pytest.raises(ValueError, match="unknown example 'nope'"):
        load_example("nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"D": -0.1}, "D must be > 0"),
        ({"D": 0.0}, "D must be > 0"),
        ({"noise_level": -0.01}, "noise_level must be >= 0"),
        ({"noise": "cauchy"}, "noise must be one of"),
        ({"n_sites": 0}, "n_sites must be >= 1"),
        ({"n_times": 0}, "n_times must be >= 1"),
        ({"n_sites": 2.5}, "n_sites must be an integer"),
        ({"domain": (10.0, 0.0)}, "domain .* inverted"),
        ({"gamma": 1.0, "K": 2.0}, "gamma or K"),
        ({"t_max": 0.0}, "t_max must be > t0"),
        ({"layout": "grid"}, "layout must be"),
        ({"initial": {"x": 20.0, "width": 0.3, "mass": 0.5}}, r"initial\['x'\] .* outside"),
        ({"initial": {"x": 2.0, "width": -0.3, "mass": 0.5}}, r"initial\['width'\] must be > 0"),
        ({"kappa": -1.0, "noise": "poisson"}, "kappa must be > 0"),
        ({"noise": "poisson", "noise_level": 0.0}, "noise_level must be > 0"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_bad_arguments_1d(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_fisher_kpp_1d(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"likelihood": "zip"}, "likelihood must be one of"),
        ({"n_sites": 0}, "n_sites must be >= 1"),
        ({"domain": {"x": (0, 20), "y": (12, 0)}}, r"domain\['y'\] .* inverted"),
        ({"domain": {"x": (0, 20)}}, "domain must be a mapping"),
        ({"sites": "grid"}, "sites must be"),
        ({"cell_size": 0.0}, "cell_size must be > 0"),
        ({"covariate": "x"}, "covariate must be"),
        ({"D": -1.0}, "D must be > 0"),
        ({"grid": (2, 50)}, "grid must be >= 3"),
    ],
)
def test_bad_arguments_2d(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_fisher_kpp_2d(**kwargs)


def test_example_registry_is_consistent():
    for name, entry in EXAMPLES.items():
        assert entry["generator"] in ("make_fisher_kpp_1d", "make_fisher_kpp_2d")
        assert all(f.endswith(".nc") for f in entry["files"]), name
        assert len(entry["files"]) == (2 if "2d" in name else 1)
