"""Generic sampling layer: NUTS, adaptive random-walk Metropolis, adaptive tempered SMC
and delayed-acceptance Metropolis-Hastings over a flat unconstrained vector.

Nothing here knows about PDEs. Every sampler works on a jittable log-density
``logdensity(z) -> scalar`` of a flat unconstrained vector ``z`` of shape ``(p,)``
(parameter transforms live in the model specification, never in the samplers).

The algorithms follow blackjax's design (pure ``init``/``step`` functions over
NamedTuple states; the key is the first argument of every step and is split,
never reused). Each run is

* a warm-up (adaptation) phase, one ``jax.lax.scan`` per chain,
* a sampling phase, one ``jax.lax.scan`` per chain,
* chains through ``jax.vmap`` (or ``jax.lax.map`` where a vmap would defeat the
  purpose, see :func:`run_delayed_acceptance`),

each phase compiled ahead of time so that :attr:`MCMCResult.timing` separates
compilation from run time. Results come back as NumPy arrays in an
:class:`MCMCResult`; :meth:`MCMCResult.to_datatree` labels them
(``xarray.DataTree`` with groups ``posterior`` and ``sample_stats``).

Public names: :func:`run_mcmc`, :func:`run_delayed_acceptance`, :class:`MCMCResult`,
:class:`DAState`, :class:`DAInfo`, :data:`SAMPLERS`, :data:`CHAIN_METHODS`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.base import get_filter_adapt_info_fn
from blackjax.mcmc import random_walk
from blackjax.smc import resampling

__all__ = [
    "SAMPLERS",
    "CHAIN_METHODS",
    "MCMCResult",
    "DAState",
    "DAInfo",
    "run_mcmc",
    "run_delayed_acceptance",
]

SAMPLERS = ("nuts", "rwmh", "smc")

#: Acceptance rate targeted by the Robbins-Monro scale adaptation of the random walks
#: (Roberts, Gelman & Gilks 1997; optimal for high-dimensional Gaussian targets; in
#: 1-2 dimensions the optimum is nearer 0.35-0.44, so steps end up somewhat long).
RW_TARGET_ACCEPTANCE = 0.234

_JITTER = 1e-10


# --------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MCMCResult:
    """Draws and diagnostics of one sampler run (plain NumPy, no labels).

    **Attributes:**

    - `samples`: `(chain, draw, p)` float array of unconstrained draws `z`.
      SMC returns its particles as a single chain: `(1, n_particles, p)`.
    - `sample_stats`: dict of `(chain, draw)` arrays. Names follow ArviZ:
      `lp` (log-density of the draw), `acceptance_rate`, and, where the sampler has
      them, `diverging`, `tree_depth`, `n_steps`, `energy` (NUTS), `accepted` (random
      walks), `lp_cheap`, `stage1_accepted` (delayed acceptance), `loglik` (SMC).
    - `sampler`: `"nuts"`, `"rwmh"`, `"smc"` or `"delayed_acceptance"`.
    - `log_evidence`: SMC estimate of `log p(y)` (see :func:`run_mcmc`), else `None`.
    - `timing`: seconds, `{"compile_s", "warmup_s", "sampling_s"}` (wall clock) and
      `{"warmup_cpu_s", "sampling_cpu_s"}` (CPU time of this process, all threads: on a
      machine shared with other jobs the wall-clock time grows with their load, the CPU
      time much less, so the two together tell a slow run from a contended one). Run times
      exclude compilation (each phase is compiled ahead of time and timed separately).
    - `n_evals`: dict of per-chain `(chain,)` integer arrays of function evaluations,
      warm-up included, where the count is known: `"logdensity"`, `"gradient"` (NUTS),
      `"loglik"` (SMC, by construction of the algorithm), `"logdensity_cheap"`,
      `"logdensity_exact"` (delayed acceptance).
    - `tuning`: adapted tuning parameters per chain (`step_size`,
      `inverse_mass_matrix`, `proposal_cov`), as NumPy arrays.
    - `info`: sampler-specific extras (SMC tempering schedule, delayed-acceptance
      stage acceptances and savings), documented in each runner.
    """

    samples: np.ndarray
    sample_stats: dict[str, np.ndarray]
    sampler: str
    log_evidence: float | None = None
    timing: dict[str, float] = dataclasses.field(default_factory=dict)
    n_evals: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    tuning: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def num_draws(self) -> int:
        return self.samples.shape[1]

    @property
    def dim(self) -> int:
        return self.samples.shape[2]

    def to_datatree(self, names, *, transforms=None, attrs=None):
        """Label the run as an `xarray.DataTree` (groups `posterior`, `sample_stats`).

        Arguments as :func:`physreg.inference._diagnostics.to_datatree`; the sampler
        name, timings, evaluation counts and log evidence are added to `attrs`.
        """
        from ._diagnostics import to_datatree

        meta: dict[str, Any] = {"sampler": self.sampler}
        meta.update({k: float(v) for k, v in self.timing.items()})
        if self.log_evidence is not None:
            meta["log_evidence"] = float(self.log_evidence)
        for k, v in self.n_evals.items():
            meta[f"n_evals_{k}"] = int(np.sum(v))
        if attrs:
            meta.update(attrs)
        return to_datatree(
            self.samples, names, self.sample_stats, transforms=transforms, attrs=meta
        )


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


class _Phases:
    """Phase-level progress (compile / run of warm-up and sampling) and timing.

    Shown with tqdm only when `progress=True` and stderr is a terminal; silent otherwise.
    Finer, per-iteration bars would need host callbacks inside the scans.
    """

    def __init__(self, progress: bool, total: int, label: str, compiler_options=None):
        self.timing = {"compile_s": 0.0, "warmup_s": 0.0, "sampling_s": 0.0,
                       "warmup_cpu_s": 0.0, "sampling_cpu_s": 0.0}
        self.compiler_options = dict(compiler_options) if compiler_options else None
        self._bar = None
        if progress and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=label, leave=True)

    def compile(self, fn, *args):
        t0 = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile(compiler_options=self.compiler_options)
        self.timing["compile_s"] += time.perf_counter() - t0
        self._tick("compiled")
        return compiled

    def run(self, phase: str, compiled, *args):
        t0, c0 = time.perf_counter(), time.process_time()
        out = jax.block_until_ready(compiled(*args))
        self.timing[f"{phase}_s"] += time.perf_counter() - t0
        self.timing[f"{phase}_cpu_s"] += time.process_time() - c0
        self._tick(phase)
        return out

    def _tick(self, what):
        if self._bar is not None:
            self._bar.set_postfix_str(what)
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def _as_key(key):
    if key is None:
        raise TypeError(
            "`key` is required: pass a JAX key, e.g. `key=jax.random.key(0)` (or an int seed)."
        )
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    return key


def _check_counts(num_chains, num_warmup, num_samples):
    for name, val, low in (
        ("num_chains", num_chains, 1),
        ("num_warmup", num_warmup, 0),
        ("num_samples", num_samples, 1),
    ):
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val < low:
            raise ValueError(f"`{name}` must be an integer >= {low}. Got {val!r} instead.")


def _initial_positions(logdensity, z_init, num_chains, name="logdensity"):
    """Broadcast `z_init` ((p,) or (num_chains, p)) and check it is inside the support."""
    z = jnp.asarray(z_init, dtype=jnp.result_type(float))
    if z.ndim == 1:
        z = jnp.broadcast_to(z, (num_chains, z.shape[0]))
    elif z.ndim != 2 or z.shape[0] != num_chains:
        raise ValueError(
            f"`z_init` must have shape (p,) or (num_chains, p) = ({num_chains}, p). "
            f"Got shape {tuple(jnp.shape(z_init))} instead."
        )
    if z.shape[1] == 0:
        raise ValueError("`z_init` has no parameters (p = 0).")
    lp = np.asarray(jax.jit(jax.vmap(logdensity))(z))
    if lp.shape != (num_chains,):
        raise ValueError(
            f"`{name}` must return a scalar for a (p,) vector; for z_init of shape "
            f"{tuple(z.shape[1:])} it returned shape {lp.shape[1:]}."
        )
    bad = np.flatnonzero(~np.isfinite(lp))
    if bad.size:
        raise ValueError(
            f"`{name}(z_init)` is not finite for chain(s) {bad.tolist()} "
            f"(values {lp[bad].tolist()}): start every chain inside the support."
        )
    return z


CHAIN_METHODS = ("vectorized", "sequential")


def _over_chains(chain_method: str):
    """`jax.vmap` ("vectorized") or `jax.lax.map` ("sequential") of a per-chain function.

    Both run the same algorithm with the same per-chain keys; the draws agree up to
    floating-point rounding (batched code may sum in another order, and a chaotic
    sampler such as NUTS amplifies that over a long warm-up). vmap batches the chains
    into one program (fast on accelerators; every `lax.cond`/`while_loop` becomes a
    select over the batch); lax.map runs them one after another (real branches, and
    about half the compile time of the vmapped program for NUTS on CPU).
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(
            f"The 'chain_method' parameter must be one of {CHAIN_METHODS}. "
            f"Got {chain_method!r} instead."
        )
    if chain_method == "vectorized":
        return jax.vmap
    return lambda f: lambda *xs: jax.lax.map(lambda a: f(*a), xs)


