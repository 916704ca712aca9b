"""Bayesian comparator: MCMC over the parameters with blackjax.

:class:`MCMCEstimator` samples p(theta | y) proportional to p(y | theta) p(theta), where the
likelihood goes through a forward model. ``forward="solver"`` (the finite-volume solver, the
reference posterior) is implemented; the metamodel forward models (``"hyperpinn"``, ``"lora"``,
``"pinn"`` and the delayed-acceptance pairs ``"hyperpinn+solver"``, ``"lora+solver"``) are named
in the API but not built yet and raise ``NotImplementedError`` saying so.

Priors live on the unconstrained scale z (log for positive parameters). The default for each
free parameter is a normal centred in its box with a standard deviation of a quarter of the
box's width, truncated to the box: weakly informative, and it respects the bounds. A user prior
``priors={"D": ("normal", mean, sd)}`` is a normal on z (so on log D for D).
"""

from __future__ import annotations

import time as _time

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .estimators import SolverEstimator
from .inference._diagnostics import check_convergence, summarize
from .inference._mcmc import run_mcmc

__all__ = ["MCMCEstimator"]

FORWARDS = ("solver", "hyperpinn", "lora", "pinn", "hyperpinn+solver", "lora+solver")
SAMPLERS = ("nuts", "rwmh", "smc")


