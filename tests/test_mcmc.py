"""Tests of the generic sampling layer (physreg.inference._mcmc) and the diagnostics
(physreg.inference._diagnostics).

Targets with known answers: a 2-D correlated Gaussian (mean, covariance), a conjugate
Gaussian model (log evidence in closed form), iid and AR(1) chains (ESS in closed form).
Fixed seeds throughout. Every sampler run is compiled once per module (fixtures).
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import io_callback
from scipy import signal, stats

import physreg  # noqa: F401  (float64 policy)
from physreg.inference import _diagnostics as diag
from physreg.inference._mcmc import MCMCResult, run_delayed_acceptance, run_mcmc

MU = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.8], [0.8, 2.0]])
PREC = np.linalg.inv(COV)
NAMES = ["a", "b"]
# Tiny problems: unoptimised XLA code compiles 5-10x faster on CPU and runs fast enough.
FAST = {"xla_backend_optimization_level": 0}


def gaussian_logdensity(z):
    d = z - MU
    return -0.5 * d @ PREC @ d


def dispersed_starts(n, seed=0):
    return MU + 2.0 * np.random.default_rng(seed).standard_normal((n, 2))


def assert_recovers_gaussian(samples, what):
    """Mean within 4 MCSE, variances within 15% and the correlation within 0.05."""
    flat = samples.reshape(-1, 2)
    mean = flat.mean(axis=0)
    mcse = diag.mcse_mean(samples)
    assert np.all(np.abs(mean - MU) < 4 * mcse), (what, mean, MU, mcse)
    var = flat.var(axis=0, ddof=1)
    assert np.all(np.abs(var / np.diag(COV) - 1) < 0.15), (what, var)
    corr = np.corrcoef(flat.T)[0, 1]
    assert abs(corr - 0.8 / np.sqrt(2.0)) < 0.05, (what, corr)


# --------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nuts_result():
    return run_mcmc(
        gaussian_logdensity,
        dispersed_starts(4),
        sampler="nuts",
        num_chains=4,
        num_warmup=300,
        num_samples=500,
        key=jax.random.key(1),
        # lax.map over chains: about half the compile time of vmap on CPU. The vmapped
        # default is exercised by the RWMH test and, for NUTS, by a slow test.
        chain_method="sequential",
        compiler_options=FAST,
    )


@pytest.fixture(scope="module")
def rwmh_result():
    return run_mcmc(
        gaussian_logdensity,
        dispersed_starts(4, seed=1),
        sampler="rwmh",
        num_chains=4,
        num_warmup=1000,
        num_samples=2500,
        key=jax.random.key(2),
        compiler_options=FAST,
    )


def test_nuts_recovers_gaussian_moments(nuts_result):
    r = nuts_result
    assert isinstance(r, MCMCResult) and r.sampler == "nuts"
    assert r.samples.shape == (4, 500, 2)
    assert_recovers_gaussian(r.samples, "nuts")
    for k in ("lp", "acceptance_rate", "diverging", "tree_depth", "n_steps", "energy"):
        assert r.sample_stats[k].shape == (4, 500), k
    assert not r.sample_stats["diverging"].any()
    assert 0.6 < r.sample_stats["acceptance_rate"].mean() < 0.99
    # lp is the log-density at the draw.
    lp = np.array([gaussian_logdensity(z) for z in r.samples[0, :5]])
    np.testing.assert_allclose(r.sample_stats["lp"][0, :5], lp, rtol=1e-12)
    # Gradient evaluations: at least one leapfrog step per draw, counted from the info.
    assert np.all(r.n_evals["gradient"] >= 800)
    assert r.n_evals["gradient"][0] > r.sample_stats["n_steps"][0].sum()
    assert r.tuning["step_size"].shape == (4,)
    assert set(r.timing) == {"compile_s", "warmup_s", "sampling_s", "warmup_cpu_s",
                             "sampling_cpu_s"}
    assert r.timing["sampling_cpu_s"] > 0
    assert np.all(diag.rhat(r.samples) < 1.01)


@pytest.mark.slow
def test_nuts_vectorized_chains(nuts_result):
    """Chains by vmap (the default) recover the moments too. (Its draws equal the
    sequential ones only up to rounding, which NUTS amplifies: 1e-15 after 5 warm-up
    steps, 1e-11 after 60, visibly different after 300.)"""
    vec = run_mcmc(
        gaussian_logdensity,
        dispersed_starts(4),
        sampler="nuts",
        num_chains=4,
        num_warmup=300,
        num_samples=500,
        key=jax.random.key(1),
        compiler_options=FAST,
    )
    assert vec.info["chain_method"] == "vectorized"
    assert_recovers_gaussian(vec.samples, "nuts vectorized")
    assert not vec.sample_stats["diverging"].any()


def test_rwmh_recovers_gaussian_moments(rwmh_result):
    r = rwmh_result
    assert r.samples.shape == (4, 2500, 2)
    assert_recovers_gaussian(r.samples, "rwmh")
    # The adapted proposal covariance is proportional to the target's (correlation
    # learned from warm-up draws), and the acceptance lands near the 0.234 target.
    cov = r.tuning["proposal_cov"].mean(axis=0)
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert abs(corr - 0.8 / np.sqrt(2.0)) < 0.15, cov
    assert 0.15 < r.sample_stats["acceptance_rate"].mean() < 0.35
    np.testing.assert_array_equal(r.n_evals["logdensity"], 1 + 1000 + 2500)
    assert np.all(diag.rhat(r.samples) < 1.01)


def _conjugate_model():
    """z ~ N(0, s0^2 I_2); y_i | z ~ N(z, s^2 I_2), i = 1..n. Exact log p(y)."""
    s0, s, n = 2.0, 0.5, 8
    rng = np.random.default_rng(3)
    z_true = np.array([0.7, -1.2])
    y = z_true + s * rng.standard_normal((n, 2))

    def logprior(z):
        return jnp.sum(jax.scipy.stats.norm.logpdf(z, 0.0, s0))

    def loglik(z):
        return jnp.sum(jax.scipy.stats.norm.logpdf(y, z, s))

    def prior_sample(key, m):
        return s0 * jax.random.normal(key, (m, 2))

    # Each coordinate independently: y[:, j] ~ N(0, s0^2 11' + s^2 I).
    marg = stats.multivariate_normal(np.zeros(n), s0**2 * np.ones((n, n)) + s**2 * np.eye(n))
    log_evidence = sum(marg.logpdf(y[:, j]) for j in range(2))
    post_var = 1.0 / (1.0 / s0**2 + n / s**2)
    post_mean = post_var * y.sum(axis=0) / s**2
    return logprior, loglik, prior_sample, log_evidence, post_mean, post_var


def test_smc_log_evidence_conjugate_gaussian():
    logprior, loglik, prior_sample, log_z, post_mean, post_var = _conjugate_model()
    r = run_mcmc(
        None,
        np.zeros(2),
        sampler="smc",
        key=jax.random.key(4),
        logprior=logprior,
        loglik=loglik,
        prior_sample=prior_sample,
        smc_particles=1000,
        compiler_options=FAST,
    )
    assert r.sampler == "smc" and r.samples.shape == (1, 1000, 2)
    assert abs(r.log_evidence - log_z) < 0.2, (r.log_evidence, log_z)
    # The log evidence is the sum of blackjax's per-step increments.
    np.testing.assert_allclose(r.log_evidence, r.info["log_evidence_increments"].sum())
    sched = r.info["tempering_schedule"]
    assert sched[-1] == 1.0 and np.all(np.diff(sched) > 0) and len(sched) >= 2
    x = r.samples[0]
    assert np.all(np.abs(x.mean(axis=0) - post_mean) < 4 * np.sqrt(post_var / 1000 * 3))
    assert np.all(np.abs(x.var(axis=0) / post_var - 1) < 0.2)


def test_smc_from_a_reference_gives_the_same_evidence_and_posterior():
    # Tempering from a widened Gaussian near the posterior instead of the prior: same
    # target, same log p(y) (the sum of increments estimates integral prior * lik).
    logprior, loglik, _, log_z, post_mean, post_var = _conjugate_model()
    ref = (post_mean + 0.1, 4.0 * post_var * np.eye(2))
    r = run_mcmc(None, np.zeros(2), sampler="smc", key=jax.random.key(5), logprior=logprior,
                 loglik=loglik, smc_particles=1000, smc_reference=ref, compiler_options=FAST)
    assert abs(r.log_evidence - log_z) < 0.1, (r.log_evidence, log_z)
    # starting near the posterior takes fewer temperatures than from the prior
    assert 1 <= r.info["n_tempering_steps"] <= 3
    assert r.info["reference_log_mass"] == 0.0  # an unbounded prior keeps every draw
    x = r.samples[0]
    assert np.all(np.abs(x.mean(axis=0) - post_mean) < 4 * np.sqrt(post_var / 1000 * 3))
    assert np.all(np.abs(x.var(axis=0) / post_var - 1) < 0.2)


def test_smc_reference_truncated_to_the_prior_support():
    # Prior uniform on [0, 1]^2 (normalised), flat likelihood: log p(y) = 0 exactly. A
    # reference centred on a corner puts 3/4 of its draws outside; they are redrawn and the
    # truncated reference's mass enters the log evidence.
    def logprior(z):
        return jnp.where(jnp.all((z >= 0) & (z <= 1)), 0.0, -jnp.inf)

    def loglik(z):
        return -0.5 * jnp.sum(((z - 0.5) / 10.0) ** 2)  # nearly flat

    r = run_mcmc(None, np.zeros(2), sampler="smc", key=jax.random.key(6), logprior=logprior,
                 loglik=loglik, smc_particles=2000, smc_reference=(np.zeros(2), 0.25 * np.eye(2)),
                 compiler_options=FAST)
    # P(0 < N(0, 0.5^2) < 1) = Phi(2) - 1/2 per coordinate
    assert abs(r.info["reference_log_mass"] - 2 * np.log(stats.norm.cdf(2) - 0.5)) < 0.05
    exact = np.log(np.mean(np.exp(-0.5 * ((np.random.default_rng(0).random((200000, 2)) - 0.5)
                                           / 10.0) ** 2).prod(1)))
    assert abs(r.log_evidence - exact) < 0.05, (r.log_evidence, exact)
    x = r.samples[0]
    assert np.all((x >= 0) & (x <= 1))
    assert np.all(np.abs(x.mean(0) - 0.5) < 0.05)  # uniform on the square, not the corner


def test_smc_particles_carry_a_warm_started_forward_state():
    # The conjugate model with its mean computed iteratively: each particle carries the
    # root m of m^3 + m = z, refined by a few Newton steps from the state of the particle it
    # moves (the warm start of a PINN, in miniature); the likelihood reads z back as
    # m^3 + m. When that solve converges the warm-state SMC must give the exact posterior
    # and evidence, and each particle's state must stay its own through resampling.
    logprior, loglik_exact, _, log_z, post_mean, post_var = _conjugate_model()

    def newton(z, m, n):
        def body(m, _):
            return m - (m**3 + m - z) / (3 * m**2 + 1), None
        return jax.lax.scan(body, m, None, length=n)[0]

    def loglik(z, m):
        return loglik_exact(m**3 + m)

    ref = (post_mean, 4.0 * post_var * np.eye(2))

    def run(init, solve):
        return run_mcmc(None, post_mean, sampler="smc", key=jax.random.key(7),
                        logprior=logprior, loglik=loglik, smc_particles=1000,
                        smc_max_steps=50, smc_reference=ref, smc_forward_state=(init, solve),
                        compiler_options=FAST)

    r = run(lambda z: newton(z, jnp.zeros_like(z), 30), lambda z, m: newton(z, m, 6))
    x, m = r.samples[0], r.info["forward_state"]
    assert m.shape == (1000, 2)
    np.testing.assert_allclose(m**3 + m, x, rtol=1e-10, atol=1e-12)
    assert abs(r.log_evidence - log_z) < 0.1, (r.log_evidence, log_z)
    assert np.all(np.abs(x.mean(axis=0) - post_mean) < 4 * np.sqrt(post_var / 1000 * 3))
    assert np.all(np.abs(x.var(axis=0) / post_var - 1) < 0.2)
    # a forward that is never re-solved (the state stays the starting one) is not the model:
    # the likelihood no longer moves with z and the particles spread out
    r0 = run(lambda z: newton(z, jnp.zeros_like(z), 30), lambda z, m: m)
    assert np.all(r0.samples[0].var(axis=0) > 1.5 * post_var)


def test_smc_reference_must_cover_the_support():
    def logprior(z):
        return jnp.where(jnp.all((z >= 0) & (z <= 1)), 0.0, -jnp.inf)

    with pytest.raises(ValueError, match="inside the prior's support"):
        run_mcmc(None, np.zeros(2), sampler="smc", key=0, logprior=logprior,
                 loglik=lambda z: 0.0 * z[0], smc_particles=10,
                 smc_reference=(np.full(2, 50.0), np.eye(2)))


def test_smc_needs_prior_and_likelihood():
    with pytest.raises(ValueError, match="logprior=.*loglik=.*prior_sample="):
        run_mcmc(gaussian_logdensity, np.zeros(2), sampler="smc", key=0)


# --------------------------------------------------------------------------------------
# Delayed acceptance
# --------------------------------------------------------------------------------------

# Cheap density: deliberately wrong, shifted by 0.3 sd and 1.3 times too wide.
CHEAP_SHIFT = np.array([0.3, -0.4])
CHEAP_PREC = PREC / 1.3**2


def cheap_logdensity(z):
    d = z - MU - CHEAP_SHIFT
    return -0.5 * d @ CHEAP_PREC @ d


@pytest.fixture(scope="module")
def da_run():
    """Sequential delayed acceptance; the exact density counts its real executions."""
    calls = {"n": 0}

    def count(x):
        calls["n"] += 1
        return np.zeros((), np.float64)

    def exact_logdensity(z):
        token = io_callback(count, jax.ShapeDtypeStruct((), jnp.float64), z)
        return gaussian_logdensity(z) + 0.0 * token

    r = run_delayed_acceptance(
        cheap_logdensity,
        exact_logdensity,
        dispersed_starts(4, seed=2),
        num_chains=4,
        num_warmup=800,
        num_samples=2500,
        key=jax.random.key(5),
        compiler_options=FAST,
    )
    return r, calls["n"]


def test_delayed_acceptance_recovers_exact_target(da_run):
    r, _ = da_run
    assert r.sampler == "delayed_acceptance"
    assert_recovers_gaussian(r.samples, "delayed acceptance")
    # ...whereas the cheap density alone is visibly wrong.
    mean = r.samples.reshape(-1, 2).mean(axis=0)
    assert np.all(np.abs(mean - (MU + CHEAP_SHIFT)) > 8 * diag.mcse_mean(r.samples))
    assert np.all(diag.rhat(r.samples) < 1.02)  # bulk ESS ~750-1000 here


def test_delayed_acceptance_saves_exact_evaluations(da_run):
    r, n_real_calls = da_run
    info = r.info
    assert info["fraction_exact_saved"] > 0.3, info
    # Bookkeeping is consistent: survivors of stage 1 are exactly the exact evaluations.
    s1 = r.sample_stats["stage1_accepted"]
    np.testing.assert_array_equal(info["exact_evals_sampling"], s1.sum(axis=1))
    np.testing.assert_allclose(info["fraction_exact_saved"], 1 - s1.mean())
    np.testing.assert_allclose(info["stage1_acceptance"], s1.mean())
    acc = r.sample_stats["accepted"]
    assert not np.any(acc & ~s1)  # nothing is accepted without the exact check
    np.testing.assert_allclose(info["stage2_acceptance"], acc.sum() / s1.sum())
    assert 0 < info["stage2_acceptance"] < 1
    # The savings are real: the exact density ran only for survivors (plus the one
    # evaluation per chain at the start, and the start-point check in the driver).
    assert n_real_calls == r.n_evals["logdensity_exact"].sum() + r.num_chains
    assert n_real_calls == info["exact_evals_computed"] + r.num_chains
    assert n_real_calls < 0.75 * r.num_chains * (800 + 2500)


@pytest.mark.slow
def test_delayed_acceptance_vectorized_same_draws(da_run):
    r, _ = da_run
    v = run_delayed_acceptance(
        cheap_logdensity,
        gaussian_logdensity,
        dispersed_starts(4, seed=2),
        num_chains=4,
        num_warmup=800,
        num_samples=2500,
        key=jax.random.key(5),
        chain_method="vectorized",
        compiler_options=FAST,
    )
    np.testing.assert_allclose(v.samples, r.samples, atol=1e-8)
    assert v.info["exact_evals_computed"] == 4 * (800 + 2500 + 1)


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="'sampler'.*'hmc'"):
        run_mcmc(gaussian_logdensity, np.zeros(2), sampler="hmc", key=0)
    with pytest.raises(ValueError, match=r"z_init.*\(3, p\).*\(2, 2\)"):
        run_mcmc(gaussian_logdensity, np.zeros((2, 2)), num_chains=3, key=0)
    with pytest.raises(ValueError, match=r"not finite for chain\(s\) \[1\]"):
        run_mcmc(
            lambda z: jnp.where(z[0] > 0, -jnp.inf, 0.0),
            np.array([[0.0], [1.0]]),
            num_chains=2,
            key=0,
        )
    with pytest.raises(ValueError, match="num_samples"):
        run_mcmc(gaussian_logdensity, np.zeros(2), num_samples=0, key=0)
    with pytest.raises(TypeError, match="key"):
        run_mcmc(gaussian_logdensity, np.zeros(2), key=None)
    with pytest.raises(ValueError, match="step_size"):
        run_mcmc(gaussian_logdensity, np.zeros(2), num_warmup=0, key=0)
    with pytest.raises(ValueError, match="chain_method"):
        run_delayed_acceptance(
            cheap_logdensity, gaussian_logdensity, np.zeros(2), key=0, chain_method="parallel"
        )
    with pytest.raises(ValueError, match="positive-definite"):
        run_delayed_acceptance(
            cheap_logdensity, gaussian_logdensity, np.zeros(2), key=0, proposal_cov=-np.eye(2)
        )


# --------------------------------------------------------------------------------------
# Diagnostics against closed forms
# --------------------------------------------------------------------------------------


def ar1(rho, n_chains, n, seed):
    """Stationary AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) eps_t, unit variance."""
    rng = np.random.default_rng(seed)
    eps = np.sqrt(1 - rho**2) * rng.standard_normal((n_chains, n))
    eps[:, 0] = rng.standard_normal(n_chains)  # x_0 from the stationary law
    return signal.lfilter([1.0], [1.0, -rho], eps, axis=1)


def test_ess_iid_is_n():
    x = np.random.default_rng(10).standard_normal((4, 2000))
    n = x.size
    for f in (diag.ess, diag.ess_bulk, diag.ess_tail):
        assert abs(f(x) / n - 1) < 0.15, (f.__name__, f(x))
    assert abs(diag.ess(x, split=False) / n - 1) < 0.15


def test_ess_ar1_matches_closed_form():
    rho = 0.9
    x = ar1(rho, 8, 10000, seed=11)
    expected = x.size * (1 - rho) / (1 + rho)
    for f in (diag.ess, diag.ess_bulk):
        assert abs(f(x) / expected - 1) < 0.15, (f.__name__, f(x), expected)
    # blackjax's autocorrelation ESS (unsplit chains) agrees with ours.
    from blackjax.diagnostics import effective_sample_size

    ours = diag.ess(x, split=False)
    theirs = jax.jit(effective_sample_size).lower(x).compile(compiler_options=FAST)(x)
    assert abs(float(theirs) / ours - 1) < 1e-6
    assert abs(ours / expected - 1) < 0.15
    # MCSE of the mean is sd / sqrt(ESS): about sqrt((1 + rho) / (1 - rho) / N).
    assert abs(diag.mcse_mean(x) / np.sqrt(1 / expected) - 1) < 0.1


def test_rhat_well_mixed_and_separated():
    x = np.random.default_rng(12).standard_normal((4, 1000))
    assert abs(diag.rhat(x) - 1) < 0.01
    shifted = x + np.array([0.0, 0.0, 1.0, 1.0])[:, None]  # means 1 sd apart
    assert diag.rhat(shifted) > 1.1
    # The folded part catches chains with equal means but different scales.
    scaled = x * np.array([1.0, 1.0, 1.0, 3.0])[:, None]
    assert diag.rhat(scaled) > 1.1
    # Per parameter on (chain, draw, p).
    both = np.stack([x, shifted], axis=-1)
    r = diag.rhat(both)
    assert r.shape == (2,) and r[0] < 1.01 < 1.1 < r[1]
    # Split R-hat also sees a trend inside single chains.
    trend = x + np.linspace(0, 2, 1000)
    assert diag.rhat(trend) > 1.1


def test_summarize_and_check_convergence_warns_by_name():
    rng = np.random.default_rng(13)
    good = rng.standard_normal((4, 1000))
    stuck = good + np.array([0.0, 0.0, 0.0, 2.0])[:, None]
    samples = np.stack([good, stuck], axis=-1)
    table = diag.summarize(samples, ["D", "r"])
    assert set(table) == {"D", "r"}
    assert set(table["D"]) == set(diag.SUMMARY_COLUMNS)
    assert abs(table["D"]["mean"]) < 0.1 and table["D"]["r_hat"] < 1.01
    assert "ess_bulk" in diag.format_summary(table)
    with pytest.warns(UserWarning, match="'r'.*R-hat") as rec:
        problems = diag.check_convergence(samples, ["D", "r"])
    assert list(problems) == ["r"]
    assert not any("'D'" in str(w.message) for w in rec)
    with pytest.warns(UserWarning, match="'D'.*ess bulk"):
        diag.check_convergence(samples[:, :50, :1], ["D"], rhat_threshold=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert diag.check_convergence(samples[..., :1], ["D"]) == {}
    with pytest.raises(ValueError, match="names.*1 entries.*p = 2"):
        diag.summarize(samples, ["D"])


def test_diagnostics_match_arviz_if_installed():
    az = pytest.importorskip("arviz")
    x = ar1(0.7, 4, 800, seed=14)
    x[3] += 0.3
    np.testing.assert_allclose(diag.rhat(x), float(az.rhat(x)), rtol=1e-8)
    np.testing.assert_allclose(diag.ess_bulk(x), float(az.ess(x, method="bulk")), rtol=1e-8)
    np.testing.assert_allclose(diag.ess_tail(x), float(az.ess(x, method="tail")), rtol=1e-8)
    np.testing.assert_allclose(diag.ess(x), float(az.ess(x, method="mean")), rtol=1e-8)


# --------------------------------------------------------------------------------------
# DataTree
# --------------------------------------------------------------------------------------


def user_units(z):
    return {"D": jnp.exp(z[0]), "r": z[1], "both": jnp.stack([z[0], 2 * z[1]])}


def test_datatree_layout(nuts_result, tmp_path):
    r = nuts_result
    dt = r.to_datatree(NAMES, transforms=user_units, attrs={"seed": 1, "note": None})
    assert {"posterior", "unconstrained_posterior", "sample_stats"} <= set(dt.children)
    post = dt["posterior"].to_dataset()
    assert set(post.data_vars) == {"D", "r", "both"}
    assert post["D"].dims == ("chain", "draw") and post["D"].shape == (4, 500)
    assert post["both"].dims == ("chain", "draw", "both_dim_0")
    np.testing.assert_allclose(post["D"].values, np.exp(r.samples[..., 0]))
    np.testing.assert_allclose(dt["unconstrained_posterior"]["b"].values, r.samples[..., 1])
    ss = dt["sample_stats"].to_dataset()
    assert {"lp", "acceptance_rate", "diverging", "tree_depth", "n_steps"} <= set(ss.data_vars)
    assert ss["diverging"].dims == ("chain", "draw")
    assert dt.attrs["sampler"] == "nuts" and dt.attrs["seed"] == 1 and "note" not in dt.attrs
    assert dt.attrs["sampling_s"] >= 0 and dt["posterior"].attrs["sampler"] == "nuts"
    # It round-trips through netCDF (attrs sanitised: None dropped).
    xr = pytest.importorskip("xarray")
    dt.to_netcdf(tmp_path / "post.nc", engine="h5netcdf")
    back = xr.open_datatree(tmp_path / "post.nc", engine="h5netcdf")
    np.testing.assert_allclose(back["posterior"]["D"].values, post["D"].values)
    assert back.attrs["sampler"] == "nuts"
    # Without transforms the posterior holds z under the given names.
    plain = diag.to_datatree(r.samples, NAMES, r.sample_stats)
    assert set(plain["posterior"].data_vars) == set(NAMES)
    assert "unconstrained_posterior" not in plain.children
    with pytest.raises(ValueError, match=r"sample_stats\['lp'\].*\(4, 500\)"):
        diag.to_datatree(r.samples, NAMES, {"lp": r.sample_stats["lp"][:, :10]})
    # A NumPy (non-traceable) transform that broadcasts over leading dims also works.
    np_dt = diag.to_datatree(
        r.samples, NAMES, transforms=lambda z: {"D": np.exp(np.asarray(z)[..., 0])}
    )
    np.testing.assert_allclose(np_dt["posterior"]["D"].values, np.exp(r.samples[..., 0]))
    with pytest.raises(TypeError, match="dict of user-unit arrays"):
        diag.to_datatree(r.samples, NAMES, transforms=lambda z: z)


def test_smc_datatree_has_log_evidence():
    res = MCMCResult(
        samples=np.zeros((1, 10, 2)),
        sample_stats={"lp": np.zeros((1, 10))},
        sampler="smc",
        log_evidence=-12.5,
    )
    dt = res.to_datatree(NAMES)
    assert dt.attrs["log_evidence"] == -12.5 and dt["posterior"]["a"].dims == ("chain", "draw")


def test_arviz_reads_datatree(nuts_result):
    az = pytest.importorskip("arviz")
    dt = nuts_result.to_datatree(NAMES, transforms=user_units)
    idata = az.InferenceData.from_datatree(dt) if hasattr(az, "InferenceData") else dt
    summary = az.summary(idata, var_names=["D", "r"])
    assert len(summary) == 2
    np.testing.assert_allclose(
        float(az.ess(idata, var_names=["r"])["r"]),
        diag.ess_bulk(nuts_result.samples[..., 1]),
        rtol=1e-6,
    )