def _gaussian_step(chol):
    """Symmetric additive random-walk step `chol @ N(0, I)` (blackjax `random_step`)."""

    def random_step(rng_key, position):
        return chol @ jax.random.normal(rng_key, position.shape, position.dtype)

    return random_step


def _initial_cov(rwmh_scale, p):
    scale = 0.1 if rwmh_scale is None else rwmh_scale
    scale = jnp.broadcast_to(jnp.asarray(scale, dtype=jnp.result_type(float)), (p,))
    if not bool(jnp.all(scale > 0)):
        raise ValueError(f"`rwmh_scale` must be positive. Got {rwmh_scale!r} instead.")
    return jnp.diag(scale**2)


def _proposal_cov(proposal_cov, rwmh_scale, p):
    """A random walk's starting proposal covariance: ``proposal_cov`` checked, or the
    diagonal one of :func:`_initial_cov` when it is None."""
    if proposal_cov is None:
        return _initial_cov(rwmh_scale, p)
    cov = jnp.asarray(proposal_cov, dtype=jnp.result_type(float))
    if cov.shape != (p, p) or not bool(jnp.all(jnp.isfinite(jnp.linalg.cholesky(cov)))):
        raise ValueError(
            f"`proposal_cov` must be a symmetric positive-definite ({p}, {p}) matrix. "
            f"Got shape {tuple(cov.shape)}"
            + (" that is not positive definite." if cov.shape == (p, p) else ".")
        )
    return cov


# --------------------------------------------------------------------------------------
# Adaptive random-walk warm-up (shared by RWMH and delayed acceptance)
# --------------------------------------------------------------------------------------


class _AMState(NamedTuple):
    """Adaptation state of the random-walk proposal `exp(log_scale) * cov`.

    `count`, `mean`, `m2` are Welford accumulators of the draws of the current window;
    `prior_cov` is the covariance the estimate is shrunk to (pseudo-count `_AM_PRIOR_N`).
    """

    log_scale: jax.Array
    prior_cov: jax.Array
    count: jax.Array
    mean: jax.Array
    m2: jax.Array


_AM_PRIOR_N = 10.0


def _am_cov(am: _AMState):
    cov = (_AM_PRIOR_N * am.prior_cov + am.m2) / (_AM_PRIOR_N + am.count)
    return jnp.exp(am.log_scale) * cov


def _am_chol(am: _AMState):
    cov = _am_cov(am)
    p = cov.shape[0]
    return jnp.linalg.cholesky(cov + _JITTER * jnp.trace(cov) / p * jnp.eye(p))


