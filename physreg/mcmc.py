"""Bayesian comparator: MCMC over the parameters with blackjax.

:class:`MCMCEstimator` samples p(theta | y) proportional to p(y | theta) p(theta), where the
likelihood goes through a forward model. ``forward="solver"`` (the finite-volume solver, the
reference posterior), ``"hyperpinn"`` and ``"lora"`` (a hypernetwork metamodel of
:mod:`physreg.metamodels`, full or low-rank: one network evaluation per log-density) and the
delayed-acceptance pairs ``"hyperpinn+solver"``, ``"lora+solver"`` (the metamodel screens each
random-walk proposal, the solver corrects the survivors: the chain targets the exact solver
posterior; Christen & Fox 2005) are implemented, and ``"pinn"``: a PINN re-trained from a warm start
at each proposal (:class:`physreg.pinn._forward.PINNForward`: a few physics-only L-BFGS
iterations from the network of the current state, theta held at the proposal), sampled by
warm-started random-walk Metropolis (:func:`physreg.inference._warm.run_warm_rwmh`) or by
adaptive tempered SMC whose particles each carry their network (``sampler="smc"``: tempered
from a widened Laplace approximation, each particle's network trained from the mode's and
retrained from its own at every move; ``smc_start``). The
"pinn" chain is an approximation (the retrained network depends on the path and is only as
good as the physics loss it reaches, recorded per draw as ``sample_stats.physics_loss``):
``studies/mcmc_metamodels.py`` measures it against solver-NUTS: in 1-D it is 130x slower in
ESS/s and 2.8x too wide in D with 20 L-BFGS iterations per proposal (the network lags behind
theta). Tempered SMC with a network per particle (128 particles, 2 tempering steps) gives the same
picture by another sampler: D 2.8x too wide, 1.15 sd off, 460x slower than solver-NUTS. It is
there to be measured, not recommended where a solver runs in milliseconds.

Metamodel forwards cover the 1-D Fisher-KPP family of :class:`physreg.metamodels.FKPPSetup`: a
known Gaussian introduction (``initial="gaussian"`` with ``ic_x``, ``ic_width``, ``ic_mass``
fixed at the metamodel's values), no-flux ends, no covariates, and the rates the metamodel does
not take fixed at its values. The prior box of the metamodel's parameters is its training box
(a user ``bounds`` may narrow it, never widen it: a ``ValueError`` says so), so no proposal is
ever extrapolated. ``predict`` always goes through the solver. A metamodel chain's draws can
be reweighted to the solver posterior afterwards (:meth:`MCMCEstimator.importance_correct`:
one solver solve per draw, vmapped, with the weights' ESS and Pareto-k tail diagnostic).

Priors live on the unconstrained scale z (log for positive parameters). The default for each
free parameter is a normal centred in its box with a standard deviation of a quarter of the
box's width, truncated to the box: weakly informative, and it respects the bounds. A user prior
``priors={"D": ("normal", mean, sd)}`` is a normal on z (so on log D for D).
"""

from __future__ import annotations

import dataclasses
import time as _time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .estimators import SolverEstimator
from .inference._diagnostics import check_convergence, summarize
from .inference._mcmc import run_delayed_acceptance, run_mcmc
from .inference._optimize import batch_map

__all__ = ["MCMCEstimator"]

FORWARDS = ("solver", "hyperpinn", "lora", "pinn", "hyperpinn+solver", "lora+solver")
METAMODEL_KIND = {"hyperpinn": "full", "lora": "lora", "hyperpinn+solver": "full",
                  "lora+solver": "lora"}
SAMPLERS = ("nuts", "rwmh", "smc")


def _setup_summary(s) -> str:
    """A metamodel setup without its covariate values (which would fill the message)."""
    if s.ndim == 1:
        return str(s)
    keep = ("names", "lower", "upper", "fixed", "domain_x", "domain_y", "t0", "t_max", "ic",
            "covariates", "grid")
    return "FKPPSetup2D(" + ", ".join(f"{k}={getattr(s, k)!r}" for k in keep) + ")"


