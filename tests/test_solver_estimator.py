"""SolverEstimator: accuracy on synthetic data, intervals, and the estimator contract."""

import pickle
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone

import physreg
from physreg.model import Domain, GaussianIntroductions, ReactionDiffusion
from physreg.solvers import FiniteVolumeSolver

TRUTH = dict(D=0.1, r=1.0, gamma=1.0, ic_x=2.0, ic_width=0.3, ic_mass=0.5)
SIGMA = 0.05  # times max u ~ 1


def make_data(seed=1, n_times=8, n_sites=25):
    model = ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions())
    s = FiniteVolumeSolver(model, shape=512)
    t = np.linspace(1.0, 8.0, n_times)
    x = np.linspace(0.2, 9.8, n_sites)
    u = np.asarray(s.solve(TRUTH, t, t0=0.0))
    U = np.array([np.interp(x, s.centres[0], v) for v in u])
    y = U + SIGMA * U.max() * np.random.default_rng(seed).normal(size=U.shape)
    return xr.Dataset({"density": (("time", "x"), y, {"units": "ind/km"})},
                      coords={"time": ("time", t, {"units": "day"}),
                              "x": ("x", x, {"units": "km"})},
                      attrs={"domain_x": (0.0, 10.0)})


@pytest.fixture(scope="module")
def data():
    return make_data()


def make_est(**kw):
    return physreg.SolverEstimator(**{"initial": "gaussian", "t0": 0.0, "grid": 64,
                                      "n_starts": 2, **kw})


@pytest.fixture(scope="module")
def fitted(data):
    return make_est().fit(data)


def test_fit_recovers_truth(fitted):
    p = fitted.params_
    assert fitted.converged_
    assert p.dims == ("param",)
    for name in ("D", "r", "gamma"):
        assert abs(float(p.sel(param=name)) / TRUTH[name] - 1) < 0.1, name
    assert str(p.sel(param="D").units.values) == "km^2/day"


def test_wald_and_profile_intervals(fitted):
    wald = fitted.confidence_intervals(method="wald")
    prof = fitted.confidence_intervals(method="profile", params=["D", "r"])
    assert wald.dims == ("param", "bound")
    assert list(wald.bound.values) == ["lower", "upper"]
    for name in ("D", "r"):
        est = float(fitted.params_.sel(param=name))
        lo, hi = prof.sel(param=name).values
        assert lo < est < hi
        # on this well-identified problem the profile and Wald intervals nearly agree
        np.testing.assert_allclose(prof.sel(param=name).values, wald.sel(param=name).values,
                                   rtol=0.03)
    assert fitted.profiles_["deviance"].sel(param="D").min() >= -1e-6
    assert np.isnan(prof.sel(param="gamma").values).all()  # not profiled when not asked
    assert not prof["open"].any() and prof.attrs["open_ends"] == ""


def test_open_profile_ends_are_flagged(fitted):
    """A profile grid too short to reach the threshold leaves the interval open: the end is
    the parameter's natural limit (0 for D, on the log scale) and is flagged, not passed off
    as a measured bound."""
    with pytest.warns(UserWarning, match="open"):
        ci = fitted.confidence_intervals(method="profile", params=["D"], max_sd=0.5,
                                         n_points=2)
    assert ci.sel(param="D", bound="lower") == 0.0
    assert np.isinf(ci.sel(param="D", bound="upper"))
    assert ci["open"].sel(param="D").values.tolist() == [True, True]
    assert not ci["open"].sel(param="r").any()
    assert ci.attrs["open_ends"] == "D:lower,D:upper"


def test_bootstrap_intervals(fitted):
    ci = fitted.confidence_intervals(method="bootstrap", n_boot=16, scheme="parametric")
    b = fitted.bootstrap_
    assert b.sizes["replicate"] == 16 and b.attrs["n_failed"] <= 2
    for name in ("D", "r"):
        lo, hi = ci.sel(param=name).values
        assert lo < float(fitted.params_.sel(param=name)) < hi


def test_predict_and_score(fitted, data):
    u = fitted.predict(data)
    assert u.dims == ("time", "x") and u.shape == data["density"].shape
    resid = (data["density"] - u).values
    # residual sd close to the noise sd (0.05 * max u)
    assert 0.8 < resid.std() / (SIGMA * float(data["density"].max())) < 1.2
    s = fitted.score(data)
    sigma = float(fitted.params_.sel(param="sigma"))
    expected = -0.5 * np.log(2 * np.pi * sigma**2) - 0.5  # Gaussian at its MLE sigma
    assert abs(s - expected) < 0.05
    scattered = fitted.predict({"time": [2.0, 5.0], "x": [1.0, 3.0]})
    assert scattered.dims == ("time", "x")


def test_contract_clone_params_pickle(fitted, data):
    est = make_est(n_starts=3)
    assert est.get_params()["n_starts"] == 3
    c = clone(est)
    assert c.get_params() == est.get_params()
    est.set_params(n_starts=2)
    assert est.n_starts == 2
    blob = pickle.dumps(fitted)
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.params_.values, fitted.params_.values)
    np.testing.assert_allclose(again.predict(data).values, fitted.predict(data).values)


def test_fit_returns_self_idempotent_and_does_not_mutate(data):
    before = data.copy(deep=True)
    est = make_est(fixed={"gamma": 1.0, "ic_width": 0.3})
    assert est.fit(data) is est
    first = est.params_.values.copy()
    est.fit(data)
    np.testing.assert_allclose(est.params_.values, first, rtol=1e-10)
    xr.testing.assert_identical(data, before)
    assert bool(est.params_.sel(param="gamma").fixed)
    assert float(est.params_.sel(param="gamma")) == 1.0


def test_bad_input_errors(data):
    with pytest.raises(TypeError, match="xarray"):
        make_est().fit(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="nothere"):
        make_est(target="nothere").fit(data)
    with pytest.raises(ValueError, match="inverted"):
        make_est(bounds={"D": (1.0, 0.1)}).fit(data)
    with pytest.raises(ValueError, match="not a parameter"):
        make_est(bounds={"Q": (0.0, 1.0)}).fit(data)
    with pytest.raises(ValueError, match="not parameters"):
        make_est(fixed={"Q": 1.0}).fit(data)
    with pytest.raises(ValueError, match="method"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_est().fit(data).confidence_intervals(method="nope")
    neg = data.copy()
    neg["density"] = np.abs(neg["density"]).round() * 0 - 1
    with pytest.raises(ValueError, match="negative|count"):
        make_est(likelihood="poisson").fit(neg)


def test_known_initial_field_as_dataarray(data):
    # a known initial field (the true u at the first observed time) given as a DataArray
    model = ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions())
    s = FiniteVolumeSolver(model, shape=512)
    t_first = float(data.time[0])
    u0 = np.asarray(s.solve(TRUTH, np.array([t_first]), t0=0.0))[0]
    field = xr.DataArray(u0, dims=("x",), coords={"x": s.centres[0]}, attrs={"t0": t_first})
    later = data.isel(time=slice(1, None))
    est = physreg.SolverEstimator(initial=field, grid=64, n_starts=1, n_screen=0).fit(later)
    assert est.converged_
    assert est.model_.initial.t0 == pytest.approx(t_first)
    for p in ("D", "r"):
        assert float(est.params_.sel(param=p)) == pytest.approx(TRUTH[p], rel=0.1)