def _adaptive_rw_warmup(step, state0, key, num_warmup, init_cov, target):
    """Adapt a Gaussian random-walk proposal during warm-up (one chain).

    Two windows (Andrieu & Thoms 2008, "global adaptive scaling AM", in windows):

    1. the first quarter adapts only the scale `exp(log_scale)` of `init_cov` by
       Robbins-Monro, `log_scale += (i + 1)^-0.6 (accept - target)`;
    2. the remaining warm-up also estimates the target covariance from its own draws
       (Welford, shrunk towards the window-1 proposal with a pseudo-count of 10 draws),
       with the scale restarted at `2.38^2 / p` (Roberts & Rosenthal 2001) and still
       adapted by Robbins-Monro.

    The final proposal covariance `exp(log_scale) * cov` is then frozen for sampling,
    so the sampling phase is a valid (non-adaptive) Metropolis chain.

    `step(key, state, chol) -> (state, accept_signal, position)`; `accept_signal` is an
    unbiased estimate of the acceptance probability.
    """
    p = init_cov.shape[0]
    n1 = num_warmup // 4
    log_opt = jnp.log(2.38**2 / p)
    am0 = _AMState(
        log_scale=jnp.zeros(()),
        prior_cov=init_cov,
        count=jnp.zeros(()),
        mean=jnp.zeros(p),
        m2=jnp.zeros((p, p)),
    )

    def body(carry, xs):
        state, am = carry
        i, k = xs
        # Window switch: fold the window-1 proposal into the prior covariance.
        switch = i == n1
        am = jax.lax.cond(
            switch,
            lambda a: _AMState(
                log_opt, _am_cov(a) / jnp.exp(log_opt), a.count * 0, a.mean * 0, a.m2 * 0
            ),
            lambda a: a,
            am,
        )
        state, acc, x = step(k, state, _am_chol(am))
        i_win = jnp.where(i >= n1, i - n1, i)
        gain = (i_win + 1.0) ** -0.6
        log_scale = am.log_scale + gain * (acc - target)
        # Welford update, only in window 2.
        upd = i >= n1
        count = am.count + upd
        delta = x - am.mean
        mean = am.mean + jnp.where(upd, delta / jnp.maximum(count, 1.0), 0.0)
        m2 = am.m2 + jnp.where(upd, jnp.outer(delta, x - mean), 0.0)
        am = _AMState(log_scale, am.prior_cov, count, mean, m2)
        return (state, am), acc

    if num_warmup == 0:
        return state0, init_cov, jnp.zeros(())
    idx = jnp.arange(num_warmup)
    (state, am), accs = jax.lax.scan(body, (state0, am0), (idx, jax.random.split(key, num_warmup)))
    return state, _am_cov(am), accs.mean()


# --------------------------------------------------------------------------------------
# NUTS
# --------------------------------------------------------------------------------------


def _run_nuts(
    logdensity,
    z0,
    key,
    num_warmup,
    num_samples,
    step_size,
    phases,
    over_chains,
    *,
    dense_mass,
    target_accept,
    max_tree_depth,
):
    num_chains, p = z0.shape
    k_warm, k_samp = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, num_chains)
    samp_keys = jax.random.split(k_samp, num_chains)
    if num_warmup == 0 and step_size is None:
        raise ValueError(
            "`num_warmup=0` leaves nothing to adapt the NUTS step size with: pass "
            "`step_size=...` (e.g. `step_size=0.1`) or `num_warmup>0`."
        )

    def warm_one(k, x):
        if num_warmup == 0:
            state = blackjax.nuts.init(x, logdensity)
            imm = jnp.eye(p) if dense_mass else jnp.ones(p)
            return state, jnp.asarray(step_size, float), imm, jnp.zeros((), int)
        wa = blackjax.window_adaptation(
            blackjax.nuts,
            logdensity,
            is_mass_matrix_diagonal=not dense_mass,
            initial_step_size=1.0 if step_size is None else float(step_size),
            target_acceptance_rate=target_accept,
            adaptation_info_fn=get_filter_adapt_info_fn(info_keys={"num_integration_steps"}),
            max_num_doublings=max_tree_depth,
        )
        (state, params), info = wa.run(k, x, num_warmup)
        return (
            state,
            params["step_size"],
            params["inverse_mass_matrix"],
            info.info.num_integration_steps.sum(),
        )

    warm = over_chains(warm_one)
    warm_c = phases.compile(warm, warm_keys, z0)
    state, eps, imm, n_warm = phases.run("warmup", warm_c, warm_keys, z0)

    def sample_one(k, state, eps, imm):
        algo = blackjax.nuts(logdensity, eps, imm, max_num_doublings=max_tree_depth)

        def body(s, kk):
            s, info = algo.step(kk, s)
            return s, (
                s.position,
                s.logdensity,
                info.acceptance_rate,
                info.is_divergent,
                info.num_trajectory_expansions,
                info.num_integration_steps,
                info.energy,
            )

        _, out = jax.lax.scan(body, state, jax.random.split(k, num_samples))
        return out

    samp = over_chains(sample_one)
    samp_c = phases.compile(samp, samp_keys, state, eps, imm)
    pos, lp, acc, div, depth, nsteps, energy = phases.run(
        "sampling", samp_c, samp_keys, state, eps, imm
    )
    n_grad = np.asarray(n_warm) + np.asarray(nsteps).sum(axis=1) + 1
    return MCMCResult(
        samples=np.asarray(pos),
        sample_stats={
            "lp": np.asarray(lp),
            "acceptance_rate": np.asarray(acc),
            "diverging": np.asarray(div),
            "tree_depth": np.asarray(depth),
            "n_steps": np.asarray(nsteps),
            "energy": np.asarray(energy),
        },
        sampler="nuts",
        timing=phases.timing,
        # Each leapfrog step is one value-and-gradient evaluation.
        n_evals={"logdensity": n_grad, "gradient": n_grad},
        tuning={"step_size": np.asarray(eps), "inverse_mass_matrix": np.asarray(imm)},
    )


# --------------------------------------------------------------------------------------
# Random-walk Metropolis
# --------------------------------------------------------------------------------------


