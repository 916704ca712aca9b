"""The solver-route objective: data + model + solver + observation model -> log-likelihood.

:class:`SolverProblem` is a pytree (equinox module): its arrays (observation operator, initial
field, covariates on the grid, extras) are leaves and the model, solver and observation model are
static, so one compiled log-likelihood serves every parameter vector, and the observed values and
observation weights are *arguments* (bootstrap replicates are a ``vmap`` over them).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .data import Observations
from .likelihoods import EXTRAS_KEYS as _EXTRA_KEYS
from .likelihoods import ObservationModel
from .model import (
    FirstObservation,
    GaussianIntroductions,
    InitialField,
    ParameterSpace,
    ReactionDiffusion,
)
from .solvers import FiniteVolumeSolver, ObservationOperator, observation_operator


class SolverProblem(eqx.Module):
    """Log-likelihood of observations through the finite-volume solver.

    Use :func:`build_problem` to make one from validated observations.
    """

    solver: FiniteVolumeSolver = eqx.field(static=True)
    likelihood: ObservationModel = eqx.field(static=True)
    space: ParameterSpace = eqx.field(static=True)
    n_sub: int = eqx.field(static=True)
    t_save: jax.Array
    t0: jax.Array
    u0: jax.Array | None
    cov: dict
    operator: ObservationOperator
    extras: dict
    y: jax.Array
    lower: jax.Array  # bounds on the unconstrained scale (leaves, not static: see structure())
    upper: jax.Array
    penalty_weight: float = eqx.field(static=True, default=1e4)

    @property
    def model(self) -> ReactionDiffusion:
        return self.solver.model

    def params(self, z) -> dict:
        return self.space.unpack(z)

    def solve(self, z, t_save=None):
        p = self.params(z)
        return self.solver.solve(p, self.t_save if t_save is None else t_save, u0=self.u0,
                                 t0=p.get("ic_t0", self.t0), cov=self.cov, n_sub=self.n_sub)

    def mu(self, z):
        """Model density at each observation."""
        return self.operator.apply(self.solve(z))

    def loglik_terms(self, z, y=None):
        """Per-observation log-likelihood (n_obs,)."""
        p = self.params(z)
        nuis = {n: p[n] for n in self.likelihood.nuisance_names()}
        return self.likelihood.logpdf(self.y if y is None else y, self.mu(z), nuis, self.extras)

    def penalty(self, z):
        """Smooth quadratic penalty outside the parameter box (zero inside)."""
        out = jnp.maximum(z - self.upper, 0.0) + jnp.maximum(self.lower - z, 0.0)
        return self.penalty_weight * jnp.sum(out**2)

    def nll(self, z, data=None):
        """Negative log-likelihood (+ box penalty). ``data`` = (y, weights) or None."""
        if data is None:
            y, w = self.y, jnp.ones_like(self.y)
        else:
            y, w = data
        ll = self.loglik_terms(z, y)
        return -jnp.sum(w * ll) + self.penalty(z)


def interpolate_first_slice(obs: Observations, solver: FiniteVolumeSolver):
    """Initial field from the observations at the earliest time, interpolated on the grid.

    Returns (u0 on the grid, t0, keep mask of the observations used by the likelihood).
    """
    t0 = float(obs.unique_times[0])
    first = obs.time == t0
    if obs.ndim == 1:
        order = np.argsort(obs.x[first])
        x, v = obs.x[first][order], obs.value[first][order]
        if len(x) < 2:
            raise ValueError("initial='first' needs at least 2 observations at the first time.")
        u0 = np.interp(solver.centres[0], x, v)
    else:
        from scipy.interpolate import griddata

        pts = np.stack([obs.y[first], obs.x[first]], -1)
        if len(pts) < 4:
            raise ValueError("initial='first' needs at least 4 observations at the first time.")
        Y, X = np.meshgrid(*solver.centres, indexing="ij")
        lin = griddata(pts, obs.value[first], (Y, X), method="linear")
        near = griddata(pts, obs.value[first], (Y, X), method="nearest")
        u0 = np.where(np.isfinite(lin), lin, near)
    return np.maximum(u0, 0.0), t0, ~first


def build_problem(obs: Observations, solver: FiniteVolumeSolver, likelihood: ObservationModel,
                  space: ParameterSpace, cov_grid: dict, *, u0=None, t0=None, keep=None,
                  n_sub: int | None = None, ic_t0_bounds=None) -> SolverProblem:
    """Assemble a :class:`SolverProblem` from observations restricted to ``keep``."""
    keep = np.ones(obs.n_obs, bool) if keep is None else keep
    times = obs.time[keep]
    t_save, tidx = np.unique(times, return_inverse=True)
    ic = solver.model.initial
    if t0 is None:
        t0 = ic.t0 if isinstance(ic, GaussianIntroductions | InitialField) else float(t_save[0])
    if np.any(t_save < t0 - 1e-12):
        raise ValueError(f"Observations at times before the start of the model (t0 = {t0}).")
    if n_sub is None:
        start = t0 if ic_t0_bounds is None else min(t0, ic_t0_bounds[0])
        n_sub = solver.steps_per_interval(t_save, start)
    areal = {k: obs.extras[k][keep] for k in ("radius", "cell_size") if k in obs.extras}
    op = observation_operator(solver, tidx, obs.x[keep], None if obs.y is None else obs.y[keep],
                              radius=areal.get("radius"), cell_size=areal.get("cell_size"))
    extras = {k: jnp.asarray(v[keep]) for k, v in obs.extras.items() if k in _EXTRA_KEYS}
    if isinstance(ic, FirstObservation) and u0 is None:
        raise ValueError("initial='first' needs u0 (see interpolate_first_slice).")
    lo, hi = space.bounds_unconstrained()
    return SolverProblem(
        solver=solver, likelihood=likelihood, space=space.structure(), n_sub=int(n_sub),
        t_save=jnp.asarray(t_save, float), t0=jnp.asarray(t0, float),
        u0=None if u0 is None else jnp.asarray(u0, float),
        cov={k: jnp.asarray(v, float) for k, v in cov_grid.items()}, operator=op, extras=extras,
        y=jnp.asarray(obs.value[keep], float), lower=jnp.asarray(lo), upper=jnp.asarray(hi))
