"""PINNEstimator.correct_bias: cold refits on data simulated by the finite-volume solver at
the fitted parameters (the bias and the coverage it buys are measured by
``studies/pinn_bias_correction.py``; here the mechanics, on a small seed-fixed fit)."""

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