def _run_rwmh(logdensity, z0, key, num_warmup, num_samples, rwmh_scale, phases, over_chains):
    num_chains, p = z0.shape
    k_warm, k_samp = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, num_chains)
    samp_keys = jax.random.split(k_samp, num_chains)
    kernel = blackjax.additive_step_random_walk.build_kernel()
    init_cov = _initial_cov(rwmh_scale, p)

    def step(k, state, chol):
        state, info = kernel(k, state, logdensity, _gaussian_step(chol))
        return state, info.acceptance_rate, state.position

    def warm_one(k, x):
        state0 = random_walk.init(x, logdensity)
        state, cov, acc = _adaptive_rw_warmup(
            step, state0, k, num_warmup, init_cov, RW_TARGET_ACCEPTANCE
        )
        return state, cov, acc

    warm_c = phases.compile(over_chains(warm_one), warm_keys, z0)
    state, cov, warm_acc = phases.run("warmup", warm_c, warm_keys, z0)

    def sample_one(k, state, cov):
        chol = jnp.linalg.cholesky(cov + _JITTER * jnp.trace(cov) / p * jnp.eye(p))
        random_step = _gaussian_step(chol)

        def body(s, kk):
            s, info = kernel(kk, s, logdensity, random_step)
            return s, (s.position, s.logdensity, info.acceptance_rate, info.is_accepted)

        _, out = jax.lax.scan(body, state, jax.random.split(k, num_samples))
        return out

    samp_c = phases.compile(over_chains(sample_one), samp_keys, state, cov)
    pos, lp, acc, accepted = phases.run("sampling", samp_c, samp_keys, state, cov)
    n = np.full(num_chains, 1 + num_warmup + num_samples)
    return MCMCResult(
        samples=np.asarray(pos),
        sample_stats={
            "lp": np.asarray(lp),
            "acceptance_rate": np.asarray(acc),
            "accepted": np.asarray(accepted),
        },
        sampler="rwmh",
        timing=phases.timing,
        n_evals={"logdensity": n},
        tuning={"proposal_cov": np.asarray(cov)},
        info={"warmup_acceptance": np.asarray(warm_acc)},
    )


# --------------------------------------------------------------------------------------
# Adaptive tempered SMC
# --------------------------------------------------------------------------------------


class _SMCMoveInfo(NamedTuple):
    acceptance_rate: jax.Array
    is_accepted: jax.Array


def _reference_draws(key, logprior, mean, cov, n, max_rounds=50):
    """``n`` draws of N(mean, cov) inside the prior's support, and the log of its mass.

    Draws where ``logprior`` is not finite are redrawn; the reference is then the Gaussian
    truncated to the support, whose mass is estimated by the fraction of draws kept.
    """
    mean = jnp.asarray(mean, dtype=jnp.result_type(float))
    cov = jnp.asarray(cov, dtype=mean.dtype)
    p = mean.shape[0]
    if cov.shape != (p, p):
        raise ValueError(f"`smc_reference` covariance must have shape ({p}, {p}) to match its "
                         f"mean. Got shape {tuple(cov.shape)} instead.")
    if not bool(jnp.all(jnp.isfinite(jnp.linalg.cholesky(cov)))):
        raise ValueError("`smc_reference` covariance is not positive definite.")
    lp_fn = jax.jit(jax.vmap(logprior))
    kept, n_drawn = [], 0
    for _ in range(max_rounds):
        key, sub = jax.random.split(key)
        z = jax.random.multivariate_normal(sub, mean, cov, (n,), dtype=mean.dtype)
        ok = np.isfinite(np.asarray(lp_fn(z)))
        kept.append(np.asarray(z)[ok])
        n_drawn += n
        if sum(len(k) for k in kept) >= n:
            break
    z = np.concatenate(kept)
    if len(z) < n:
        raise ValueError(f"Only {len(z)} of {n_drawn} draws of the SMC reference fall inside "
                         "the prior's support: the reference does not cover the prior.")
    log_mass = float(np.log(len(z) / n_drawn))
    return jnp.asarray(z[:n]), log_mass


