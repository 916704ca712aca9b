"""The penalised objective of the physics-regularised PINN.

    loss(nu, theta) = - sum_k w_k log p(y_k | u_nu(t_k, x_k), theta) / sum_k w_k
                      + lambda_pde * mean_c R(t_c, x_c)^2
                      + lambda_ic  * mean_i (u_hat(0, x_i) - u0_hat(x_i))^2
                      + lambda_bc  * mean_b B(t_b, x_b)^2
                      + box penalty on theta

everything in the scaled units of :mod:`physreg.pinn._network` (``R`` is the scaled residual of
:mod:`physreg.pinn._physics`; ``u0_hat = u0 / u_scale``).

Two objects, split by what may change between replicates:

- :class:`PINNProblem` (an equinox module): the network architecture, the dynamic loss (with the
  covariate grids), the likelihood, the parameter space and the scales. Shared by every replicate
  and profile point: ``in_axes=None`` under ``vmap``.
- :class:`PINNData`: every array a replicate, a bootstrap resample or a profile point may change:
  observed values and observation weights, collocation points, the initial field, the penalty
  weights and the mask of parameters held fixed (profile). Batch it along a leading axis and
  ``vmap`` the training step over it.
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import jinns
import numpy as np

from ..data import Observations
from ..estimators import density_scale
from ..likelihoods import EXTRAS_KEYS as _LIK_EXTRAS
from ..likelihoods import ObservationModel
from ..model import (
    FirstObservation,
    GaussianIntroductions,
    InitialField,
    ParameterSpace,
    ReactionDiffusion,
)
from ._network import Scales, make_network
from ._physics import Ansatz, ReactionDiffusionPDE, normal_derivative, scalar_network

__all__ = ["ModelParams", "PINNData", "PINNProblem", "Variables", "build_problem"]

IC_KINDS = ("field", "gaussian", "free")


class ModelParams(eqx.Module):
    """Model parameters (user units) as the ``eq_params`` of a :class:`jinns.parameters.Params`.

    A plain dict would go through jinns' ``EqParams`` singleton, whose field names are frozen
    for the whole Python session; this wrapper keeps problems with different parameters apart.
    """

    values: dict

    def __getitem__(self, name):
        return self.values[name]


class Variables(eqx.Module):
    """What training optimises: network weights ``nn`` and the unconstrained parameters ``theta``."""

    nn: object
    theta: jax.Array


class PINNData(eqx.Module):
    """Arrays of one fit (see the module docstring). Shapes: ``n`` observations with ``m``
    quadrature points each, ``nc`` collocation, ``ni`` initial and ``nb`` boundary points,
    ``p`` free parameters, ``d`` spatial dims; points are in the unit box, time first."""

    y: jax.Array                 # (n,)
    weights: jax.Array           # (n,) observation weights (bootstrap: resample counts)
    obs_points: jax.Array        # (n, m, 1 + d)
    obs_quad: jax.Array          # (n, m) quadrature weights, rows sum to 1
    extras: dict                 # name -> (n,), likelihood extras
    colloc: jax.Array            # (nc, 1 + d)
    ic_points: jax.Array         # (ni, d) spatial points at t' = 0
    u0_hat: jax.Array            # (ni,) known initial field / u_scale (zeros when unused)
    bc_points: jax.Array         # (nb, 1 + d)
    bc_axis: jax.Array           # (nb,) int: axis normal to the boundary face
    lambdas: jax.Array           # (3,) = lambda_pde, lambda_ic, lambda_bc
    theta_mask: jax.Array        # (p,) bool: held at theta_fixed (profile points)
    theta_fixed: jax.Array       # (p,)


class PINNProblem(eqx.Module):
    """Network, physics, likelihood and parameter space of one fit (see the module docstring)."""

    network: Ansatz
    pde: ReactionDiffusionPDE
    likelihood: ObservationModel = eqx.field(static=True)
    space: ParameterSpace = eqx.field(static=True)
    scales: Scales = eqx.field(static=True)
    ic_kind: str = eqx.field(static=True)
    bc_kind: str = eqx.field(static=True)
    penalty_weight: float = eqx.field(static=True, default=1e4)

    @property
    def model(self) -> ReactionDiffusion:
        return self.pde.model

    # ---- parameters ------------------------------------------------------------------------
    def theta(self, variables: Variables, data: PINNData):
        """Unconstrained parameters with the profile mask applied."""
        return jnp.where(data.theta_mask, data.theta_fixed, variables.theta)

    def jinns_params(self, variables: Variables, z):
        return jinns.parameters.Params(nn_params=variables.nn,
                                       eq_params=ModelParams(self.space.unpack(z)))

    # ---- the network in user units ---------------------------------------------------------
    def u_hat(self, variables: Variables, points, z):
        """u_hat at unit-box points ``(..., 1 + d)`` for unconstrained parameters ``z``."""
        f = scalar_network(self.network, self.jinns_params(variables, z))
        flat = points.reshape(-1, points.shape[-1])
        return jax.vmap(f)(flat).reshape(points.shape[:-1])

    def predict(self, variables: Variables, z, t, *xs):
        """u (user units) at user-unit times and positions (broadcast together)."""
        pts = jnp.asarray(self.scales.to_unit(t, *xs))
        return self.scales.u * self.u_hat(variables, pts, z)

    # ---- loss terms ------------------------------------------------------------------------
    def mu(self, variables: Variables, data: PINNData, z):
        """Model density at each observation (areal mean over its quadrature points)."""
        u = self.u_hat(variables, data.obs_points, z)
        return self.scales.u * jnp.sum(u * data.obs_quad, -1)

    def loglik_terms(self, variables: Variables, data: PINNData, z=None):
        """Per-observation log-likelihood (n,)."""
        z = self.theta(variables, data) if z is None else z
        p = self.space.unpack(z)
        nuis = {n: p[n] for n in self.likelihood.nuisance_names()}
        return self.likelihood.logpdf(data.y, self.mu(variables, data, z), nuis, data.extras)

    def residuals(self, variables: Variables, data: PINNData, points=None, z=None):
        """Scaled PDE residual at the collocation points (or ``points``), shape (nc,)."""
        z = self.theta(variables, data) if z is None else z
        params = self.jinns_params(variables, z)
        points = data.colloc if points is None else points
        return self.pde.residuals(points, self.network, params)

    def initial_target(self, data: PINNData, z):
        if self.ic_kind == "gaussian":
            xs = self.scales.space_to_user(data.ic_points)
            p = self.space.unpack(z)
            return self.model.initial.evaluate(p, tuple(reversed(xs))) / self.scales.u
        return data.u0_hat

    def ic_term(self, variables, data, z):
        if self.ic_kind in ("free", "hard"):
            return jnp.zeros(())
        pts = jnp.concatenate([jnp.zeros_like(data.ic_points[:, :1]), data.ic_points], -1)
        diff = self.u_hat(variables, pts, z) - self.initial_target(data, z)
        return jnp.mean(diff**2)

    def bc_term(self, variables, data, z):
        if self.bc_kind == "hard":
            return jnp.zeros(())
        if self.bc_kind == "dirichlet":
            g = self.model.boundary_value / self.scales.u
            return jnp.mean((self.u_hat(variables, data.bc_points, z) - g) ** 2)
        params = self.jinns_params(variables, z)
        d = self.scales.ndim
        grads = jax.vmap(lambda p: jnp.stack([normal_derivative(self.network, params, p, a)
                                              for a in range(d)]))(data.bc_points)
        dn = jnp.take_along_axis(grads, data.bc_axis[:, None], axis=1)[:, 0]
        return jnp.mean(dn**2)

    def penalty(self, z):
        lo, hi = self.space.bounds_unconstrained()
        out = jnp.maximum(z - hi, 0.0) + jnp.maximum(lo - z, 0.0)
        return self.penalty_weight * jnp.sum(out**2)

    def loss_terms(self, variables: Variables, data: PINNData):
        """(total, (data, pde, ic, bc)) -- the objective and its parts (unweighted)."""
        z = self.theta(variables, data)
        ll = self.loglik_terms(variables, data, z)
        w = data.weights
        data_term = -jnp.sum(jnp.where(w > 0, w * ll, 0.0)) / jnp.sum(w)
        pde = jnp.mean(self.residuals(variables, data, z=z) ** 2)
        ic = self.ic_term(variables, data, z)
        bc = self.bc_term(variables, data, z)
        lam = data.lambdas
        total = data_term + lam[0] * pde + lam[1] * ic + lam[2] * bc + self.penalty(z)
        return total, jnp.stack([data_term, pde, ic, bc])

    def loss(self, variables: Variables, data: PINNData):
        return self.loss_terms(variables, data)[0]


# Compiled evaluations (cached per problem structure, like the training steps): run eagerly,
# each evaluation of the Taylor-mode residual dispatches and compiles hundreds of primitives
# one by one (about 18 s the first time for a 1-D heat-ansatz problem).
@eqx.filter_jit
def loss_value(problem: PINNProblem, variables: Variables, data: PINNData):
    """``problem.loss(variables, data)``, compiled."""
    return problem.loss(variables, data)


@eqx.filter_jit
def loss_values(problem: PINNProblem, variables: Variables, data: PINNData):
    """The loss of a batch of replicates (leading axis of ``variables`` and ``data``)."""
    return jax.vmap(problem.loss)(variables, data)


@eqx.filter_jit
def loss_hessian_theta(problem: PINNProblem, variables: Variables, data: PINNData, z):
    """Hessian of the loss in the unconstrained parameters at ``z``, network weights held."""
    return jax.hessian(lambda q: problem.loss(Variables(nn=variables.nn, theta=q), data))(z)


@eqx.filter_jit
def residuals_at(problem: PINNProblem, variables: Variables, data: PINNData, points=None):
    """``problem.residuals`` at the collocation points (or ``points``), compiled."""
    return problem.residuals(variables, data, points=points)


@eqx.filter_jit
def u_hat_at(problem: PINNProblem, variables: Variables, points, z):
    """``problem.u_hat``, compiled."""
    return problem.u_hat(variables, points, z)


@eqx.filter_jit
def loglik_at(problem: PINNProblem, variables: Variables, data: PINNData):
    """``problem.loglik_terms``, compiled."""
    return problem.loglik_terms(variables, data)


@eqx.filter_jit
def mu_at(problem: PINNProblem, variables: Variables, data: PINNData, z):
    """``problem.mu``, compiled."""
    return problem.mu(variables, data, z)


# ------------------------------------------------------------------------------------------------
# Assembly
# ------------------------------------------------------------------------------------------------
def _time_origin(model: ReactionDiffusion, obs: Observations) -> float:
    ic = model.initial
    if isinstance(ic, GaussianIntroductions):
        if ic.fit_t0:
            raise NotImplementedError(
                "GaussianIntroductions(fit_t0=True) is not supported by the PINN: the network's "
                "time domain starts at the introduction. Fix the date (fit_t0=False, t0=...).")
        return float(ic.t0)
    if isinstance(ic, InitialField):
        return float(ic.t0)
    return float(obs.unique_times[0])


def _first_slice(obs: Observations, xs_user):
    """The observations at the earliest time, interpolated at spatial points ``xs_user``."""
    t0 = float(obs.unique_times[0])
    first = obs.time == t0
    if obs.ndim == 1:
        order = np.argsort(obs.x[first])
        if first.sum() < 2:
            raise ValueError("initial='first' needs at least 2 observations at the first time.")
        return np.interp(xs_user[0], obs.x[first][order], obs.value[first][order])
    from scipy.interpolate import griddata

    pts = np.stack([obs.x[first], obs.y[first]], -1)
    if len(pts) < 4:
        raise ValueError("initial='first' needs at least 4 observations at the first time.")
    q = np.stack(xs_user, -1)
    lin = griddata(pts, obs.value[first], q, method="linear")
    near = griddata(pts, obs.value[first], q, method="nearest")
    return np.where(np.isfinite(lin), lin, near)


def _quadrature_offsets(ndim, n_quad, radius=None, cell_size=None):
    """Offsets (m, ndim) in input order (x[, y]) and weights averaging over a disk or cell."""
    g = (np.arange(n_quad) + 0.5) / n_quad - 0.5
    if ndim == 1:
        half = radius if radius is not None else 0.5 * cell_size
        return (2.0 * half * g)[:, None], np.full(n_quad, 1.0 / n_quad)
    dx, dy = np.meshgrid(g, g, indexing="xy")
    off = np.stack([dx.ravel(), dy.ravel()], -1)
    if radius is not None:
        off = off * 2.0 * radius
        off = off[np.hypot(off[:, 0], off[:, 1]) <= radius + 1e-12]
    else:
        off = off * cell_size
    return off, np.full(len(off), 1.0 / len(off))


def _observation_points(obs: Observations, keep, scales: Scales, domain, n_quad: int):
    xs = [obs.x[keep]] + ([obs.y[keep]] if obs.ndim == 2 else [])
    t = obs.time[keep]
    n = len(t)
    areal = {k: obs.extras[k][keep] for k in ("radius", "cell_size") if k in obs.extras}
    if not areal:
        pts = scales.to_unit(t, *xs)[:, None, :]
        return pts, np.ones((n, 1))
    key, size = next(iter(areal.items()))
    rows, wts = [], []
    for k in range(n):
        off, w = _quadrature_offsets(obs.ndim, n_quad, **{key: float(size[k])})
        q = [np.clip(xs[a][k] + off[:, a], *domain[a]) for a in range(obs.ndim)]
        rows.append(scales.to_unit(np.full(len(w), t[k]), *q))
        wts.append(w)
    m = max(len(w) for w in wts)
    pts = np.zeros((n, m, 1 + obs.ndim))
    qw = np.zeros((n, m))
    for k, (p, w) in enumerate(zip(rows, wts, strict=True)):
        pts[k, : len(w)], qw[k, : len(w)] = p, w
        pts[k, len(w):] = p[0]
    return pts, qw


def _sample_points(key, ndim, n_collocation, n_initial, n_boundary, time_power, time_margin):
    """Fixed collocation, initial and boundary points in the unit box (jinns Sobol generator)."""
    gen = jinns.data.CubicMeshPDENonStatio(
        key=key, n=n_collocation, nb=n_boundary, ni=n_initial, dim=ndim,
        min_pts=(0.0,) * ndim, max_pts=(1.0,) * ndim, tmin=0.0, tmax=1.0, method="sobol")
    colloc = np.array(gen.domain, float)
    # more points early, where the solution is sharpest (t' = s ** time_power), and beyond the
    # last observation (t' up to 1 + time_margin)
    colloc[:, 0] = (1.0 + time_margin) * colloc[:, 0] ** time_power
    initial = np.asarray(gen.initial, float).reshape(-1, ndim)
    border = np.asarray(gen.border, float)              # (nb / 2d, 1 + d, 2d facets)
    nfaces = border.shape[-1]
    bc_points = np.concatenate([border[..., j] for j in range(nfaces)], 0)
    # facets are ordered (x = 0, x = 1[, y = 0, y = 1]) in jinns: the normal axis is j // 2
    bc_axis = np.concatenate([np.full(border.shape[0], j // 2) for j in range(nfaces)])
    return colloc, initial, bc_points, bc_axis


def _covariate_grids(model: ReactionDiffusion, covariates, scales: Scales):
    names = model.covariates
    if not names:
        return (), None
    if covariates is None:
        raise ValueError(f"The model uses covariates {list(names)}: pass covariates=... "
                         "(an xarray.Dataset validated by physreg.data.validate_covariates).")
    missing = [c for c in names if c not in covariates.data_vars]
    if missing:
        raise ValueError(f"Covariates {missing} are missing from the covariates dataset "
                         f"(it has {list(covariates.data_vars)}).")
    for c in names:
        if "time" in covariates[c].dims:
            raise NotImplementedError(
                f"covariate {c!r} varies in time; the PINN route supports static covariates only.")
    axes_names = ("x",) if model.ndim == 1 else ("x", "y")
    axes = tuple(jnp.asarray((np.asarray(covariates[a].values, float) - scales.lower[i])
                             / scales.length[i]) for i, a in enumerate(axes_names))
    storage = ("x",) if model.ndim == 1 else ("y", "x")
    values = np.stack([np.asarray(covariates[c].transpose(*storage).values, float)
                       for c in names])
    return axes, jnp.asarray(values)


def default_u_scale(y, likelihood: ObservationModel) -> float:
    """Density scale from the data (:func:`physreg.estimators.density_scale`), rounded to a
    power of two (:func:`round_scale`)."""
    return round_scale(density_scale(y, likelihood))


def round_scale(u: float) -> float:
    """``u`` rounded to the nearest power of two (in log).

    The density scale only conditions the problem, so a factor within sqrt(2) changes nothing
    that matters; but it is a static part of the compiled training programs (with the bounds
    derived from it). Rounded, datasets of one design (replicates, resamples, cross-validation
    folds) share a scale and reuse the programs compiled for the first fit instead of
    compiling them again (about 40 s for a 1-D fit on 2 cores). Powers of two also scale
    exactly in floating point.
    """
    u = float(u)
    if not np.isfinite(u) or u <= 0:
        raise ValueError(f"the density scale must be positive and finite, got {u}.")
    return float(2.0 ** np.round(np.log2(u)))


def time_origin(model: ReactionDiffusion, obs: Observations) -> float:
    """Start of the model time: the introduction date, the known field's time, or the first
    observation time."""
    return _time_origin(model, obs)


def build_problem(model: ReactionDiffusion, obs: Observations, likelihood: ObservationModel,
                  space: ParameterSpace, covariates=None, *, key, initial: str = "model",
                  u_scale: float | None = None, n_collocation: int = 2048, n_initial: int = 256,
                  n_boundary: int = 128, time_power: float = 1.0, time_margin: float = 0.1,
                  n_quad: int = 4,
                  width: int = 32, depth: int = 3, features: str | None = None, modes: int = 8,
                  dtype=jnp.float64, lambda_pde: float = 1.0, lambda_ic: float = 1.0,
                  lambda_bc: float = 1.0, penalty_weight: float = 1e4, hard_ic: bool | str = True,
                  relative_floor: float | None = None, heat_rates: str = "mean"):
    """Assemble a :class:`PINNProblem`, its :class:`PINNData` and initial network weights.

    Arguments
    ---------
    model, obs, likelihood, space : the model, validated observations, the observation model and
        the parameter space (free and fixed parameters, bounds) -- the solver route's inputs.
    covariates : :class:`xarray.Dataset` of the model's covariates (validated), or None.
    key : PRNG key for the collocation points and the network weights.
    initial : ``"model"`` uses ``model.initial`` (known field, first observed slice or fitted
        Gaussian introductions); ``"free"`` drops the IC term (u at t0 learned from data and physics).
    u_scale : density scale (default: the 95% quantile of ``|y|``, divided by a fixed ``kappa``).
    n_collocation, n_initial, n_boundary : number of fixed Sobol points (rounded up to powers of 2).
    time_power : collocation times are ``s ** time_power`` for Sobol ``s`` (> 1 packs points
        near t0, where an introduction is sharpest).
    time_margin : collocation points extend to ``t' = 1 + time_margin``, past the last
        observation: otherwise the last time slice sits on the edge of the collocated domain,
        where the network can bend away from the physics to fit its noise.
    n_quad : quadrature points per axis of an areal observation (``radius`` / ``cell_size``).
    width, depth, features, modes, dtype : the network (see :func:`physreg.pinn.make_network`);
        ``features`` defaults to ``"cosine"`` (exact no-flux) for Neumann boundaries and ``"box"``
        for Dirichlet.
    lambda_pde, lambda_ic, lambda_bc : penalty weights (stored in the data: changing them does
        not recompile).
    relative_floor : divide the residual by ``u_hat + relative_floor`` (None: absolute residual).
        Fisher-KPP fronts are *pulled*: their speed ``2 sqrt(D r)`` is set at the leading edge,
        where u is small and an absolute residual is negligible, so a network can move the front
        at the observed speed with the wrong D at almost no cost. The relative residual makes
        the leading edge count (down to ``relative_floor`` times the density scale).
    hard_ic : build Gaussian introductions into the network exactly (:class:`Ansatz`) instead of
        penalising the mismatch at t0. ``"heat"``: the ansatz also carries the introductions'
        linearised spread with the current ``D``, ``r``, ``gamma`` (heat kernel with mirror
        images, logistic saturation; ``Ansatz(kind="heat")``), the network only corrects it.
    heat_rates : with covariates and ``hard_ic="heat"``, the rates of the ansatz: ``"mean"`` (at
        the covariates' mean, the default) or ``"local"`` (at each point; see :class:`Ansatz`).

    Returns
    -------
    (problem, data, weights)
    """
    if initial not in ("model", "free"):
        raise ValueError(f"initial must be 'model' or 'free', got {initial!r}.")
    if hard_ic not in (False, True, "heat"):
        raise ValueError(f"hard_ic must be False, True or 'heat', got {hard_ic!r}.")
    if heat_rates not in ("mean", "local"):
        raise ValueError(f"heat_rates must be 'mean' or 'local', got {heat_rates!r}.")
    ic = model.initial
    if initial == "free":
        ic_kind = "free"
    elif isinstance(ic, GaussianIntroductions):
        ic_kind = "hard" if hard_ic else "gaussian"
    elif isinstance(ic, InitialField | FirstObservation):
        ic_kind = "field"
    else:
        raise TypeError(f"Unsupported initial condition {type(ic).__name__}.")
    if features is None:
        features = "cosine" if model.boundary == "neumann" else "box"
    bc_kind = "hard" if (model.boundary == "neumann" and features == "cosine") else model.boundary

    t0 = _time_origin(model, obs)
    keep = np.ones(obs.n_obs, bool)
    if isinstance(ic, FirstObservation) and ic_kind == "field":
        keep = obs.time > t0          # the first slice defines u0, as in the solver route
    if np.any(obs.time[keep] < t0 - 1e-12):
        raise ValueError(f"Observations at times before the start of the model (t0 = {t0}).")
    t_end = float(obs.time.max())
    if not t_end > t0:
        raise ValueError("The observations span no time after the initial condition.")
    y = obs.value[keep]
    if u_scale is None:
        u_scale = default_u_scale(y, likelihood)
    dom = model.domain
    bounds = [dom.x] + ([dom.y] if model.ndim == 2 else [])
    scales = Scales(t0=t0, T=t_end - t0, lower=tuple(b[0] for b in bounds),
                    length=tuple(b[1] - b[0] for b in bounds), u=float(u_scale))

    kp, kn = jax.random.split(key)
    colloc, ic_pts, bc_pts, bc_axis = _sample_points(kp, model.ndim, n_collocation, n_initial,
                                                     n_boundary, time_power, time_margin)
    xs_ic = [np.asarray(v) for v in scales.space_to_user(ic_pts)]
    if ic_kind == "field" and isinstance(ic, FirstObservation):
        u0 = np.maximum(_first_slice(obs, xs_ic), 0.0)
    elif ic_kind == "field":
        if model.ndim == 1:
            u0 = np.interp(xs_ic[0], np.asarray(ic.x, float), np.asarray(ic.values, float))
        else:
            from scipy.interpolate import RegularGridInterpolator

            yy, xx = np.asarray(ic.y, float), np.asarray(ic.x, float)
            q = np.stack([np.clip(xs_ic[1], yy[0], yy[-1]), np.clip(xs_ic[0], xx[0], xx[-1])], -1)
            u0 = RegularGridInterpolator((yy, xx), np.asarray(ic.values, float))(q)
    else:
        u0 = np.zeros(len(ic_pts))

    obs_pts, obs_quad = _observation_points(obs, keep, scales, bounds, n_quad)
    extras = {k: jnp.asarray(v[keep], float) for k, v in obs.extras.items() if k in _LIK_EXTRAS}
    cov_axes, cov_values = _covariate_grids(model, covariates, scales)
    pde = ReactionDiffusionPDE(model=model, T=scales.T, lengths=scales.length, u_scale=scales.u,
                               cov_axes=cov_axes, cov_values=cov_values,
                               relative_floor=relative_floor)
    raw, weights = make_network(kn, model.ndim, width=width, depth=depth, features=features,
                                modes=modes, dtype=dtype)
    kind = "soft" if ic_kind != "hard" else ("heat" if hard_ic == "heat" else "hard")
    heat = kind == "heat"
    network = Ansatz(raw, kind=kind, scales=scales,
                     initial=model.initial if ic_kind == "hard" else None,
                     model=model if heat else None,
                     cov_axes=cov_axes if heat else (), cov_values=cov_values if heat else None,
                     cov_mean=(None if cov_values is None or not heat else
                               jnp.mean(cov_values.reshape(cov_values.shape[0], -1), axis=1)),
                     heat_rates=heat_rates)
    problem = PINNProblem(network=network, pde=pde, likelihood=likelihood, space=space,
                          scales=scales, ic_kind=ic_kind, bc_kind=bc_kind,
                          penalty_weight=penalty_weight)
    p = space.size
    data = PINNData(
        y=jnp.asarray(y, float), weights=jnp.ones(len(y)), obs_points=jnp.asarray(obs_pts),
        obs_quad=jnp.asarray(obs_quad), extras=extras, colloc=jnp.asarray(colloc),
        ic_points=jnp.asarray(ic_pts), u0_hat=jnp.asarray(u0 / scales.u, float),
        bc_points=jnp.asarray(bc_pts), bc_axis=jnp.asarray(bc_axis, jnp.int32),
        lambdas=jnp.asarray([lambda_pde, lambda_ic, lambda_bc], float),
        theta_mask=jnp.zeros(p, bool), theta_fixed=jnp.zeros(p))
    return problem, data, weights


def with_observations(data: PINNData, y=None, weights=None) -> PINNData:
    """A copy of ``data`` with other observed values and/or observation weights."""
    if y is not None:
        data = eqx.tree_at(lambda d: d.y, data, jnp.asarray(y, float))
    if weights is not None:
        data = eqx.tree_at(lambda d: d.weights, data, jnp.asarray(weights, float))
    return data


def with_fixed(data: PINNData, space: ParameterSpace, values: Mapping) -> PINNData:
    """A copy of ``data`` holding the free parameters in ``values`` (user units) fixed."""
    mask = np.array([n in values for n in space.free])
    unknown = set(values) - set(space.free)
    if unknown:
        raise ValueError(f"{sorted(unknown)} are not free parameters; free: {list(space.free)}.")
    full = np.array([values.get(n, 1.0) for n in space.free], float)
    z = np.asarray(space.to_unconstrained(full))
    return eqx.tree_at(lambda d: (d.theta_mask, d.theta_fixed), data,
                       (jnp.asarray(mask), jnp.asarray(np.where(mask, z, 0.0))))