class MCMCEstimator(SolverEstimator):
    """Posterior sampling of the reaction-diffusion parameters (blackjax).

    Parameters
    ----------
    forward : {"solver", "hyperpinn", "lora", "pinn", "hyperpinn+solver", "lora+solver"}
        Forward model of the likelihood (see the module docstring).
    sampler : {"nuts", "rwmh", "smc"}
        NUTS with window adaptation (default), adaptive random-walk Metropolis, or adaptive
        tempered SMC (which also estimates the log evidence, ``log_evidence_``). Ignored by the
        "+solver" forwards, which always run delayed-acceptance random-walk Metropolis. With
        "pinn", "nuts" and "rwmh" run warm-started random-walk Metropolis (NUTS would need
        gradients through the retraining) and "smc" warm-started SMC.
    smc_start : {"auto", "prior", "laplace"}
        Where SMC's tempering starts: the prior, or a Gaussian at the maximum-likelihood
        point with twice the Laplace standard deviations (``run_mcmc``'s ``smc_reference``;
        fewer tempering steps when the prior is wide; the log evidence is the same
        quantity). "auto": "laplace" for ``forward="pinn"`` (particles drawn from the prior
        would each need a full PINN training; "prior" is refused there), "prior" otherwise.
    smc_mcmc_steps : int
        Random-walk moves per particle at each tempering step (SMC).
    metamodel : physreg.metamodels.HyperPINN, str or Path, optional
        The metamodel of the "hyperpinn"/"lora" forwards, or the path of one saved with
        :func:`physreg.metamodels.save_metamodel`. Its kind must match the forward ("full" for
        "hyperpinn", "lora" for "lora"). None: one is trained on first fit (supervised on solver
        solutions over the prior box of D and r, see ``metamodel_options``) and kept as
        ``metamodel_``.
    metamodel_options : dict, optional
        For training on first fit: ``box`` (name -> (lo, hi), default: the estimator's bounds),
        ``steps`` (default 4000), ``n_train`` (solver solutions, default 512), ``seed`` and the
        architecture keywords of :meth:`physreg.metamodels.HyperPINN.build`.
    pinn_options : dict, optional
        For ``forward="pinn"``: the network (``width`` 32, ``depth`` 3, ``modes`` 8), the
        collocation points (``n_collocation`` 1024), the penalty weights (``lambda_pde`` 100,
        ``lambda_ic`` 1000, ``lambda_bc`` 10), the first training at the posterior mode
        (``n_adam`` 2000 steps on data + physics, then ``n_lbfgs`` 2000 physics-only L-BFGS
        iterations), the L-BFGS iterations per proposal (``retrain_steps`` 20), with SMC the
        L-BFGS iterations that train each starting particle's network from the mode's
        (``smc_init_steps`` 200), and ``seed``.
    compiler_options : dict, optional
        XLA options for compiling the sampler (see :func:`physreg.inference._mcmc.run_mcmc`);
        ``{"xla_backend_optimization_level": 0}`` compiles 5-10x faster on CPU and runs slower:
        for short runs and tests.
    num_chains, num_warmup, num_samples : int
        Per chain (SMC: ``smc_particles`` particles in one chain).
    priors : dict name -> ("normal", mean, sd) on the unconstrained scale, optional.
    rhat_max, ess_min : float
        A ``UserWarning`` names the parameters whose split R-hat exceeds ``rhat_max`` or whose
        bulk/tail ESS is below ``ess_min``.
    Other parameters as :class:`~physreg.SolverEstimator` (model, observation model, grid).

    Attributes
    ----------
    posterior_ : xarray.DataTree, groups ``posterior`` and ``sample_stats`` (dims chain, draw).
    params_ : posterior means (user units); ``map_`` the maximum-likelihood start.
    summary_, convergence_problems_ : per-parameter diagnostics and the ones that failed.
    result_ : the sampler's :class:`~physreg.inference._mcmc.MCMCResult`.
    fit_time_ : seconds for the whole fit; ``sampling_time_`` warm-up + sampling run time
        (compilation excluded: divide an ESS by it for ESS/s); ``compile_time_`` JIT
        compilation of the sampler.
    metamodel_, metamodel_train_s_ : metamodel forwards; ``pinn_train_s_``,
        ``pinn_physics_loss_``, ``pinn_weights_`` : the first PINN training (forward="pinn").
    importance_, params_importance_ : after :meth:`importance_correct` (metamodel forwards):
        the draws reweighted to the solver posterior, and their weighted means.
    """

    def __init__(self, forward="solver", sampler="nuts", target="density",
                 likelihood="gaussian", diffusion_covariates=(), growth_covariates=(),
                 competition="gamma", boundary="neumann", boundary_value=0.0, initial="first",
                 n_introductions=1, t0=None, fit_t0=False, fixed=None, bounds=None,
                 initial_params=None, priors=None, domain=None, extras=None, grid=None,
                 max_step=None, solver_method="auto", num_chains=4, num_warmup=500, num_samples=1000,
                 smc_particles=1000, smc_start="auto", smc_mcmc_steps=10, rhat_max=1.01, ess_min=400.0, metamodel=None,
                 metamodel_options=None, pinn_options=None, compiler_options=None,
                 random_state=0, verbose=False):
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
        self.solver_method = solver_method
        self.num_chains = num_chains
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.smc_particles = smc_particles
        self.smc_start = smc_start
        self.smc_mcmc_steps = smc_mcmc_steps
        self.rhat_max = rhat_max
        self.ess_min = ess_min
        self.metamodel = metamodel
        self.metamodel_options = metamodel_options
        self.pinn_options = pinn_options
        self.compiler_options = compiler_options
        self.random_state = random_state
        self.verbose = verbose

    # the MAP start reuses SolverEstimator's optimiser settings
    n_starts = 2
    n_screen = 64
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
        """The normalised log-density of the truncated-normal prior (normalised, so that an
        SMC run tempered from a reference other than the prior estimates the same evidence)."""
        lo, hi, mean, sd = self._prior
        norm = jax.scipy.stats.norm
        inside = jnp.all((z >= lo) & (z <= hi))
        log_mass = jnp.sum(jnp.log(norm.cdf((hi - mean) / sd) - norm.cdf((lo - mean) / sd)))
        lp = jnp.sum(norm.logpdf(z, mean, sd)) - log_mass
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
        pinn_opts = self._pinn_options() if self.forward == "pinn" else None
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}.")
        if self.smc_start not in ("auto", "prior", "laplace"):
            raise ValueError("smc_start must be 'auto', 'prior' or 'laplace', got "
                             f"{self.smc_start!r}.")
        if self.forward == "pinn" and self.sampler == "smc" and self.smc_start == "prior":
            raise ValueError("forward='pinn' with sampler='smc' starts from the Laplace "
                             "approximation (smc_start='laplace' or 'auto'): particles drawn "
                             "from the prior would each need a full PINN training.")
        for name in ("num_chains", "num_warmup", "num_samples", "smc_particles",
                     "smc_mcmc_steps"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < (0 if name == "num_warmup" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        t_start = _time.perf_counter()
        self._mm = self._resolve_metamodel() if self.forward in METAMODEL_KIND else None
        # the maximum-likelihood fit gives the chains a good start
        super().fit(obs, covariates)
        self._prior = self._prior_arrays()
        prob = self.problem_
        z_map = jnp.asarray(self.z_)
        self.metamodel_train_s_ = 0.0
        if self.forward in METAMODEL_KIND:
            if self._mm is None:
                self._mm = self._train_metamodel()
            self.metamodel_ = self._mm

        def loglik_solver(z):
            return jnp.sum(prob.loglik_terms(z))

        def make_logpost(loglik):
            def logpost(z):
                lp = self._logprior(z)
                return jnp.where(jnp.isfinite(lp), lp + loglik(z), -jnp.inf)
            return logpost

        loglik = (self._metamodel_loglik(self._mm) if self.forward in ("hyperpinn", "lora")
                  else loglik_solver)
        logpost = make_logpost(loglik)

        key = jax.random.PRNGKey(int(np.random.default_rng(self.random_state).integers(2**31)))
        k_init, k_run = jax.random.split(key)
        # dispersed starts around the MAP (R-hat can only see what dispersed chains show)
        lo, hi = self.space_.bounds_unconstrained()
        jitter = 0.05 * jax.random.normal(k_init, (int(self.num_chains), z_map.shape[0]))
        z_init = jnp.clip(z_map + jitter, lo, hi)
        laplace = (self.sampler == "smc" and (self.smc_start == "laplace" or (
            self.smc_start == "auto" and self.forward == "pinn")))
        reference = self._smc_reference(z_map) if laplace else None
        if self.forward == "pinn":
            res = self._run_pinn_chains(pinn_opts, z_init, k_run, reference)
        elif self.forward.endswith("+solver"):
            cheap = make_logpost(self._metamodel_loglik(self._mm))
            res = run_delayed_acceptance(cheap, logpost, z_init, num_chains=int(self.num_chains),
                                         num_warmup=int(self.num_warmup),
                                         num_samples=int(self.num_samples), key=k_run,
                                         compiler_options=self.compiler_options,
                                         progress=bool(self.verbose))
        else:
            res = run_mcmc(logpost, z_init, sampler=self.sampler,
                           num_chains=int(self.num_chains), num_warmup=int(self.num_warmup),
                           num_samples=int(self.num_samples), key=k_run,
                           logprior=self._logprior, loglik=loglik,
                           prior_sample=self._prior_sample,
                           smc_particles=int(self.smc_particles), smc_reference=reference,
                           smc_mcmc_steps=int(self.smc_mcmc_steps),
                           compiler_options=self.compiler_options, progress=bool(self.verbose))
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
        # warm-up + sampling, run time only; JIT compilation is reported apart
        self.sampling_time_ = float(res.timing.get("warmup_s", 0.0)
                                    + res.timing.get("sampling_s", 0.0))
        self.compile_time_ = float(res.timing.get("compile_s", 0.0))
        return self

    # ---------------------------------------------------------------- warm-started PINN -----
    _PINN_DEFAULTS = {"width": 32, "depth": 3, "modes": 8, "n_collocation": 1024,
                      "lambda_pde": 100.0, "lambda_ic": 1000.0, "lambda_bc": 10.0,
                      "n_adam": 2000, "n_lbfgs": 2000, "retrain_steps": 20,
                      "smc_init_steps": 200, "seed": 0}

    def _pinn_options(self):
        opts = dict(self.pinn_options or {})
        unknown = sorted(set(opts) - set(self._PINN_DEFAULTS))
        if unknown:
            raise ValueError(f"pinn_options: unknown keys {unknown}; valid keys: "
                             f"{sorted(self._PINN_DEFAULTS)}.")
        out = {**self._PINN_DEFAULTS, **opts}
        for k in ("width", "depth", "modes", "n_collocation", "retrain_steps",
                  "smc_init_steps"):
            if not isinstance(out[k], int | np.integer) or out[k] < 1:
                raise ValueError(f"pinn_options[{k!r}] must be a positive integer, got "
                                 f"{out[k]!r}.")
        for k in ("n_adam", "n_lbfgs"):
            if not isinstance(out[k], int | np.integer) or out[k] < 0:
                raise ValueError(f"pinn_options[{k!r}] must be an integer >= 0, got {out[k]!r}.")
        return out

    def _laplace_cov(self, z):
        """The inverse Hessian of the NLL (through the solver) at ``z``, or None when it is
        not positive definite."""
        from .inference import wald

        try:
            cov = np.asarray(wald(self.problem_.nll, z, None, 0.95).cov)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return None
        if np.all(np.isfinite(cov)) and np.all(np.linalg.eigvalsh(cov) > 0):
            return cov
        return None

    def _smc_reference(self, z_map):
        """SMC's starting Gaussian: the mode, with twice the Laplace standard deviations."""
        cov = self._laplace_cov(z_map)
        if cov is None:
            raise ValueError("smc_start='laplace': the Hessian of the negative log-likelihood "
                             "at the maximum-likelihood point is not positive definite (a "
                             "parameter the data do not identify?); use smc_start='prior' or "
                             "fix that parameter.")
        return (np.asarray(z_map), 4.0 * cov)

    def _run_pinn_chains(self, opts, z_init, key, reference=None):
        """Warm-started RWMH, or SMC from ``reference``, through a PINN retrained at each
        proposal (forward="pinn")."""
        from .inference._warm import run_warm_rwmh
        from .pinn import build_problem
        from .pinn._forward import PINNForward

        t0 = _time.perf_counter()
        prob, data, w0 = build_problem(
            self.model_, self.obs_, self.likelihood_, self.space_, self.covariates_,
            key=jax.random.PRNGKey(int(opts["seed"])), n_collocation=int(opts["n_collocation"]),
            width=int(opts["width"]), depth=int(opts["depth"]), modes=int(opts["modes"]),
            lambda_pde=float(opts["lambda_pde"]), lambda_ic=float(opts["lambda_ic"]),
            lambda_bc=float(opts["lambda_bc"]), hard_ic=False, time_power=2.0)
        fwd = PINNForward(prob, data, n_steps=int(opts["retrain_steps"]))
        z_map = jnp.asarray(self.z_)
        train = jax.jit(lambda w, z: fwd.train(w, z, int(opts["n_adam"]), int(opts["n_lbfgs"])))
        nn, phys = jax.block_until_ready(train(w0, z_map))
        if not np.isfinite(float(phys)):
            raise RuntimeError("forward='pinn': the first PINN training at the posterior mode "
                               "did not reach a finite physics loss; change pinn_options.")
        self.pinn_train_s_ = _time.perf_counter() - t0
        self.pinn_forward_ = fwd
        self.pinn_weights_ = nn
        self.pinn_physics_loss_ = float(phys)
        if self.verbose:
            print(f"forward='pinn': first training {self.pinn_train_s_:.1f} s, physics loss "
                  f"{float(phys):.3g}")
        if reference is not None:
            return self._run_pinn_smc(fwd, nn, opts, reference, key)
        logprior = self._logprior

        def logdensity_aux(z, aux):
            w, _ = aux
            lp = logprior(z)

            def solve(_):
                w_new, loss = fwd.retrain(w, z)
                return lp + fwd.loglik(w_new, z), (w_new, loss)

            def skip(_):
                return jnp.asarray(-jnp.inf, lp.dtype), aux

            return jax.lax.cond(jnp.isfinite(lp), solve, skip, None)

        # the Laplace approximation at the mode (through the solver) starts the adaptation;
        # a failed Hessian falls back to the default proposal
        cov = self._laplace_cov(z_map)
        res = run_warm_rwmh(logdensity_aux, (nn, phys), z_init,
                             num_chains=int(self.num_chains), num_warmup=int(self.num_warmup),
                             num_samples=int(self.num_samples), key=key, proposal_cov=cov,
                             aux_stat=lambda aux: aux[1],
                             compiler_options=self.compiler_options,
                             progress=bool(self.verbose))
        res.sample_stats["physics_loss"] = res.sample_stats.pop("aux_stat")
        return res

    def _run_pinn_smc(self, fwd, nn, opts, reference, key):
        """Tempered SMC from ``reference`` whose particles carry their own network: each is
        trained from the mode's network at its starting point (``smc_init_steps`` L-BFGS
        iterations), and every move retrains the proposal's network from the particle's."""
        n_init = int(opts["smc_init_steps"])

        def init(z):
            return fwd.retrain(nn, z, n_steps=n_init)

        def solve(z, aux):
            return fwd.retrain(aux[0], z)

        def loglik(z, aux):
            return fwd.loglik(aux[0], z)

        res = run_mcmc(None, reference[0], sampler="smc", key=key, logprior=self._logprior,
                       loglik=loglik, smc_particles=int(self.smc_particles),
                       smc_mcmc_steps=int(self.smc_mcmc_steps), smc_reference=reference,
                       smc_forward_state=(init, solve), compiler_options=self.compiler_options,
                       progress=bool(self.verbose))
        _, phys = res.info.pop("forward_state")
        res.sample_stats["physics_loss"] = np.asarray(phys)[None]
        return res

    # ---------------------------------------------------------------- metamodels ------------
    def _resolve_metamodel(self):
        """The metamodel given (instance or path), checked against the forward; or None."""
        from .metamodels import HyperPINN, load_metamodel

        mm = self.metamodel
        if mm is None:
            return None
        if isinstance(mm, str | Path):
            mm = load_metamodel(mm)
        if not isinstance(mm, HyperPINN):
            raise TypeError(f"metamodel must be a physreg.metamodels.HyperPINN or the path of a "
                            f"saved one, got {type(mm).__name__}.")
        want = METAMODEL_KIND[self.forward]
        if mm.kind != want:
            raise ValueError(f"forward={self.forward!r} needs a metamodel of kind {want!r}, got "
                             f"one of kind {mm.kind!r}; pass forward="
                             f"{'lora' if mm.kind == 'lora' else 'hyperpinn'!r}"
                             f"{'+solver' if self.forward.endswith('+solver') else ''!r} or "
                             "another metamodel.")
        return mm

    def _setup(self, obs, covariates):
        super()._setup(obs, covariates)
        mm = getattr(self, "_mm", None)
        if self.forward not in METAMODEL_KIND or mm is None:
            return
        self._check_metamodel_fits(mm)  # before any solver work
        # the prior box of the metamodel's parameters is its training box (user bounds may
        # only narrow it)
        space = self.space_
        lower, upper = list(space.lower), list(space.upper)
        user = dict(self.bounds or {})
        for n, a, b in zip(mm.setup.names, mm.setup.lower, mm.setup.upper, strict=True):
            if n not in space.free:
                raise ValueError(f"The metamodel takes {n!r}, which is fixed here; free it or use "
                                 f"a metamodel over {[m for m in mm.setup.names if m != n]}.")
            i = space.free.index(n)
            if n in user:
                lo, hi = (float(v) for v in user[n])
                if lo < a - 1e-12 or hi > b + 1e-12:
                    raise ValueError(f"bounds[{n!r}] = {(lo, hi)} reach outside the metamodel's "
                                     f"training box ({a}, {b}): a metamodel does not "
                                     f"extrapolate; use bounds within it, e.g. bounds={{{n!r}: "
                                     f"({a}, {b})}}, or retrain the metamodel on a wider box.")
                lower[i], upper[i] = lo, hi
            else:
                lower[i], upper[i] = float(a), float(b)
        self.space_ = dataclasses.replace(space, lower=tuple(lower), upper=tuple(upper))

    def _check_metamodel_fits(self, mm):
        """Raise ValueError unless the model is the family the metamodel was trained on."""
        from .model import GaussianIntroductions

        s = mm.setup
        model = self.model_
        problems = []
        if s.ndim == 2:
            problems += self._metamodel_problems_2d(s)
        else:
            if model.ndim != 1:
                problems.append(f"the model is {model.ndim}-D, the metamodel 1-D")
            if model.covariates:
                problems.append(f"the model uses covariates {list(model.covariates)}")
        if self.boundary != "neumann":
            problems.append(f"boundary={self.boundary!r} (the metamodel has no-flux ends)")
        if self.competition != "gamma":
            problems.append(f"competition={self.competition!r} (the metamodel uses gamma)")
        ic = model.initial
        if not isinstance(ic, GaussianIntroductions) or ic.n != 1 or ic.fit_t0:
            problems.append("initial must be 'gaussian' with one introduction at a known t0")
        elif abs(float(ic.t0) - s.t0) > 1e-9:
            problems.append(f"t0 = {ic.t0}, the metamodel starts at {s.t0}")
        fixed = dict(self.space_.fixed)
        ic_names = ("ic_x", "ic_y", "ic_width", "ic_mass") if s.ndim == 2 else ("ic_x", "ic_width",
                                                                               "ic_mass")
        for n, v in zip(ic_names, s.ic, strict=True):
            if n not in fixed or abs(fixed[n] - v) > 1e-9 * max(1.0, abs(v)):
                problems.append(f"{n} must be fixed at {v} (the metamodel's introduction), got "
                                f"{fixed.get(n, 'free')}")
        for n, v in s.fixed:
            if n not in fixed or abs(fixed[n] - v) > 1e-9 * max(1.0, abs(v)):
                problems.append(f"{n} must be fixed at {v}, got {fixed.get(n, 'free')}")
        if s.ndim == 1 and model.ndim == 1:
            dom = tuple(float(a) for a in model.domain.x)
            if any(abs(a - b) > 1e-9 for a, b in zip(dom, s.domain, strict=True)):
                problems.append(f"domain {dom} differs from the metamodel's {s.domain}")
        t = self.obs_.time
        if t.min() < s.t0 or t.max() > s.t_max:
            problems.append(f"observation times [{t.min()}, {t.max()}] leave the metamodel's "
                            f"window [{s.t0}, {s.t_max}]")
        if any(k in self.obs_.extras for k in ("radius", "cell_size")):
            problems.append("areal observations (radius / cell_size) are not supported")
        if problems:
            hint = ", ".join(f"{n!r}: ..." for n in ic_names)
            raise ValueError(f"forward={self.forward!r}: the metamodel does not cover this model: "
                             + "; ".join(problems) + f". Pass fixed={{{hint}, ...}} "
                             "with the metamodel's values (its setup: "
                             f"{_setup_summary(s)}), or use forward='solver'.")

    def _metamodel_problems_2d(self, s):
        """What keeps a 2-D metamodel (:class:`~physreg.metamodels.FKPPSetup2D`) from this
        model: dimension, rectangle, covariate links and the covariate fields themselves."""
        from .data import interpolate_covariates

        model = self.model_
        problems = []
        if model.ndim != 2:
            return [f"the model is {model.ndim}-D, the metamodel 2-D"]
        for ax, want in (("x", s.domain_x), ("y", s.domain_y)):
            got = tuple(float(a) for a in getattr(model.domain, ax))
            if any(abs(a - b) > 1e-9 for a, b in zip(got, want, strict=True)):
                problems.append(f"domain {ax} = {got} differs from the metamodel's {want}")
        if model.D.covariates:
            problems.append(f"D depends on covariates {list(model.D.covariates)} (the metamodel "
                            "has a constant D)")
        if set(model.r.covariates) != set(s.covariates):
            problems.append(f"growth covariates {list(model.r.covariates)} differ from the "
                            f"metamodel's {list(s.covariates)}")
        elif s.covariates:
            # the fields must be the ones it was trained on: compare where the solver and the
            # metamodel read them (the metamodel's covariate grid and solver cell centres)
            yc, xc = s.centres()
            pts = [np.meshgrid(np.asarray(s.cov_x), np.asarray(s.cov_y)),
                   np.meshgrid(xc, yc)]
            for c, field in zip(s.covariates, s.cov_values, strict=True):
                mine = [np.asarray(field, float).ravel(),
                        np.asarray(s.covariate_at(jnp.asarray(pts[1][0]),
                                                  jnp.asarray(pts[1][1]))[
                                       s.covariates.index(c)]).ravel()]
                theirs = [interpolate_covariates(self.covariates_[[c]], x=X, y=Y)[c].ravel()
                          for X, Y in pts]
                err = max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs,
                                                                       strict=True))
                scale = 1.0 + float(np.max(np.abs(mine[0])))
                if not err <= 1e-6 * scale:
                    problems.append(f"covariate {c!r} differs from the field the metamodel was "
                                    f"trained on (max difference {err:.3g})")
        return problems

    def _metamodel_loglik(self, mm):
        prob = self.problem_
        space = self.space_
        t_obs = jnp.asarray(self.obs_.time, float)
        x_obs = jnp.asarray(self.obs_.x, float)
        y_obs = jnp.asarray(self.obs_.y, float) if mm.setup.ndim == 2 else None
        names = mm.setup.names
        lik = self.likelihood_

        def loglik(z):
            p = space.unpack(z)
            theta = jnp.stack([p[n] for n in names])
            mu = mm.evaluate(theta, t_obs, x_obs, y_obs)
            nuis = {n: p[n] for n in lik.nuisance_names()}
            return jnp.sum(lik.logpdf(prob.y, mu, nuis, prob.extras))

        return loglik

    def _train_metamodel(self):
        from .metamodels import (
            FKPPSetup,
            HyperPINN,
            default_grid,
            sample_box,
            solver_snapshots,
            train_metamodel,
        )

        if self.model_.ndim == 2:
            return self._train_metamodel_2d()
        opts = dict(self.metamodel_options or {})
        space = self.space_
        fixed = dict(space.fixed)
        box = dict(opts.pop("box", {}))
        names = tuple(n for n in ("D", "r", "gamma") if n in space.free)
        for n in names:
            if n not in box:
                i = space.free.index(n)
                box[n] = (space.lower[i], space.upper[i])
        missing = [n for n in ("ic_x", "ic_width", "ic_mass") if n not in fixed]
        if missing:
            raise ValueError(f"forward={self.forward!r} trains a metamodel for a known "
                             f"introduction: fix {missing} (fixed={{...}}).")
        setup = FKPPSetup(names=names, lower=tuple(float(box[n][0]) for n in names),
                          upper=tuple(float(box[n][1]) for n in names),
                          fixed=tuple((n, float(fixed[n])) for n in ("D", "r", "gamma")
                                      if n not in names),
                          domain=tuple(float(a) for a in self.model_.domain.x),
                          t0=float(self.model_.initial.t0),
                          t_max=float(max(self.obs_.time.max(), self.model_.initial.t0 + 1e-9)),
                          ic=tuple(float(fixed[n]) for n in ("ic_x", "ic_width", "ic_mass")))
        steps = int(opts.pop("steps", 4000))
        n_train = int(opts.pop("n_train", 512))
        seed = int(opts.pop("seed", 0))
        t0 = _time.perf_counter()
        model = HyperPINN.build(setup, kind=METAMODEL_KIND[self.forward], key=seed, **opts)
        t, x = default_grid(setup)
        th = sample_box(setup, n_train, seed=seed)
        u = solver_snapshots(setup, th, t, x=x)
        model, rec = train_metamodel(model, theta_train=th, u_train=u, t_grid=t, x_grid=x,
                                     steps=steps, seed=seed, steps_per_call=min(250, steps),
                                     verbose=bool(self.verbose))
        self.metamodel_train_s_ = _time.perf_counter() - t0
        self.metamodel_record_ = rec
        return model  # its box is the current prior box, so nothing else changes

    def _train_metamodel_2d(self):
        """2-D: a :class:`~physreg.metamodels.FKPPSetup2D` over the free rates and growth
        covariate coefficients, trained on the solver at ``metamodel_options["grid"]``
        (default the estimator's grid, else 24 x 40 cells)."""
        from .metamodels import (
            FKPPSetup2D,
            HyperPINN,
            default_grid,
            sample_box,
            solver_snapshots,
            train_metamodel,
        )

        model = self.model_
        if model.D.covariates:
            raise ValueError(f"forward={self.forward!r}: 2-D metamodels have a constant D; the "
                             f"model has D covariates {list(model.D.covariates)}.")
        if self.boundary != "neumann" or self.competition != "gamma":
            raise ValueError(f"forward={self.forward!r}: 2-D metamodels need boundary='neumann' "
                             "and competition='gamma'.")
        opts = dict(self.metamodel_options or {})
        space = self.space_
        fixed = dict(space.fixed)
        ic_names = ("ic_x", "ic_y", "ic_width", "ic_mass")
        missing = [n for n in ic_names if n not in fixed]
        if missing:
            raise ValueError(f"forward={self.forward!r} trains a metamodel for a known "
                             f"introduction: fix {missing} (fixed={{...}}).")
        covs = tuple(model.r.covariates)
        every = ("D", "r", "gamma") + tuple(f"r_{c}" for c in covs)
        box = dict(opts.pop("box", {}))
        names = tuple(n for n in every if n in space.free)
        for n in names:
            if n not in box:
                i = space.free.index(n)
                box[n] = (space.lower[i], space.upper[i])
        grid = opts.pop("grid", self.grid if self.grid is not None else (24, 40))
        cov = self.covariates_[list(covs)] if covs else None
        kw = dict(names=names, lower=tuple(float(box[n][0]) for n in names),
                  upper=tuple(float(box[n][1]) for n in names),
                  fixed=tuple((n, float(fixed[n])) for n in every if n not in names),
                  domain_x=tuple(float(a) for a in model.domain.x),
                  domain_y=tuple(float(a) for a in model.domain.y),
                  t0=float(model.initial.t0),
                  t_max=float(max(self.obs_.time.max(), model.initial.t0 + 1e-9)),
                  ic=tuple(float(fixed[n]) for n in ic_names),
                  grid=tuple(int(g) for g in np.broadcast_to(grid, (2,))))
        setup = (FKPPSetup2D.from_covariates(cov, **kw) if cov is not None
                 else FKPPSetup2D(**kw))
        steps = int(opts.pop("steps", 4000))
        n_train = int(opts.pop("n_train", 512))
        seed = int(opts.pop("seed", 0))
        # positive output trained on the sqrt scale (the linear output goes negative where the
        # solver gives u ~ 1e-3, which a count there turns into a wrong posterior)
        opts.setdefault("output", "log")
        loss_scale = opts.pop("loss_scale", "sqrt" if opts["output"] == "log" else "linear")
        t0 = _time.perf_counter()
        mm = HyperPINN.build(setup, kind=METAMODEL_KIND[self.forward], key=seed, **opts)
        t, y, x = default_grid(setup, n_t=20)
        th = sample_box(setup, n_train, seed=seed)
        u = solver_snapshots(setup, th, t)
        mm, rec = train_metamodel(mm, theta_train=th, u_train=u, t_grid=t, x_grid=x, y_grid=y,
                                  steps=steps, seed=seed, steps_per_call=min(250, steps),
                                  batch_points=1024, loss_scale=loss_scale,
                                  verbose=bool(self.verbose))
        self.metamodel_train_s_ = _time.perf_counter() - t0
        self.metamodel_record_ = rec
        return mm

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
        """Equal-tailed credible intervals (``method="quantile"``; ``"importance"``: of the
        draws reweighted by :meth:`importance_correct`), dims ("param", "bound")."""
        if method not in ("quantile", "credible", "importance"):
            raise ValueError("MCMCEstimator gives credible intervals: method='quantile' (or "
                             f"'importance' after importance_correct()), got {method!r}.")
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}.")
        if method != "importance":
            return self._ci_quantile(float(level))
        if not hasattr(self, "importance_"):
            raise ValueError("method='importance' needs importance_correct() to have run.")
        a = (1.0 - float(level)) / 2.0
        z = np.asarray(self.importance_["z"].values)
        w = np.asarray(self.importance_["weight"].values)
        lo = np.array([weighted_quantile(z[:, j], w, a) for j in range(z.shape[1])])
        hi = np.array([weighted_quantile(z[:, j], w, 1.0 - a) for j in range(z.shape[1])])
        return self._interval_array(lo, hi, float(level), "credible-equal-tailed-importance")

    # ---------------------------------------------------------------- importance correction --
    def importance_correct(self, max_draws=None, chunk=128, surrogate=None, n_design=32):
        """Reweight the draws of a metamodel chain to the solver posterior.

        The chain targets ``p_mm(theta | y)``, the posterior with the metamodel's likelihood;
        each draw gets the weight ``w = p(y | theta, solver) / p(y | theta, metamodel)`` (the
        priors cancel), self-normalised: weighted averages of the draws estimate the solver
        posterior's (importance sampling with the metamodel posterior as the proposal;
        consistent for MCMC draws, Vihola, Helske & Franks 2020, Scand. J. Stat.). One solver
        solve per draw, vmapped in chunks of ``chunk`` (:func:`physreg.inference._optimize.
        batch_map`) and with no gradient, after the chain: cheaper than delayed acceptance,
        which solves inside the chain. ``max_draws`` thins the draws evenly first. Run time
        per draw on the bundled 2-D case (24 x 40 cells, 2000 draws, idle 2-core machine):
        ``benchmarks/bench_importance_chunk.py``, results in
        ``benchmarks/results/importance_chunk.json``.

        ``surrogate="linear"`` or ``"quadratic"``: solve at ``n_design`` draws only (spread
        evenly over the chain) and take every draw's log weight from a polynomial of that
        degree in the standardised unconstrained parameters, fitted by least squares to the
        exact log weights there. Over a posterior the discrepancy between two good forward
        models is smooth; on the bundled 2-D case (``studies/mcmc_metamodels_2d.py``,
        ``--surrogate quadratic``) a quadratic fit to 32 solves (0.09 s) gave the weighted
        means of 6000 exact weights (12 s of solves) within 0.002 posterior sd. Its
        leave-one-out residual (``fit_rms_loo``, nats) tells whether the polynomial holds;
        above 0.2 it warns (use exact weights). Draws beyond the design's range get the
        polynomial's extrapolation: ``pareto_k`` flags weights that grow there.

        Sets ``importance_`` (an ``xarray.Dataset`` over ``sample``: the draws ``z``
        (unconstrained), ``log_weight``, normalised ``weight``; attrs ``ess`` = 1 / sum w^2,
        ``ess_fraction``, ``pareto_k`` (the generalised Pareto shape of the largest weights,
        Vehtari et al. 2024: below 0.7 the estimates are reliable; a warning above),
        ``solver_s``: the solves' run time, compilation excluded, ``n_solves``, ``weights``:
        "exact" or the surrogate; with a surrogate also ``design_z`` and
        ``design_log_weight`` over ``design``, and attrs ``design_log_weight_sd`` and
        ``fit_rms_loo``), ``params_importance_`` (weighted posterior means, user units) and
        ``confidence_intervals(method="importance")``. Returns self.
        """
        import warnings

        if not hasattr(self, "result_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("importance_correct needs a fitted MCMCEstimator.")
        if self.forward not in ("hyperpinn", "lora"):
            raise ValueError("importance_correct reweights a metamodel chain (forward="
                             f"'hyperpinn' or 'lora'); this one is {self.forward!r}.")
        if not isinstance(chunk, int | np.integer) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}.")
        degree = {None: 0, "linear": 1, "quadratic": 2}.get(surrogate, -1)
        if degree < 0:
            raise ValueError("surrogate must be None, 'linear' or 'quadratic', got "
                             f"{surrogate!r}.")
        z = _thin(self._flat_draws(), max_draws, "max_draws")
        n = len(z)
        z_solve = z
        if degree:
            n_coef = _poly_features(z[:1], degree).shape[1]
            if not isinstance(n_design, int | np.integer) or n_design < n_coef + 2:
                raise ValueError(f"n_design must be an integer >= {n_coef + 2} for a "
                                 f"{surrogate} fit in {z.shape[1]} parameters ({n_coef} "
                                 f"coefficients), got {n_design!r}.")
            z_solve = _thin(z, int(n_design), "n_design")
        prob = self.problem_
        ll_mm = self._metamodel_loglik(self._mm)

        def log_ratio(zz):
            return jnp.sum(prob.loglik_terms(zz)) - ll_mm(zz)

        z_dev = jnp.asarray(z_solve)
        # compiled before the clock starts: solver_s is the solves' run time
        ratios = jax.jit(lambda zz: batch_map(log_ratio, zz, int(chunk))).lower(z_dev).compile()
        t0 = _time.perf_counter()
        lw_solve = np.asarray(ratios(z_dev))
        solver_s = _time.perf_counter() - t0
        if not np.all(np.isfinite(lw_solve)):
            raise RuntimeError(f"{int((~np.isfinite(lw_solve)).sum())} draws have a non-finite "
                               "solver or metamodel log-likelihood; the weights are undefined.")
        fit = {}
        if degree:
            lw, rms_loo = _poly_fit(z_solve, lw_solve, z, degree)
            fit = {"design_log_weight_sd": float(lw_solve.std()), "fit_rms_loo": rms_loo}
        else:
            lw = lw_solve
        w = np.exp(lw - lw.max())
        w /= w.sum()
        ess = float(1.0 / np.sum(w ** 2))
        k = pareto_k(lw)
        data = {"z": (("sample", "param"), z), "log_weight": ("sample", lw),
                "weight": ("sample", w)}
        if degree:
            data.update(design_z=(("design", "param"), z_solve),
                        design_log_weight=("design", lw_solve))
        self.importance_ = xr.Dataset(
            data, coords={"param": list(self.space_.free)},
            attrs={"ess": ess, "ess_fraction": ess / n, "pareto_k": k, "solver_s": solver_s,
                   "n_draws": n, "n_solves": len(z_solve), "weights": surrogate or "exact",
                   **fit})
        mean_user = np.sum(w[:, None] * np.asarray(self.space_.to_user(jnp.asarray(z))), 0)
        self.params_importance_ = self._params_at(
            self.space_.to_unconstrained(jnp.asarray(mean_user)),
            "MCMCEstimator, importance-corrected mean")
        if k > 0.7:
            warnings.warn(f"Importance weights with a heavy tail (Pareto k = {k:.2f} > 0.7, "
                          f"ESS {ess:.0f} of {n}): the metamodel posterior is too far from "
                          "the solver's for a reliable correction; use delayed acceptance "
                          "(forward='hyperpinn+solver') or a better metamodel.", UserWarning,
                          stacklevel=2)
        if degree and fit["fit_rms_loo"] > 0.2:
            warnings.warn(f"The {surrogate} fit of the log weights misses the solves it left "
                          f"out by {fit['fit_rms_loo']:.2f} nats (rms; the log weights' sd "
                          f"{fit['design_log_weight_sd']:.2f}): the polynomial does not hold "
                          "over this posterior; use exact weights (surrogate=None) or more "
                          "design draws.", UserWarning, stacklevel=2)
        return self

    def predict(self, X, quantiles=None, n_draws: int = 100):
        """Posterior mean of u at the coordinates of ``X`` (and quantiles on request).

        Averages the forward model over ``n_draws`` posterior draws (evenly thinned).
        ``quantiles=(0.05, 0.95)`` adds a ``quantile`` dim.
        """
        t, x, y, shape, dims, coords = self._points_of(X)
        z = self._flat_draws()
        idx = _even_index(len(z), n_draws)
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