def _run_smc(
    logprior,
    loglik,
    prior_sample,
    key,
    n_particles,
    phases,
    *,
    target_ess,
    num_mcmc_steps,
    max_steps,
    reference=None,
    forward_state=None,
):
    """Adaptive tempered SMC (see :func:`run_mcmc`), optionally from a Gaussian reference and
    with a forward state carried by each particle.

    - `reference`: ``(mean, cov)``: the particles start from draws of N(mean, cov) restricted
      to the prior's support, and the tempering goes from that reference ``q`` to the
      posterior: ``q^(1 - beta) (prior lik)^beta`` (blackjax's "prior" is ``q`` and its
      "likelihood" ``prior lik / q``). The sum of the increments still estimates
      ``log integral prior lik`` (``logprior`` must then be normalised).
    - `forward_state`: ``(init, solve)`` for a forward model solved iteratively from the
      solution at a nearby point (a warm-started PINN): ``init(z) -> aux`` gives each starting
      particle its state, ``solve(z_new, aux) -> aux_new`` solves a proposal from the state of
      the particle it moves; ``loglik`` then takes ``(z, aux)``. A particle is the pytree
      ``(z, aux)``; resampling carries the states along.
    """
    if logprior is None or loglik is None or (prior_sample is None and reference is None):
        raise ValueError(
            "sampler='smc' needs the prior and the likelihood separately and a prior "
            "sampler: pass `logprior=`, `loglik=` and `prior_sample=` (a function "
            "`prior_sample(key, n) -> (n, p)` array drawn from the normalised prior)."
        )
    k_init, k_run = jax.random.split(key)
    info_ref = {}
    if reference is None:
        z_part = jnp.asarray(prior_sample(k_init, n_particles), dtype=jnp.result_type(float))
        if z_part.ndim != 2 or z_part.shape[0] != n_particles:
            raise ValueError(
                f"`prior_sample(key, {n_particles})` must return an array of shape "
                f"({n_particles}, p). Got shape {tuple(z_part.shape)} instead."
            )
    else:
        ref_mean, ref_cov = reference
        z_part, log_mass = _reference_draws(k_init, logprior, ref_mean, ref_cov, n_particles)
        ref_mean = jnp.asarray(ref_mean, z_part.dtype)
        ref_cov = jnp.asarray(ref_cov, z_part.dtype)
        info_ref = {"reference_mean": np.asarray(ref_mean), "reference_cov": np.asarray(ref_cov),
                    "reference_log_mass": log_mass}

        def logref(z):
            return jax.scipy.stats.multivariate_normal.logpdf(z, ref_mean, ref_cov) - log_mass

    p = z_part.shape[1]
    if forward_state is None:
        def solve(z, aux):
            return aux

        def loglik_za(z, aux):
            return loglik(z)

        aux_part = ()
    else:
        init_aux, solve = forward_state
        loglik_za = loglik
        aux_part = phases.run("warmup", phases.compile(jax.vmap(init_aux), z_part), z_part)

    def target_parts(pos):
        z, aux = pos
        lp = logprior(z)
        ll = jnp.where(jnp.isfinite(lp), loglik_za(z, aux), -jnp.inf)
        return lp, ll

    if reference is None:
        def bj_logprior(pos):
            return logprior(pos[0])

        def bj_loglik(pos):
            return target_parts(pos)[1]
    else:
        def bj_logprior(pos):
            return logref(pos[0])

        def bj_loglik(pos):
            lp, ll = target_parts(pos)
            return jnp.where(jnp.isfinite(lp), lp + ll - logref(pos[0]), -jnp.inf)

    lp0 = np.asarray(jax.jit(jax.vmap(lambda z, a: sum(target_parts((z, a)))))(z_part, aux_part))
    if not np.all(np.isfinite(lp0)):
        raise ValueError(
            "`logprior + loglik` is not finite at some draws of `prior_sample`: "
            f"{int(np.sum(~np.isfinite(lp0)))} of {n_particles} particles."
        )

    def mcmc_step(rng_key, state, logdensity_fn, chol):
        # Gaussian random walk on z; the proposal's forward state is solved from the
        # particle's own (warm start). NaN densities (outside the support at beta = 0)
        # are rejections.
        k_prop, k_acc = jax.random.split(rng_key)
        z, aux = state.position
        z_new = z + chol @ jax.random.normal(k_prop, z.shape, z.dtype)
        pos_new = (z_new, solve(z_new, aux))
        lp_new = logdensity_fn(pos_new)
        d = lp_new - state.logdensity
        log_a = jnp.minimum(0.0, jnp.where(jnp.isnan(d), -jnp.inf, d))
        accept = jnp.log(jax.random.uniform(k_acc, dtype=z.dtype)) < log_a
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                           random_walk.RWState(pos_new, lp_new), state)
        return new, _SMCMoveInfo(jnp.exp(log_a), accept)

    common = dict(
        logprior_fn=bj_logprior,
        loglikelihood_fn=bj_loglik,
        mcmc_step_fn=mcmc_step,
        mcmc_init_fn=random_walk.init,
        resampling_fn=resampling.systematic,
    )
    adaptive = blackjax.adaptive_tempered_smc.build_kernel(target_ess=target_ess, **common)

    def proposal_chol(state):
        # Random walk scaled to the current (weighted) particle cloud.
        w = state.weights
        x = state.particles[0]
        mean = w @ x
        d = x - mean
        cov = (d * w[:, None]).T @ d * (2.38**2 / p)
        ridge = jnp.maximum(_JITTER * jnp.trace(cov) / p, 1e-300)
        return jnp.linalg.cholesky(cov + ridge * jnp.eye(p))

    class Carry(NamedTuple):
        state: Any
        key: jax.Array
        i: jax.Array
        prev_temp: jax.Array
        temps: jax.Array
        incr: jax.Array
        acc: jax.Array

    def run(key, particles):
        state0 = blackjax.adaptive_tempered_smc.init(particles)
        carry0 = Carry(
            state0,
            key,
            jnp.zeros((), int),
            jnp.zeros(()),
            jnp.full(max_steps + 1, jnp.nan),
            jnp.zeros(max_steps + 1),
            jnp.full(max_steps + 1, jnp.nan),
        )

        # Steps continue until one step has *started* at temperature 1. That last step
        # is the adaptive kernel with delta = 0 (blackjax's dichotomy returns
        # max_delta = 0 since the ESS at delta 0 is N): it resamples by the final
        # weights and moves the particles at temperature 1, so the returned particles
        # are equally weighted; its increment is log(mean(exp(0))) = 0. Reusing the
        # same kernel keeps one SMC step in the compiled program.
        def cond(c):
            at_one = c.state.tempering_param >= 1.0
            return (c.prev_temp < 1.0) & (at_one | (c.i < max_steps))

        def body(c):
            key, sub = jax.random.split(c.key)
            params = {"chol": proposal_chol(c.state)[None]}
            state, info = adaptive(sub, c.state, num_mcmc_steps, params)
            return Carry(
                state,
                key,
                c.i + 1,
                c.state.tempering_param,
                c.temps.at[c.i].set(state.tempering_param),
                c.incr.at[c.i].set(info.log_likelihood_increment),
                c.acc.at[c.i].set(info.update_info.acceptance_rate.mean()),
            )

        c = jax.lax.while_loop(cond, body, carry0)
        lprior, lliks = jax.vmap(target_parts)(c.state.particles)
        return (c.state.particles, lprior, lliks, c.i, c.prev_temp, c.temps, c.incr, c.acc)

    particles = (z_part, aux_part)
    run_c = phases.compile(run, k_run, particles)
    (x, aux), lprior, lliks, n_total, rejuvenated, temps, incr, acc = phases.run(
        "sampling", run_c, k_run, particles
    )
    n_total = int(n_total)
    rejuvenated = float(rejuvenated) >= 1.0
    # Tempering steps proper (the rejuvenation step, when it ran, is the last one).
    n_steps = n_total - 1 if rejuvenated else n_total
    final_acc = float(np.asarray(acc)[n_total - 1]) if rejuvenated else float("nan")
    final_temp = float(np.asarray(temps)[n_steps - 1]) if n_steps else 0.0
    if not rejuvenated:
        warnings.warn(
            f"SMC stopped at temperature {final_temp:.3g} < 1 after `smc_max_steps`="
            f"{max_steps} steps: the particles and the log evidence are not those of the "
            "posterior. Increase `smc_max_steps` or `smc_particles`.",
            RuntimeWarning,
            stacklevel=3,
        )
    incr = np.asarray(incr)[:n_total]
    # Per step and particle: loglik 1 for the ESS solver, 1 to initialise the random
    # walk, num_mcmc_steps moves, 1 for the weights; logprior only in the walk. Plus 1
    # each for `lp` at the end.
    n_loglik = n_particles * (n_total * (num_mcmc_steps + 3) + 1)
    n_logprior = n_particles * (n_total * (num_mcmc_steps + 1) + 1)
    return MCMCResult(
        samples=np.asarray(x)[None],
        sample_stats={
            "lp": np.asarray(lprior + lliks)[None],
            "loglik": np.asarray(lliks)[None],
        },
        sampler="smc",
        log_evidence=float(np.sum(incr)),
        timing=phases.timing,
        n_evals={"loglik": np.array([n_loglik]), "logprior": np.array([n_logprior])},
        info={
            "tempering_schedule": np.asarray(temps)[:n_steps],
            "log_evidence_increments": incr,
            "acceptance_per_step": np.asarray(acc)[:n_steps],
            "final_acceptance": float(final_acc),
            "n_tempering_steps": n_steps,
            "target_ess": target_ess,
            "num_mcmc_steps": num_mcmc_steps,
            **({} if forward_state is None else {"forward_state": aux}),
            **info_ref,
        },
    )


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def run_mcmc(
    logdensity: Callable | None,
    z_init,
    *,
    sampler: str = "nuts",
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    key,
    step_size: float | None = None,
    rwmh_scale=None,
    logprior: Callable | None = None,
    loglik: Callable | None = None,
    prior_sample: Callable | None = None,
    smc_particles: int = 1000,
    smc_target_ess: float = 0.5,
    smc_mcmc_steps: int = 10,
    smc_max_steps: int = 500,
    smc_reference=None,
    smc_forward_state=None,
    dense_mass: bool = False,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    chain_method: str = "vectorized",
    compiler_options: dict | None = None,
    progress: bool = False,
) -> MCMCResult:
    """Sample a log-density over a flat unconstrained vector `z` of shape `(p,)`.

    **Arguments:**

    - `logdensity`: jittable `z -> scalar` unnormalised log posterior. Unused (may be
      `None`) for `sampler="smc"`, which takes `logprior` and `loglik` instead.
    - `z_init`: `(p,)` start shared by all chains, or `(num_chains, p)` starts (prefer
      dispersed starts: R-hat can only detect what dispersed chains reveal). Must have
      a finite log-density. Ignored by SMC (its particles come from `prior_sample`).
    - `sampler`: `"nuts"`, `"rwmh"` or `"smc"`.
    - `num_chains`, `num_warmup`, `num_samples`: per chain. SMC ignores them and
      returns `smc_particles` particles as one chain.
    - `key`: JAX PRNG key (or an int seed). The same key gives the same draws.
    - `step_size`: NUTS initial step size for the adaptation (default 1.0); required
      with `num_warmup=0`, then used as is with a unit mass matrix.
    - `rwmh_scale`: RWMH initial proposal standard deviation, scalar or `(p,)`
      (default 0.1); the warm-up then adapts the covariance (see below).
    - `logprior`, `loglik`, `prior_sample`: SMC only. `prior_sample(key, n)` returns
      `(n, p)` draws from the normalised prior whose density `logprior` is
      proportional to.
    - `smc_particles`, `smc_target_ess` (fraction of particles), `smc_mcmc_steps`
      (random-walk moves per particle per tempering step), `smc_max_steps`.
    - `smc_reference`: `(mean, cov)` of a Gaussian to temper from instead of the prior
      (e.g. a widened Laplace approximation; `prior_sample` is then unused): the
      particles start from its draws inside the prior's support, and the temperature
      goes from it to the posterior, `q^(1 - beta) (prior lik)^beta`. Fewer, cheaper
      steps when the prior is much wider than the posterior, and the way to start a
      forward model solved from a nearby solution. `logprior` must then be normalised
      for the log evidence (the reference's own mass inside the support is estimated
      from the fraction of its draws kept).
    - `smc_forward_state`: `(init, solve)` for a forward model solved iteratively from a
      nearby solution (a warm-started PINN): `init(z) -> aux` gives each starting particle
      its state, `solve(z_new, aux) -> aux_new` solves a proposal from the state of the
      particle it moves, and `loglik` takes `(z, aux)`. The final states are returned in
      `info["forward_state"]`.
    - `dense_mass`, `target_accept`, `max_tree_depth`: NUTS options (blackjax
      `window_adaptation` with a diagonal or dense inverse mass matrix).
    - `chain_method`: `"vectorized"` (default: chains by `jax.vmap`) or
      `"sequential"` (`jax.lax.map`: same algorithm and keys, cheaper compilation on
      CPU; draws equal up to rounding).
    - `compiler_options`: XLA options for the ahead-of-time compilation of each phase
      (`jax.stages.Lowered.compile(compiler_options=...)`). On CPU,
      `{"xla_backend_optimization_level": 0}` cuts compile time by 5-10x (vmapped
      threefry keys are slow to optimise) for slower execution: worth it for small,
      short runs and tests, not for long runs of an expensive log-density.
    - `progress`: phase-level progress bar on a terminal.

    **Algorithms:**

    - `"nuts"`: blackjax `window_adaptation` (Stan's windowed step-size and mass-matrix
      adaptation) per chain, then NUTS; both `lax.scan` loops, chains by `jax.vmap`.
    - `"rwmh"`: blackjax additive-step random walk with a Gaussian proposal adapted
      during warm-up (scale by Robbins-Monro towards 0.234 acceptance on the
      first quarter; then the empirical covariance of the warm-up draws times a
      Robbins-Monro-adapted scale starting at 2.38^2/p) and frozen for sampling.
    - `"smc"`: blackjax adaptive tempered SMC from `prior_sample` draws; each
      temperature increment keeps an ESS of `smc_target_ess * smc_particles`;
      particles are moved by `smc_mcmc_steps` random-walk steps whose covariance is
      `2.38^2/p` times the weighted particle covariance. After temperature 1 one
      last resample-and-move step gives equally weighted particles.

      **Log evidence.** At each tempering step t (temperature beta_{t-1} -> beta_t,
      delta_t = beta_t - beta_{t-1}) blackjax first resamples (so weights are
      uniform), moves, then reweights with `delta_t * loglik`. Its
      `SMCInfo.log_likelihood_increment` is
      `logsumexp_i(delta_t * loglik(x_i)) - log N`, the standard estimate of
      `log(Z_t / Z_{t-1})`, `Z_t = integral prior(z) lik(z)^beta_t dz`. Their sum
      over steps estimates `log Z_1 - log Z_0 = log p(y)` relative to the
      distribution `prior_sample` draws from (so the prior must be normalised; the
      estimator is unbiased for Z, slightly biased low for log Z).

    **Returns:** an :class:`MCMCResult`.

    **Raises:** `ValueError` for an unknown sampler, bad counts or shapes, a start with
    a non-finite log-density, or SMC without `logprior`/`loglik`/`prior_sample`;
    `TypeError` without a key.

    Each call traces and compiles anew (the log-density is a fresh closure); the
    compile time is reported separately in `timing["compile_s"]`.
    """
    if sampler not in SAMPLERS:
        raise ValueError(
            f"The 'sampler' parameter of run_mcmc must be one of {SAMPLERS}. "
            f"Got {sampler!r} instead. (Delayed acceptance: `run_delayed_acceptance`.)"
        )
    key = _as_key(key)
    if sampler == "smc":
        if not isinstance(smc_particles, (int, np.integer)) or smc_particles < 2:
            raise ValueError(f"`smc_particles` must be an integer >= 2. Got {smc_particles!r}.")
        if not 0.0 < smc_target_ess < 1.0:
            raise ValueError(f"`smc_target_ess` must be in (0, 1). Got {smc_target_ess!r}.")
        phases = _Phases(progress, 2 if smc_forward_state is None else 4, "SMC",
                         compiler_options)
        try:
            return _run_smc(
                logprior,
                loglik,
                prior_sample,
                key,
                int(smc_particles),
                phases,
                target_ess=float(smc_target_ess),
                num_mcmc_steps=int(smc_mcmc_steps),
                max_steps=int(smc_max_steps),
                reference=smc_reference,
                forward_state=smc_forward_state,
            )
        finally:
            phases.close()

    if logdensity is None:
        raise ValueError(f"sampler={sampler!r} needs `logdensity`.")
    _check_counts(num_chains, num_warmup, num_samples)
    over_chains = _over_chains(chain_method)
    z0 = _initial_positions(logdensity, z_init, int(num_chains))
    phases = _Phases(progress, 4, sampler.upper(), compiler_options)
    try:
        if sampler == "nuts":
            result = _run_nuts(
                logdensity,
                z0,
                key,
                int(num_warmup),
                int(num_samples),
                step_size,
                phases,
                over_chains,
                dense_mass=dense_mass,
                target_accept=target_accept,
                max_tree_depth=max_tree_depth,
            )
        else:
            result = _run_rwmh(
                logdensity,
                z0,
                key,
                int(num_warmup),
                int(num_samples),
                rwmh_scale,
                phases,
                over_chains,
            )
        result.info["chain_method"] = chain_method
        return result
    finally:
        phases.close()


