"""MCMCEstimator with the solver forward model: posterior vs the MLE, DataTree, intervals."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import physreg
from physreg.mcmc import MCMCEstimator

from .test_solver_estimator import TRUTH, make_data

FIXED = {k: TRUTH[k] for k in ("gamma", "ic_x", "ic_width", "ic_mass")}


@pytest.fixture(scope="module")
def data():
    return make_data(seed=3, n_times=6, n_sites=15)


@pytest.fixture(scope="module")
def posterior(data):
    # 64 cells: at 32 the discretisation error moves the estimate of D by 3% (half a standard
    # error), enough to push the truth out of the 95% interval on this dataset
    est = MCMCEstimator(initial="gaussian", t0=0.0, grid=64, fixed=FIXED, num_chains=2,
                        num_warmup=150, num_samples=150, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 300 draws: ESS < 400 is expected here
        return est.fit(data)


def test_posterior_agrees_with_mle(posterior, data):
    mle = physreg.SolverEstimator(initial="gaussian", t0=0.0, grid=64, fixed=FIXED,
                                  n_starts=1).fit(data)
    post = posterior.posterior_["posterior"]
    for name in ("D", "r"):
        draws = post[name].values.ravel()
        # flat-ish prior, 90 observations: posterior mean within 0.5 posterior sd of the MLE
        assert abs(draws.mean() - float(mle.params_.sel(param=name))) < 0.5 * draws.std()
        ci = posterior.confidence_intervals(level=0.95)
        lo, hi = ci.sel(param=name).values
        assert lo < TRUTH[name] < hi


def test_datatree_and_diagnostics(posterior):
    dt = posterior.posterior_
    assert set(dt.children) >= {"posterior", "sample_stats"}
    assert dt["posterior"]["D"].dims == ("chain", "draw")
    assert dt["posterior"]["D"].shape == (2, 150)
    assert "diverging" in dt["sample_stats"]
    s = posterior.summary_
    assert s["D"]["r_hat"] < 1.1
    assert posterior.params_.dims == ("param",)
    # run time and compile time are apart (ESS/s must not pay for compilation)
    t = posterior.result_.timing
    assert posterior.sampling_time_ == pytest.approx(t["warmup_s"] + t["sampling_s"])
    assert posterior.compile_time_ == pytest.approx(t["compile_s"]) and t["compile_s"] > 0
    assert posterior.fit_time_ > posterior.sampling_time_ + posterior.compile_time_


def test_bad_forward_sampler_and_options(data):
    with pytest.raises(ValueError, match="bogus"):
        MCMCEstimator(forward="pinn", pinn_options={"bogus": 1}).fit(data)
    with pytest.raises(ValueError, match="retrain_steps"):
        MCMCEstimator(forward="pinn", pinn_options={"retrain_steps": 0}).fit(data)
    with pytest.raises(ValueError, match="forward"):
        MCMCEstimator(forward="magic").fit(data)
    with pytest.raises(ValueError, match="sampler"):
        MCMCEstimator(sampler="gibbs").fit(data)
    with pytest.raises(ValueError, match="smc_start"):
        MCMCEstimator(sampler="smc", smc_start="posterior").fit(data)
    with pytest.raises(ValueError, match="full PINN training"):
        MCMCEstimator(forward="pinn", sampler="smc", smc_start="prior").fit(data)
    with pytest.raises(ValueError, match="smc_mcmc_steps"):
        MCMCEstimator(sampler="smc", smc_mcmc_steps=0).fit(data)


def test_smc_from_the_laplace_start(posterior, data):
    # Tempered SMC from the widened Laplace approximation: the posterior of NUTS, and the
    # log evidence of an independent importance-sampling estimate (4000 draws).
    est = MCMCEstimator(sampler="smc", smc_start="laplace", smc_particles=400,
                        smc_mcmc_steps=5, initial="gaussian", t0=0.0, grid=64, fixed=FIXED,
                        random_state=1, compiler_options={"xla_backend_optimization_level": 0})
    est.fit(data)
    info = est.result_.info
    assert info["n_tempering_steps"] <= 4 and info["reference_log_mass"] == 0.0
    post, ref = est.posterior_["posterior"], posterior.posterior_["posterior"]
    for name in ("D", "r", "sigma"):
        sd = float(ref[name].std())
        assert abs(float(post[name].mean()) - float(ref[name].mean())) < 0.3 * sd, name
        assert abs(float(post[name].std()) / sd - 1) < 0.3, name
    mean, cov = info["reference_mean"], info["reference_cov"]
    z = stats.multivariate_normal(mean, cov).rvs(4000, random_state=2)
    f = jax.jit(jax.vmap(lambda z: est._logprior(z) + jnp.sum(est.problem_.loglik_terms(z))))
    lw = np.asarray(f(jnp.asarray(z))) - stats.multivariate_normal(mean, cov).logpdf(z)
    log_z_is = float(np.log(np.mean(np.exp(lw - lw.max()))) + lw.max())
    assert abs(est.log_evidence_ - log_z_is) < 0.15, (est.log_evidence_, log_z_is)
