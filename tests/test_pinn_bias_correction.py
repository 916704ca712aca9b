"""PINNEstimator.correct_bias: cold refits on data simulated by the finite-volume solver at
the fitted parameters (the bias and the coverage it buys are measured by
``studies/pinn_bias_correction.py``; here the mechanics, on a small seed-fixed fit)."""

import copy
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import physreg

SMALL = dict(initial="gaussian", t0=0.0, hard_ic="heat", width=16, depth=2, modes=6,
             n_collocation=256, n_adam=600, n_lbfgs=600, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=0)
    est = physreg.PINNEstimator(**SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(ds)
    return est


def test_solver_twin_is_the_same_model_at_the_fitted_parameters(fitted):
    """The simulated data come from the solver at the PINN's estimate: the twin has the
    PINN's parameter space and its mean at the observations is the PINN's own prediction
    up to the PINN's approximation error (1.2% measured), and the generator of the synthetic
    data's up to discretisation (1.8e-4)."""
    twin = fitted._solver_twin()
    assert twin.space_.free == fitted.space_.free
    mu = np.asarray(twin.problem_.mu(jnp.asarray(fitted.z_)))
    obs = fitted.obs_
    assert mu.shape == (obs.n_obs,)
    u = np.asarray(fitted._predict_points(obs.time, obs.x))
    rel = np.sqrt(np.mean((mu - u) ** 2)) / np.sqrt(np.mean(mu ** 2))
    assert rel < 0.03, rel
    # the same solution as the generator of the synthetic data (and of the simulations in
    # studies/pinn_bias_correction.py) at the fitted parameters
    p = {n: float(fitted.params_.sel(param=n)) for n in fitted.params_["param"].values}
    exact = physreg.datasets.make_fisher_kpp_1d(
        D=p["D"], r=p["r"], gamma=p["gamma"], noise_level=0.0, t0=0.0, random_state=0,
        initial={"x": p["ic_x"], "width": p["ic_width"], "mass": p["ic_mass"]})
    ref = exact["u_true"].transpose("time", "x").values.ravel()[obs.grid["index"]]
    gen = np.sqrt(np.mean((mu - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    assert gen < 2e-3, gen
    # and not at some other parameter vector: D halved moves the front visibly
    z = np.asarray(fitted.z_).copy()
    z[fitted.space_.free.index("D")] -= np.log(2.0)
    mu2 = np.asarray(twin.problem_.mu(jnp.asarray(z)))
    assert np.sqrt(np.mean((mu2 - u) ** 2)) / np.sqrt(np.mean(mu ** 2)) > 3 * rel


def test_correct_bias_refits_and_shifts(fitted):
    est = fitted
    with pytest.raises(ValueError, match="correct_bias"):
        est.confidence_intervals(method="wald", bias_corrected=True)
    with pytest.raises(ValueError, match="n_sim"):
        est.correct_bias(n_sim=0)
    est.correct_bias(n_sim=2, random_state=3)
    names = list(est.space_.free)
    assert list(est.bias_["param"].values) == names and est.bias_.attrs["n_sim"] == 2
    refits = est.bias_refits_
    assert refits.shape == (2, len(names)) and np.isfinite(refits.values).all()
    # two different cold fits of two different data sets, not copies of the fit
    assert not np.allclose(refits.values[0], refits.values[1])
    assert not np.allclose(refits.values[0], est.params_.sel(param=names).values)
    # bias = mean of the refits minus the estimate, on the unconstrained scale: log for D
    # (log link), natural for r (identity link)
    assert est.space_.is_log[names.index("D")] and not est.space_.is_log[names.index("r")]
    D_hat, r_hat = (float(est.params_.sel(param=n)) for n in ("D", "r"))
    b = np.mean(np.log(refits.sel(param="D").values)) - np.log(D_hat)
    assert float(est.bias_.sel(param="D")) == pytest.approx(b, rel=1e-10, abs=1e-12)
    assert float(est.params_corrected_.sel(param="D")) == pytest.approx(D_hat * np.exp(-b),
                                                                       rel=1e-10)
    b = np.mean(refits.sel(param="r").values) - r_hat
    assert float(est.bias_.sel(param="r")) == pytest.approx(b, rel=1e-10, abs=1e-12)
    assert float(est.params_corrected_.sel(param="r")) == pytest.approx(r_hat - b, rel=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ci = est.confidence_intervals(method="wald")
        cc = est.confidence_intervals(method="wald", bias_corrected=True)
    assert cc.attrs["method"] == "wald+bias-corrected"
    shift = np.exp(-float(est.bias_.sel(param="D")))
    np.testing.assert_allclose(cc.sel(param="D").values, ci.sel(param="D").values * shift,
                               rtol=1e-10)
    # the same seed gives the same correction
    b0 = est.bias_.values.copy()
    est.correct_bias(n_sim=2, random_state=3)
    np.testing.assert_allclose(est.bias_.values, b0, rtol=1e-8, atol=1e-10)



def test_correct_bias_rounds_iterate_from_the_corrected_estimate(fitted):
    """n_rounds=2: round 1 is the one-round correction (same random_state, same draws);
    round 2 simulates at the once-corrected estimate and reads the bias there."""
    est = fitted
    with pytest.raises(ValueError, match="n_rounds"):
        est.correct_bias(n_sim=2, n_rounds=0)
    est.correct_bias(n_sim=2, random_state=3)
    b1 = est.bias_.values.copy()
    np.testing.assert_array_equal(est.bias_rounds_.values, b1[None])
    est.correct_bias(n_sim=2, random_state=3, n_rounds=2)
    assert est.bias_rounds_.shape == (2, len(b1)) and est.bias_.attrs["n_rounds"] == 2
    np.testing.assert_allclose(est.bias_rounds_.values[0], b1, rtol=1e-8, atol=1e-10)
    b2 = est.bias_rounds_.values[1]
    np.testing.assert_array_equal(est.bias_.values, b2)
    assert not np.allclose(b2, b1)          # new data sets, new refits
    # round 2's bias is measured from the once-corrected point, not from the fit
    z_hat = np.asarray(est.z_)
    z_refits = np.asarray(est.space_.to_unconstrained(jnp.asarray(est.bias_refits_.values)))
    np.testing.assert_allclose(b2, z_refits.mean(axis=0) - (z_hat - b1), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(
        np.asarray(est.space_.to_unconstrained(jnp.asarray(
            est.params_corrected_.sel(param=list(est.space_.free)).values))),
        z_hat - b2, rtol=1e-8, atol=1e-10)


def test_correct_bias_from_expected_values(fitted):
    """data="expected": the refits fit the observation model's mean at the estimate (no
    noise), with the nuisance sigma held there; they differ only by their random states."""
    est = fitted
    with pytest.raises(ValueError, match="data must be"):
        est.correct_bias(n_sim=2, data="mean")
    est.correct_bias(n_sim=2, random_state=3, data="expected")
    names = list(est.space_.free)
    assert est.bias_.attrs["data"] == "expected" and "sigma" in names
    refits = est.bias_refits_
    assert refits.shape == (2, len(names)) and np.isfinite(refits.values).all()
    # sigma held at the estimate: no bias read for it; the others refitted cold
    np.testing.assert_allclose(refits.sel(param="sigma").values,
                               float(est.params_.sel(param="sigma")), rtol=1e-10)
    assert float(est.bias_.sel(param="sigma")) == pytest.approx(0.0, abs=1e-12)
    assert not np.allclose(refits.sel(param="D").values[0], refits.sel(param="D").values[1])
    b = np.mean(np.log(refits.sel(param="D").values)) - np.log(float(est.params_.sel(param="D")))
    assert float(est.bias_.sel(param="D")) == pytest.approx(b, rel=1e-10, abs=1e-12)
    # noise-free data at the estimate: the refits show the PINN's pull alone, D low as with
    # simulated draws (measured: -0.074 here; simulated draws with these seeds: -0.115)
    assert -0.2 < b < -0.03, b


def test_widen_for_noise():
    """Each end moves out so that a normal interval's sd becomes sqrt(sd0^2 + sd^2)."""
    from scipy.stats import norm

    from physreg.inference import widen_for_noise

    q = norm.ppf(0.975)
    lo, hi = widen_for_noise([-q * 0.3], [q * 0.3], [0.4])
    np.testing.assert_allclose([lo[0], hi[0]], [-q * 0.5, q * 0.5], rtol=1e-12)
    # no noise: unchanged; an asymmetric interval keeps its asymmetry (both ends move alike)
    np.testing.assert_allclose(widen_for_noise([1.0], [3.0], [0.0]), [[1.0], [3.0]])
    lo, hi = widen_for_noise(np.array([0.0, 0.0]), np.array([1.0, 4.0]), np.array([0.1, 0.1]),
                             level=0.9)
    h = np.array([0.5, 2.0])
    d = np.sqrt(h ** 2 + (norm.ppf(0.95) * 0.1) ** 2) - h
    np.testing.assert_allclose(lo, -d, rtol=1e-12)
    np.testing.assert_allclose(hi, [1.0, 4.0] + d, rtol=1e-12)
    assert d[0] > d[1] > 0          # the same noise widens a narrow interval more
    # an open end stays open; the closed one moves by q sd
    lo, hi = widen_for_noise([-np.inf], [1.0], [0.2])
    assert lo[0] == -np.inf and hi[0] == pytest.approx(1.0 + q * 0.2)
    with pytest.raises(ValueError, match="sd"):
        widen_for_noise([0.0], [1.0], [-0.1])
    with pytest.raises(ValueError, match="level"):
        widen_for_noise([0.0], [1.0], [0.1], level=1.5)


def test_optimisation_noise_refits_the_same_data_and_widens(fitted):
    est = fitted
    with pytest.raises(ValueError, match="optimisation_noise"):
        est.confidence_intervals(method="wald", opt_noise=True)
    with pytest.raises(ValueError, match="n_starts"):
        est.optimisation_noise(n_starts=0)
    est.optimisation_noise(n_starts=2, random_state=7)
    names = list(est.space_.free)
    fits = est.opt_noise_fits_
    assert fits.shape == (3, len(names)) and np.isfinite(fits.values).all()
    assert est.opt_noise_.attrs["dof"] == 2 and est.opt_noise_.attrs["n_starts"] == 2
    # start 0 is the fit; the cold starts are other fits of the same data, not copies
    np.testing.assert_allclose(fits.values[0], est.params_.sel(param=names).values, rtol=1e-10)
    assert not np.allclose(fits.values[1], fits.values[0])
    assert not np.allclose(fits.values[1], fits.values[2])
    # sd on the unconstrained scale: log for D, natural for r
    sd_D = np.std(np.log(fits.sel(param="D").values), ddof=1)
    assert float(est.opt_noise_.sel(param="D")) == pytest.approx(sd_D, rel=1e-10)
    sd_r = np.std(fits.sel(param="r").values, ddof=1)
    assert float(est.opt_noise_.sel(param="r")) == pytest.approx(sd_r, rel=1e-10)
    assert sd_D > 0 and sd_r > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ci = est.confidence_intervals(method="wald")
        cw = est.confidence_intervals(method="wald", opt_noise=True)
    assert cw.attrs["method"] == "wald+opt-noise"
    # the Wald interval is symmetric on the log scale: its half-width h becomes
    # sqrt(h^2 + (q sd)^2) around the same centre
    from scipy.stats import norm

    q = norm.ppf(0.975)
    lo, hi = np.log(ci.sel(param="D").values)
    lo2, hi2 = np.log(cw.sel(param="D").values)
    assert (lo2 + hi2) / 2 == pytest.approx((lo + hi) / 2, abs=1e-10)
    assert (hi2 - lo2) / 2 == pytest.approx(np.hypot((hi - lo) / 2, q * sd_D), rel=1e-10)
    # both: shifted by the bias, then widened (the bias test above has usually set bias_)
    if not hasattr(est, "bias_"):
        est.correct_bias(n_sim=2, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cb = est.confidence_intervals(method="wald", bias_corrected=True, opt_noise=True)
    assert cb.attrs["method"] == "wald+bias-corrected+opt-noise"
    b = float(est.bias_.sel(param="D"))
    np.testing.assert_allclose(np.log(cb.sel(param="D").values), [lo2 - b, hi2 - b],
                               rtol=1e-10)


def test_spread_check_warns_on_growth_in_place(fitted):
    """A fit that explains the data by a wide introduction growing in place (the collapse of
    seed 2012 in studies/pinn_replicates_2d.py) warns; the fixture's fit (D near the truth,
    diffusion length about 3x the width) does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted._spread_check()
    collapsed = copy.copy(fitted)
    collapsed.params_ = fitted.params_.copy()
    collapsed.params_.loc[{"param": "D"}] = 0.002      # sqrt(2 * 0.002 * 10) = 0.2
    collapsed.params_.loc[{"param": "ic_width"}] = 0.78
    with pytest.warns(UserWarning, match="growth in place"):
        collapsed._spread_check()
    assert float(fitted.params_.sel(param="D")) > 0.05    # the original is untouched
