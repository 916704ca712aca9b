"""Random-walk Metropolis with a forward state carried along the chain (warm starts).

For forward models that are *solved* iteratively at every proposal from the solution at the
current state of the chain (a PINN retrained for a few steps, see
:class:`physreg.pinn._forward.PINNForward`), the log-density is a function of the proposal and
of an auxiliary state ``aux`` (the network weights)::

    logdensity_aux(z, aux) -> (log p(z), aux_new)

The chain's state is ``(z, log p(z), aux)``. A Gaussian random-walk proposal ``z' = z + L eps``
is solved from the current ``aux``; if accepted, its ``aux'`` becomes the chain's. When the
inner solve converges, ``log p(z')`` does not depend on ``aux`` and this is plain RWMH; with a
few inner steps it is the "warm-started" approximation (its bias must be measured against an
exact chain, as ``studies/mcmc_metamodels.py`` does).

The warm-up adapts the proposal exactly as :func:`physreg.inference._mcmc.run_mcmc`'s RWMH
(scale, then covariance; frozen for sampling); the chains run one after another
(``lax.map``; ``chain_method="vectorized"`` vmaps them). Returns an
:class:`~physreg.inference._mcmc.MCMCResult` (``sampler="warm_rwmh"``) whose ``sample_stats``
hold ``lp``, ``acceptance_rate``, ``accepted`` and the per-draw scalar ``aux_stat`` returned by
``aux_stat(aux)`` (e.g. the physics loss of the accepted network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._mcmc import (
    _JITTER,
    RW_TARGET_ACCEPTANCE,
    MCMCResult,
    _adaptive_rw_warmup,
    _as_key,
    _check_counts,
    _over_chains,
    _Phases,
    _proposal_cov,
)

__all__ = ["WarmState", "run_warm_rwmh"]


class WarmState(NamedTuple):
    position: jax.Array
    logdensity: jax.Array
    aux: object


def _build_step(logdensity_aux):
    def step(key, state: WarmState, chol):
        k_prop, k_acc = jax.random.split(key)
        x = state.position
        y = x + chol @ jax.random.normal(k_prop, x.shape, x.dtype)
        lp_y, aux_y = logdensity_aux(y, state.aux)
        d = lp_y - state.logdensity
        log_a = jnp.minimum(0.0, jnp.where(jnp.isnan(d), -jnp.inf, d))
        accept = jnp.log(jax.random.uniform(k_acc, dtype=x.dtype)) < log_a
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                           WarmState(y, lp_y, aux_y), state)
        return new, jnp.exp(log_a), accept

    return step


def run_warm_rwmh(
    logdensity_aux: Callable,
    aux0,
    z_init,
    *,
    num_chains: int = 4,
    num_warmup: int = 500,
    num_samples: int = 1000,
    key,
    proposal_cov=None,
    rwmh_scale=None,
    aux_stat: Callable | None = None,
    chain_method: str = "sequential",
    compiler_options: dict | None = None,
    progress: bool = False,
) -> MCMCResult:
    """Warm-started random-walk Metropolis (see the module docstring).

    **Arguments:**

    - `logdensity_aux`: jittable ``(z, aux) -> (scalar, aux)``.
    - `aux0`: the auxiliary state every chain starts from (a pytree, not batched); each chain
      first solves its own start from it.
    - `z_init`: ``(p,)`` or ``(num_chains, p)`` starting positions.
    - `proposal_cov`: ``(p, p)`` starting proposal covariance (e.g. a Laplace approximation);
      default ``diag(rwmh_scale^2)`` (``rwmh_scale`` default 0.1). Adapted during warm-up.
    - `aux_stat`: ``aux -> scalar`` recorded at every draw (default: none).
    - `num_chains`, `num_warmup`, `num_samples`, `key`, `chain_method`, `compiler_options`,
      `progress`: as :func:`physreg.inference._mcmc.run_delayed_acceptance`.

    **Raises:** ``ValueError`` for bad counts or shapes, a proposal covariance that is not
    positive definite, or a start whose log-density is not finite.
    """
    over_chains = _over_chains(chain_method)
    key = _as_key(key)
    _check_counts(num_chains, num_warmup, num_samples)
    num_chains, num_warmup, num_samples = int(num_chains), int(num_warmup), int(num_samples)
    z0 = jnp.asarray(z_init, dtype=jnp.result_type(float))
    if z0.ndim == 1:
        z0 = jnp.broadcast_to(z0, (num_chains, z0.shape[0]))
    if z0.ndim != 2 or z0.shape[0] != num_chains or z0.shape[1] == 0:
        raise ValueError(f"`z_init` must have shape (p,) or (num_chains, p) = ({num_chains}, p)"
                         f" with p >= 1. Got shape {tuple(jnp.shape(z_init))} instead.")
    p = z0.shape[1]
    init_cov = _proposal_cov(proposal_cov, rwmh_scale, p)
    stat = (lambda a: jnp.zeros(())) if aux_stat is None else aux_stat
    step = _build_step(logdensity_aux)
    k_warm, k_samp = jax.random.split(key)
    warm_keys = jax.random.split(k_warm, num_chains)
    samp_keys = jax.random.split(k_samp, num_chains)

    def start_one(x):
        lp, aux = logdensity_aux(x, aux0)
        return WarmState(x, lp, aux)

    def warm_one(k, state0):
        def am_step(kk, s, chol):
            s, acc, _ = step(kk, s, chol)
            return s, acc, s.position

        return _adaptive_rw_warmup(am_step, state0, k, num_warmup, init_cov,
                                   RW_TARGET_ACCEPTANCE)

    def sample_one(k, state, cov):
        chol = jnp.linalg.cholesky(cov + _JITTER * jnp.trace(cov) / p * jnp.eye(p))

        def body(s, kk):
            s, acc, accepted = step(kk, s, chol)
            return s, (s.position, s.logdensity, acc, accepted, stat(s.aux))

        _, out = jax.lax.scan(body, state, jax.random.split(k, num_samples))
        return out

    phases = _Phases(progress, 6, "warm RWMH", compiler_options)
    try:
        start = over_chains(start_one)
        start_c = phases.compile(start, z0)
        state0 = phases.run("warmup", start_c, z0)
        bad = np.flatnonzero(~np.isfinite(np.asarray(state0.logdensity)))
        if bad.size:
            raise ValueError(f"The log-density at the start of chain(s) {bad.tolist()} is not "
                             f"finite: start every chain inside the support.")
        warm = over_chains(warm_one)
        warm_c = phases.compile(warm, warm_keys, state0)
        state, cov, warm_acc = phases.run("warmup", warm_c, warm_keys, state0)
        samp = over_chains(sample_one)
        samp_c = phases.compile(samp, samp_keys, state, cov)
        pos, lp, acc, accepted, aux_stats = phases.run("sampling", samp_c, samp_keys, state, cov)
    finally:
        phases.close()
    n = np.full(num_chains, 1 + num_warmup + num_samples)
    return MCMCResult(
        samples=np.asarray(pos),
        sample_stats={"lp": np.asarray(lp), "acceptance_rate": np.asarray(acc),
                      "accepted": np.asarray(accepted), "aux_stat": np.asarray(aux_stats)},
        sampler="warm_rwmh",
        timing=phases.timing,
        n_evals={"logdensity": n},
        tuning={"proposal_cov": np.asarray(cov)},
        info={"warmup_acceptance": np.asarray(warm_acc),
              "acceptance": float(np.asarray(accepted).mean())},
    )