# --------------------------------------------------------------------------------------
# Delayed acceptance (Christen & Fox 2005)
# --------------------------------------------------------------------------------------


class DAState(NamedTuple):
    """State of a delayed-acceptance chain: position and both log-densities there.

    `n_exact` counts exact log-density evaluations (stage-1 survivors) so far.
    """

    position: jax.Array
    logdensity_cheap: jax.Array
    logdensity_exact: jax.Array
    n_exact: jax.Array


class DAInfo(NamedTuple):
    """Per-step information of delayed acceptance (not carried forward).

    - `stage1_accepted`: the proposal survived the cheap screen, so the exact
      log-density was evaluated there.
    - `accepted`: the proposal was accepted (both stages).
    - `acceptance_rate`: `1{stage 1} * alpha_2`, an unbiased estimate of the overall
      acceptance probability `alpha_1 * alpha_2`.
    """

    stage1_accepted: jax.Array
    accepted: jax.Array
    acceptance_rate: jax.Array


def _build_da_step(logdensity_cheap, logdensity_exact):
    def step(key, state: DAState, chol) -> tuple[DAState, DAInfo]:
        k_prop, k1, k2 = jax.random.split(key, 3)
        x = state.position
        y = x + chol @ jax.random.normal(k_prop, x.shape, x.dtype)
        cheap_y = logdensity_cheap(y)
        d_cheap = cheap_y - state.logdensity_cheap
        # Stage 1: Metropolis on the cheap density. NaN counts as rejection.
        log_a1 = jnp.minimum(0.0, jnp.where(jnp.isnan(d_cheap), -jnp.inf, d_cheap))
        survive = jnp.log(jax.random.uniform(k1, dtype=x.dtype)) < log_a1
        # Stage 2 only for survivors: a real conditional outside vmap.
        exact_y = jax.lax.cond(
            survive,
            logdensity_exact,
            lambda _: jnp.asarray(-jnp.inf, dtype=x.dtype),
            y,
        )
        log_a2 = jnp.minimum(0.0, exact_y - state.logdensity_exact - d_cheap)
        log_a2 = jnp.where(survive & ~jnp.isnan(log_a2), log_a2, -jnp.inf)
        accept = jnp.log(jax.random.uniform(k2, dtype=x.dtype)) < log_a2
        new = DAState(
            jnp.where(accept, y, x),
            jnp.where(accept, cheap_y, state.logdensity_cheap),
            jnp.where(accept, exact_y, state.logdensity_exact),
            state.n_exact + survive.astype(state.n_exact.dtype),
        )
        return new, DAInfo(survive, accept, jnp.exp(log_a2))

    return step