def _even_index(n, m):
    """``min(m, n)`` indices spread evenly over ``range(n)``."""
    return np.linspace(0, n - 1, min(int(m), n)).round().astype(int)


def _thin(z, m, name):
    """``m`` rows of ``z`` spread evenly (all of them for ``m=None``)."""
    if m is None:
        return z
    if not isinstance(m, int | np.integer) or m < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {m!r}.")
    return z[_even_index(len(z), m)]


def _poly_features(u, degree):
    """Columns 1, u_j and (degree 2) u_i u_j for i <= j."""
    u = np.asarray(u, float)
    cols = [np.ones(len(u))] + [u[:, j] for j in range(u.shape[1])]
    if degree == 2:
        cols += [u[:, i] * u[:, j] for i in range(u.shape[1]) for j in range(i, u.shape[1])]
    return np.stack(cols, 1)


def _poly_fit(z_design, y, z, degree):
    """Least-squares polynomial of ``degree`` in the standardised ``z_design`` fitted to ``y``:
    its values at ``z`` and its leave-one-out rms residual on the design (hat matrix)."""
    c = z_design.mean(0)
    s = z_design.std(0)
    s = np.where(s > 0, s, 1.0)
    X = _poly_features((z_design - c) / s, degree)
    pinv = np.linalg.pinv(X)
    coef = pinv @ y
    h = np.sum(X * pinv.T, axis=1)
    loo = (y - X @ coef) / np.maximum(1.0 - h, 1e-12)
    return _poly_features((z - c) / s, degree) @ coef, float(np.sqrt(np.mean(loo ** 2)))


def weighted_quantile(values, weights, q):
    """The ``q`` quantile of ``values`` with normalised ``weights`` (the inverse of the
    weighted empirical distribution function, mid-point convention, interpolated)."""
    order = np.argsort(values)
    v, w = np.asarray(values)[order], np.asarray(weights)[order]
    cdf = np.cumsum(w) - 0.5 * w
    return float(np.interp(q, cdf / w.sum(), v))


def pareto_k(log_weights):
    """Shape of a generalised Pareto fitted to the largest importance ratios (the
    ``min(n / 5, 3 sqrt(n))`` largest, above the next one; maximum likelihood, scipy): the
    tail diagnostic of Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao &
    Gabry 2024, JMLR). Below 0.5 the weights' variance is finite; above 0.7, unreliable."""
    from scipy.stats import genpareto

    lw = np.sort(np.asarray(log_weights, float))
    n = lw.size
    m = int(min(n / 5, 3 * np.sqrt(n)))
    if m < 5:
        return float("nan")
    r = np.exp(lw - lw[-1])
    tail = r[-m:] - r[-m - 1]
    if np.all(tail <= 0):
        return float("-inf")
    k, _, _ = genpareto.fit(tail, floc=0.0)
    return float(k)