class MCMCEstimator(SolverEstimator):
    """Posterior sampling of the reaction-diffusion parameters (blackjax).

    Parameters
    ----------
    forward : {"solver", "hyperpinn", "lora", "pinn", "hyperpinn+solver", "lora+solver"}
        Forward model of the likelihood. Only "solver" is implemented so far.
    sampler : {"nuts", "rwmh", "smc"}
        NUTS with window adaptation (default), adaptive random-walk Metropolis, or adaptive
        tempered SMC (which also estimates the log evidence, ``log_evidence_``).
    num_chains, num_warmup, num_samples : int
        Per chain (SMC: ``smc_particles`` particles in one chain).
    priors : dict name -> ("normal", mean, sd) on the unconstrained scale, optional.
    rhat_max, ess_min : float
        A ``UserWarning`` names the parameters whose split R-hat exceeds ``rhat_max`` or whose
        bulk/tail ESS is below ``ess_min``.
    Other parameters as :class:`~physreg.SolverEstimator` (model, observation model, grid).
    """

    def __init__(self, forward="solver", sampler="nuts", target="density",
                 likelihood="gaussian", diffusion_covariates=(), growth_covariates=(),
                 competition="gamma", boundary="neumann", boundary_value=0.0, initial="first",
                 n_introductions=1, t0=None, fit_t0=False, fixed=None, bounds=None,
                 initial_params=None, priors=None, domain=None, extras=None, grid=None,
                 max_step=None, num_chains=4, num_warmup=500, num_samples=1000,
                 smc_particles=1000, rhat_max=1.01, ess_min=400.0, random_state=0,
                 verbose=False):
        self.forward = forward
        self.sampler = sampler
        self.target = target
        self.likelihood = likelihood
        self.diffusion_covariates = diffusion_covariates
        self.growth_covariates = growth_covariates
        self.competition = competition
        self.boundary = boundary
        self.boundary_value = boundary_value
        self.initial = initial
        self.n_introductions = n_introductions
        self.t0 = t0
        self.fit_t0 = fit_t0
        self.fixed = fixed
        self.bounds = bounds
        self.initial_params = initial_params
        self.priors = priors
        self.domain = domain
        self.extras = extras
        self.grid = grid
        self.max_step = max_step
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.smc_particles = smc_particles
        self.rhat_max = rhat_max
        self.ess_min = ess_min
        self.random_state = random_state
        self.verbose = verbose

    # the MAP start reuses SolverEstimator's optimiser settings
    n_starts = 2
    max_iter = 500
    tol = 1e-8
    n_boot = 1

    # ---------------------------------------------------------------- prior -----------------
    def _prior_arrays(self):
        space = self.space_
        lo, hi = space.bounds_unconstrained()
        mean = 0.5 * (lo + hi)
        sd = 0.25 * (hi - lo)
        for name, spec in dict(self.priors or {}).items():
            if name not in space.free:
                raise ValueError(f"prior given for {name!r}, which is not a free parameter; "
                                 f"free parameters: {list(space.free)}.")
            if not (isinstance(spec, tuple | list) and len(spec) == 3 and spec[0] == "normal"):
                raise ValueError(f"prior for {name!r} must be ('normal', mean, sd) on the "
                                 f"unconstrained scale, got {spec!r}.")
            if not float(spec[2]) > 0:
                raise ValueError(f"prior sd for {name!r} must be positive, got {spec[2]}.")
            i = space.free.index(name)
            mean[i], sd[i] = float(spec[1]), float(spec[2])
        return (jnp.asarray(lo), jnp.asarray(hi), jnp.asarray(mean), jnp.asarray(sd))

    def _logprior(self, z):
        lo, hi, mean, sd = self._prior
        inside = jnp.all((z >= lo) & (z <= hi))
        lp = jnp.sum(jax.scipy.stats.norm.logpdf(z, mean, sd))
        return jnp.where(inside, lp, -jnp.inf)

    def _prior_sample(self, key, n):
        lo, hi, mean, sd = self._prior
        u = jax.random.truncated_normal(key, (lo - mean) / sd, (hi - mean) / sd,
                                        (n, mean.shape[0]))
        return mean + sd * u

    # ---------------------------------------------------------------- fit -------------------
    def fit(self, obs, covariates=None):
        """Sample the posterior. Returns self."""
        if self.forward not in FORWARDS:
            raise ValueError(f"forward must be one of {FORWARDS}, got {self.forward!r}.")
        if self.forward != "solver":
            raise NotImplementedError(
                f"forward={self.forward!r} is not implemented yet: the HyperPINN, low-rank and "
                "warm-started PINN forward models (and their delayed-acceptance pairs) are "
                "open work; use forward='solver'.")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}.")
        for name in ("num_chains", "num_warmup", "num_samples", "smc_particles"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < (0 if name == "num_warmup" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        t_start = _time.perf_counter()
        # the maximum-likelihood fit gives the chains a good start
        super().fit(obs, covariates)
        self._prior = self._prior_arrays()
        prob = self.problem_
        z_map = jnp.asarray(self.z_)

        def loglik(z):
            return jnp.sum(prob.loglik_terms(z))

        def logpost(z):
            lp = self._logprior(z)
            return jnp.where(jnp.isfinite(lp), lp + loglik(z), -jnp.inf)

        key = jax.random.PRNGKey(int(np.random.default_rng(self.random_state).integers(2**31)))
        k_init, k_run = jax.random.split(key)
        # dispersed starts around the MAP (R-hat can only see what dispersed chains show)
        lo, hi = self.space_.bounds_unconstrained()
        jitter = 0.05 * jax.random.normal(k_init, (int(self.num_chains), z_map.shape[0]))
        z_init = jnp.clip(z_map + jitter, lo, hi)
        res = run_mcmc(logpost, z_init, sampler=self.sampler, num_chains=int(self.num_chains),
                       num_warmup=int(self.num_warmup), num_samples=int(self.num_samples),
                       key=k_run, logprior=self._logprior, loglik=loglik,
                       prior_sample=self._prior_sample, smc_particles=int(self.smc_particles),
                       progress=bool(self.verbose))
        self.result_ = res
        names = list(self.space_.free)
        space = self.space_

        def to_user(z):
            v = np.asarray(space.to_user(jnp.asarray(z)))
            return {n: v[..., i] for i, n in enumerate(names)}

        self.posterior_ = res.to_datatree(names, transforms=to_user,
                                          attrs={"forward": self.forward})
        self.log_evidence_ = res.log_evidence
        draws = np.asarray(space.to_user(jnp.asarray(res.samples)))  # (chain, draw, p)
        self.summary_ = summarize(res.samples, names)
        if self.sampler != "smc":
            self.convergence_problems_ = check_convergence(
                res.samples, names, rhat_threshold=self.rhat_max, ess_threshold=self.ess_min,
                summary=self.summary_)
        mean_user = draws.reshape(-1, draws.shape[-1]).mean(0)
        self.map_ = self.params_
        self._set_params(space.to_unconstrained(jnp.asarray(mean_user)))
        self.params_.attrs["method"] = f"MCMCEstimator posterior mean ({self.sampler})"
        self.fit_time_ = _time.perf_counter() - t_start
        self.sampling_time_ = float(sum(res.timing.values()))
        return self

    # ---------------------------------------------------------------- results ---------------
    def _flat_draws(self):
        s = self.result_.samples
        return s.reshape(-1, s.shape[-1])

    def _ci_quantile(self, level):
        a = (1.0 - level) / 2.0
        z = self._flat_draws()
        lo, hi = np.quantile(z, [a, 1.0 - a], axis=0)  # monotone transforms commute
        return self._interval_array(lo, hi, level, "credible-equal-tailed")

    def confidence_intervals(self, level: float = 0.95, method: str = "quantile", **kwargs):
        """Equal-tailed credible intervals (``method="quantile"``), dims ("param", "bound")."""
        if method in ("quantile", "credible"):
            if not 0.0 < float(level) < 1.0:
                raise ValueError(f"level must be in (0, 1), got {level}.")
            return self._ci_quantile(float(level))
        raise ValueError(f"MCMCEstimator gives credible intervals: method='quantile', got "
                         f"{method!r}.")

    def predict(self, X, quantiles=None, n_draws: int = 100):
        """Posterior mean of u at the coordinates of ``X`` (and quantiles on request).

        Averages the forward model over ``n_draws`` posterior draws (evenly thinned).
        ``quantiles=(0.05, 0.95)`` adds a ``quantile`` dim.
        """
        t, x, y, shape, dims, coords = self._points_of(X)
        z = self._flat_draws()
        idx = np.linspace(0, len(z) - 1, min(n_draws, len(z))).round().astype(int)
        us = []
        z_saved = self.z_
        try:
            for i in idx:
                self.z_ = z[i]
                us.append(np.asarray(self._predict_points(t, x, y)))
        finally:
            self.z_ = z_saved
        us = np.stack(us)
        mean = xr.DataArray(us.mean(0).reshape(shape), dims=dims, coords=coords, name="u")
        if quantiles is None:
            return mean
        q = np.quantile(us, quantiles, axis=0).reshape((len(quantiles),) + shape)
        qa = xr.DataArray(q, dims=("quantile",) + tuple(dims),
                          coords={"quantile": list(quantiles), **coords}, name="u_quantiles")
        return xr.merge([mean, qa])