def run_delayed_acceptance(
    logdensity_cheap: Callable,
    logdensity_exact: Callable,
    z_init,
    *,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    key,
    proposal_cov=None,
    rwmh_scale=None,
    chain_method: str = "sequential",
    compiler_options: dict | None = None,
    progress: bool = False,
) -> MCMCResult:
    """Delayed-acceptance Metropolis-Hastings (Christen & Fox 2005), exact target.

    A Gaussian random-walk proposal `z' = z + L eps` is first screened with the cheap
    log-density, `alpha_1 = min(1, exp(cheap(z') - cheap(z)))`; only survivors
    evaluate the exact one and are accepted with
    `alpha_2 = min(1, exp(exact(z') - exact(z) - (cheap(z') - cheap(z))))`. The chain
    is reversible with respect to the *exact* posterior whatever the cheap density
    (which only changes efficiency), provided the cheap density is positive wherever
    the exact one is.

    **Arguments:**

    - `logdensity_cheap`, `logdensity_exact`: jittable `z -> scalar`.
    - `z_init`, `num_chains`, `num_warmup`, `num_samples`, `key`, `rwmh_scale`: as
      :func:`run_mcmc` (`"rwmh"`).
    - `proposal_cov`: `(p, p)` proposal covariance used as is (warm-up is then plain
      burn-in). Default `None`: adapted during warm-up exactly as `run_mcmc`'s RWMH,
      on the delayed-acceptance chain itself (so warm-up also uses exact evaluations;
      they are counted), targeting an overall acceptance of 0.234.
    - `chain_method`: `"sequential"` (default) runs the chains one after another with
      `jax.lax.map`, so the `lax.cond` around the exact log-density is a real branch
      and rejected-at-stage-1 proposals cost only the cheap evaluation.
      `"vectorized"` runs the chains with `jax.vmap`: under vmap `lax.cond` becomes
      `select`, **both branches run for every chain at every step**, and nothing is
      saved in compute (the statistics are identical; `info["exact_evals_computed"]`
      then says how many exact evaluations really ran).
    - `compiler_options`, `progress`: as :func:`run_mcmc`.

    **Returns:** an :class:`MCMCResult` with `sampler="delayed_acceptance"`,
    `sample_stats` `lp` (exact), `lp_cheap`, `acceptance_rate`, `accepted`,
    `stage1_accepted`, and `info`:

    - `"exact_evals_sampling"`: `(chain,)` exact evaluations during sampling (= stage-1
      survivors); `"exact_evals_warmup"` likewise;
    - `"fraction_exact_saved"`: `1 - exact evaluations / proposals` during sampling
      (what plain RWMH with the same proposal would have evaluated);
    - `"stage1_acceptance"`: fraction of proposals surviving the cheap screen;
      `"stage2_acceptance"`: fraction of survivors accepted;
      `"acceptance"`: overall fraction accepted;
    - `"exact_evals_computed"`: exact evaluations that actually ran (all proposals
      under `"vectorized"`).

    **Raises:** `ValueError` for bad counts, shapes, `chain_method`, a non-positive
    definite `proposal_cov` or a start with a non-finite log-density.
    """
    over_chains = _over_chains(chain_method)
    key = _as_key(key)
    _check_counts(num_chains, num_warmup, num_samples)
    num_chains, num_warmup, num_samples = int(num_chains), int(num_warmup), int(num_samples)
    z0 = _initial_positions(logdensity_cheap, z_init, num_chains, "logdensity_cheap")
    _initial_positions(logdensity_exact, z0, num_chains, "logdensity_exact")
    p = z0.shape[1]
    adapt = proposal_cov is None
    init_cov = _proposal_cov(proposal_cov, rwmh_scale, p)
    step = _build_da_step(logdensity_cheap, logdensity_exact)
    k_warm, k_samp = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, num_chains)
    samp_keys = jax.random.split(k_samp, num_chains)

    def warm_one(k, x):
        state0 = DAState(x, logdensity_cheap(x), logdensity_exact(x), jnp.zeros((), int))

        def am_step(kk, s, chol):
            s, info = step(kk, s, chol)
            return s, info.acceptance_rate, s.position

        if adapt:
            state, cov, acc = _adaptive_rw_warmup(
                am_step, state0, k, num_warmup, init_cov, RW_TARGET_ACCEPTANCE
            )
        else:
            chol = jnp.linalg.cholesky(init_cov)
            state, accs = jax.lax.scan(
                lambda s, kk: am_step(kk, s, chol)[:2], state0, jax.random.split(k, num_warmup)
            )
            cov, acc = init_cov, accs.mean() if num_warmup else jnp.zeros(())
        return state, cov, acc

    def sample_one(k, state, cov):
        chol = jnp.linalg.cholesky(cov + _JITTER * jnp.trace(cov) / p * jnp.eye(p))
        state = state._replace(n_exact=jnp.zeros((), int))

        def body(s, kk):
            s, info = step(kk, s, chol)
            return s, (s.position, s.logdensity_exact, s.logdensity_cheap, info)

        state, out = jax.lax.scan(body, state, jax.random.split(k, num_samples))
        return state.n_exact, out

    phases = _Phases(progress, 4, "DA", compiler_options)
    try:
        warm = over_chains(warm_one)
        warm_c = phases.compile(warm, warm_keys, z0)
        state, cov, warm_acc = phases.run("warmup", warm_c, warm_keys, z0)
        samp = over_chains(sample_one)
        samp_c = phases.compile(samp, samp_keys, state, cov)
        n_exact, (pos, lp, lp_cheap, info) = phases.run("sampling", samp_c, samp_keys, state, cov)
    finally:
        phases.close()

    n_exact = np.asarray(n_exact)
    n_exact_warm = np.asarray(state.n_exact)
    s1 = np.asarray(info.stage1_accepted)
    acc = np.asarray(info.accepted)
    total = num_chains * num_samples
    computed = (
        int(n_exact.sum() + n_exact_warm.sum()) + num_chains
        if chain_method == "sequential"
        else num_chains * (num_warmup + num_samples + 1)
    )
    return MCMCResult(
        samples=np.asarray(pos),
        sample_stats={
            "lp": np.asarray(lp),
            "lp_cheap": np.asarray(lp_cheap),
            "acceptance_rate": np.asarray(info.acceptance_rate),
            "accepted": acc,
            "stage1_accepted": s1,
        },
        sampler="delayed_acceptance",
        timing=phases.timing,
        n_evals={
            "logdensity_cheap": np.full(num_chains, 1 + num_warmup + num_samples),
            "logdensity_exact": 1 + n_exact_warm + n_exact,
        },
        tuning={"proposal_cov": np.asarray(cov)},
        info={
            "chain_method": chain_method,
            "exact_evals_sampling": n_exact,
            "exact_evals_warmup": n_exact_warm,
            "exact_evals_computed": computed,
            "fraction_exact_saved": float(1.0 - n_exact.sum() / total),
            "stage1_acceptance": float(s1.mean()),
            "stage2_acceptance": float(acc.sum() / max(s1.sum(), 1)),
            "acceptance": float(acc.mean()),
            "warmup_acceptance": np.asarray(warm_acc),
        },
    )
