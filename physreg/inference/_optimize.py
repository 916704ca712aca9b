"""Deterministic optimisation (optimistix BFGS), batched with ``vmap``.

Every routine here takes an objective ``fun(z, data)`` of a flat unconstrained vector ``z`` and
a pytree ``data`` (observations, weights, ...). Keeping the data an *argument* (not a closed-over
constant) is what lets one compiled program serve every start, bootstrap replicate and profile
point.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx


class OptimizeResult(NamedTuple):
    """Result of :func:`minimize` (batched when vmapped)."""

    x: jax.Array
    fun: jax.Array
    converged: jax.Array
    n_iter: jax.Array


def minimize(fun, z0, data, *, max_steps: int = 500, rtol: float = 1e-9, atol: float = 1e-9,
             mask=None, fixed=None) -> OptimizeResult:
    """Minimise ``fun(z, data)`` from ``z0`` with BFGS (optimistix), never raising.

    ``mask``/``fixed``: components where ``mask`` is True are held at ``fixed`` (used by the
    profile likelihood); the optimiser sees a zero gradient there.
    Non-convergence is reported in ``converged`` (and a NaN objective counts as not converged).
    """
    if mask is not None:
        mask = jnp.asarray(mask)
        fixed = jnp.asarray(fixed)

        def full(w):
            return jnp.where(mask, fixed, w)
    else:

        def full(w):
            return w

    def objective(w, args):
        return fun(full(w), args)

    solver = optx.BFGS(rtol=rtol, atol=atol)
    sol = optx.minimise(objective, solver, z0, data, max_steps=max_steps, throw=False)
    x = full(sol.value)
    f = fun(x, data)
    ok = (sol.result == optx.RESULTS.successful) & jnp.isfinite(f)
    return OptimizeResult(x, f, ok, sol.stats["num_steps"])


@eqx.filter_jit
def minimize_batch(fun, z0s, data, *, max_steps: int = 500, rtol: float = 1e-9,
                   atol: float = 1e-9, data_axis=None) -> OptimizeResult:
    """:func:`minimize` from each row of ``z0s`` (vmapped); ``data_axis`` as in ``vmap``."""
    return jax.vmap(lambda z, d: minimize(fun, z, d, max_steps=max_steps, rtol=rtol, atol=atol),
                    in_axes=(0, data_axis))(z0s, data)


def best_of(result: OptimizeResult) -> tuple[int, OptimizeResult]:
    """Index and result of the best finite objective among a batch of starts."""
    f = jnp.where(jnp.isfinite(result.fun), result.fun, jnp.inf)
    i = int(jnp.argmin(f))
    return i, jax.tree_util.tree_map(lambda a: a[i], result)
