"""scikit-learn-style estimators of reaction-diffusion models on xarray data.

:class:`ReactionDiffusionEstimator` holds what every route shares: the constructor arguments that
describe the model and the observation model, input validation (the data contract of
:mod:`physreg.data`), the parameter space, ``params_`` in user units, ``predict``/``score`` plumbing
and ``confidence_intervals`` dispatch. :class:`SolverEstimator` is the classical reference: maximum
likelihood through the finite-volume solver, with Wald, profile-likelihood and bootstrap intervals.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._problem import build_problem, interpolate_first_slice
from .data import Observations, validate_covariates, validate_observations
from .inference._intervals import (
    bootstrap_intervals,
    profile,
    resample_weights,
    wald,
)
from .inference._optimize import batch_map, best_of, minimize_batch, whitening
from .likelihoods import EXTRAS_KEYS, get_observation_model
from .model import (
    Domain,
    FirstObservation,
    GaussianIntroductions,
    InitialCondition,
    InitialField,
    Link,
    ParameterSpace,
    ReactionDiffusion,
)
from .solvers import FiniteVolumeSolver, observation_operator

__all__ = ["ReactionDiffusionEstimator", "SolverEstimator"]

_CI_METHODS = ("wald", "profile", "bootstrap")


def _progress(iterable, verbose, **kw):
    """tqdm progress when ``verbose`` and a terminal is attached; silent otherwise."""
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def initial_guess(model, obs: Observations, likelihood, space, *, time_scale: float,
                  u_scale: float, init: Mapping | None = None) -> dict:
    """A rough starting point (user units) for every free parameter, inside the bounds.

    Rates from the domain length ``L``, the time span ``T`` and the density scale ``U``
    (D = (L/10)^2 / T, r = 2 / T, ...), covariate coefficients 0, each introduction at the
    weighted centre of the first observed slice; nuisances from the likelihood; ``init``
    (user values) overrides. Shared by the solver, MCMC and PINN estimators.
    """
    L = max(model.domain.lengths)
    T, U = time_scale, u_scale
    guess = {"D": (L / 10) ** 2 / T, "r": 2.0 / T, "gamma": 2.0 / (T * U), "K": U}
    for base, link in (("D", model.D), ("r", model.r)):
        for c in link.covariates:
            guess[f"{base}_{c}"] = 0.0
    ic = model.initial
    if isinstance(ic, GaussianIntroductions):
        first = obs.time == obs.unique_times[0]
        w = np.maximum(obs.value[first], 0) + 1e-12
        for j in range(ic.n):
            p = ic.prefix(j)
            guess[f"{p}_x"] = float(np.average(obs.x[first], weights=w))
            if obs.ndim == 2:
                guess[f"{p}_y"] = float(np.average(obs.y[first], weights=w))
            guess[f"{p}_width"] = L / 20
            guess[f"{p}_mass"] = U * (L / 10) ** obs.ndim
        if ic.fit_t0:
            guess["ic_t0"] = float(ic.t0)
    extras = {k: v for k, v in obs.extras.items() if k in EXTRAS_KEYS}
    guess.update(likelihood.initial_nuisance(obs.value, U, extras))
    guess.update({k: float(v) for k, v in dict(init or {}).items()})
    out = {}
    for n, lo, hi in zip(space.free, space.lower, space.upper, strict=True):
        out[n] = float(np.clip(guess[n], lo + 1e-9 * abs(lo), hi - 1e-9 * abs(hi)))
    return out



def density_scale(y, likelihood) -> float:
    """Typical density of observations ``y``: the 95% quantile of ``|y|`` (or its maximum, or
    1), divided by the observation model's fixed ``kappa`` if it has one; ``1 / kappa`` for
    presence data."""
    kappa = getattr(likelihood, "kappa", None)
    if likelihood.name in ("binomial", "bernoulli"):
        return 1.0 / (kappa or 1.0)
    y = np.abs(np.asarray(y, float))
    scale = float(np.quantile(y, 0.95)) or float(y.max()) or 1.0
    return scale / kappa if kappa else scale

class ReactionDiffusionEstimator(BaseEstimator):
    """Shared machinery of physreg's estimators (not used directly).

    Subclasses define ``__init__`` with explicit keyword arguments (scikit-learn's rule: they
    are stored as given, validated in ``fit``) and implement ``_fit``,
    ``_predict_points`` and the ``_ci_<method>`` they support.
    """

    # set on a refit's clone whose observations are expected values, not draws
    # (PINNEstimator.correct_bias(data="expected")): ``fit`` then skips the observation
    # model's checks of the values (integer counts...)
    _expected_values = False

    # ---------------------------------------------------------------- set-up ----------------
    def _domain(self, obs: Observations) -> Domain:
        dom = self.domain
        if dom is None:
            dom = {}
            for ax in ("x", "y")[: obs.ndim]:
                if f"domain_{ax}" in obs.attrs:
                    dom[ax] = tuple(np.asarray(obs.attrs[f"domain_{ax}"], float))
                else:
                    c = obs.grid[ax] if obs.grid is not None else getattr(obs, ax)
                    c = np.unique(c)
                    half = 0.5 * (c[1] - c[0]) if len(c) > 1 and obs.grid is not None else 0.0
                    dom[ax] = (float(c.min() - half), float(c.max() + half))
        if isinstance(dom, Domain):
            return dom
        if not isinstance(dom, Mapping) or "x" not in dom:
            raise TypeError(f"domain must be a dict like {{'x': (0, 10)}}, got {dom!r}.")
        return Domain(x=tuple(dom["x"]), y=tuple(dom["y"]) if dom.get("y") is not None else None)

    def _initial_condition(self) -> InitialCondition:
        ic = self.initial
        if isinstance(ic, InitialCondition):
            return ic
        if isinstance(ic, str):
            if ic == "first":
                return FirstObservation()
            if ic == "gaussian":
                return GaussianIntroductions(n=int(self.n_introductions), t0=float(self.t0 or 0.0),
                                             fit_t0=bool(self.fit_t0))
            raise ValueError(f"initial must be 'first', 'gaussian', a DataArray or an "
                             f"InitialCondition, got {ic!r}.")
        if isinstance(ic, xr.DataArray):
            if "x" not in ic.dims:
                raise ValueError("initial DataArray needs an 'x' dim (and 'y' in 2-D).")
            return InitialField(values=ic.transpose(*[d for d in ("y", "x") if d in ic.dims]).values,
                                x=ic["x"].values, y=ic["y"].values if "y" in ic.dims else None,
                                t0=float(self.t0 if self.t0 is not None else ic.attrs.get("t0", 0)))
        raise TypeError(f"initial must be 'first', 'gaussian', a DataArray or an InitialCondition, "
                        f"got {type(ic).__name__}.")

    def _setup(self, obs, covariates):
        """Validate inputs and build the model, observation model and parameter space."""
        if not isinstance(obs, xr.Dataset | xr.DataArray):
            raise TypeError(f"obs must be an xarray Dataset or DataArray, got {type(obs).__name__}.")
        pre = validate_observations(obs, self.target, extras=self.extras)
        domain = self._domain(pre)
        self.obs_ = validate_observations(obs, self.target, extras=self.extras,
                                          domain=domain.as_dict())
        lik = get_observation_model(self.likelihood)
        extras = {k: v for k, v in self.obs_.extras.items() if k in EXTRAS_KEYS}
        lik.validate(self.obs_.value, extras, draws=not self._expected_values)
        self.likelihood_ = lik
        model = ReactionDiffusion(
            domain=domain, D=Link("log", tuple(self.diffusion_covariates)),
            r=Link("identity", tuple(self.growth_covariates)), competition=self.competition,
            boundary=self.boundary, boundary_value=float(self.boundary_value),
            initial=self._initial_condition())
        self.model_ = model
        if model.covariates:
            if covariates is None:
                raise ValueError(f"The model uses covariates {list(model.covariates)}; pass "
                                 "fit(obs, covariates=...).")
            missing = [c for c in model.covariates if c not in covariates.data_vars]
            if missing:
                raise ValueError(f"Covariates {missing} are not in the covariates dataset "
                                 f"(it has {list(covariates.data_vars)}).")
            self.covariates_ = validate_covariates(covariates[list(model.covariates)],
                                                   ndim=model.ndim, domain=domain.as_dict())
        else:
            self.covariates_ = None
        names = model.param_names() + lik.nuisance_names()
        transforms = {**model.transforms(), **lik.nuisance_transforms()}
        scales = self._scales()
        bounds = {**model.default_bounds(scales), **lik.nuisance_bounds()}
        for n, b in dict(self.bounds or {}).items():
            if n not in names:
                raise ValueError(f"bounds given for {n!r}, which is not a parameter; valid names: "
                                 f"{list(names)}.")
            bounds[n] = tuple(float(v) for v in b)
        self.space_ = ParameterSpace.build(names, transforms, bounds, self.fixed)
        self.param_units_ = self._param_units(names)

    def _scales(self) -> dict:
        obs = self.obs_
        t = obs.unique_times
        gaussian = isinstance(self.initial, str) and self.initial == "gaussian"
        T = float(t[-1] - (self.t0 if self.t0 is not None and gaussian else t[0])) or 1.0
        u = self._u_scale()
        cov = {}
        if self.covariates_ is not None:
            cov = {k: float(np.nanstd(v.values)) for k, v in self.covariates_.data_vars.items()}
        return {"time": T, "u": u, "cov": cov}

    def _u_scale(self) -> float:
        """Typical density of the observations (:func:`density_scale`)."""
        return density_scale(self.obs_.value, self.likelihood_)

    def _param_units(self, names) -> dict:
        u = self.obs_.units
        t, x, v = u.get("time"), u.get("x"), u.get(self.obs_.target)
        out = {}
        for n in names:
            if n == "D":
                out[n] = f"{x}^2/{t}" if x and t else ""
            elif n == "r":
                out[n] = f"1/{t}" if t else ""
            elif n == "gamma":
                out[n] = f"1/({t} {v})" if t and v else ""
            elif n == "K" or n == "sigma":
                out[n] = v or ""
            elif n.startswith("r_"):
                out[n] = f"1/{t}" if t else ""
            elif n.endswith("_x") or n.endswith("_y") or n.endswith("_width"):
                out[n] = x or ""
            elif n == "ic_t0":
                out[n] = t or ""
            elif n.endswith("_mass"):
                out[n] = f"{v} {x}^{self.obs_.ndim}" if v and x else ""
            else:
                out[n] = ""
        return out

    def _initial_guess(self) -> dict:
        """A rough starting point in user units (multi-start spreads around it)."""
        sc = self._scales()
        return initial_guess(self.model_, self.obs_, self.likelihood_, self.space_,
                             time_scale=sc["time"], u_scale=sc["u"], init=self.initial_params)

    def _starts(self, n_starts: int) -> jnp.ndarray:
        """``n_starts`` unconstrained starting points: the guess, then random spreads around it."""
        space = self.space_
        z0 = np.asarray(space.pack(self._initial_guess()))
        rng = np.random.default_rng(self.random_state)
        lo, hi = space.bounds_unconstrained()
        spread = np.where(space.is_log, 1.0, (hi - lo) / 20.0)
        zs = [z0]
        for _ in range(n_starts - 1):
            zs.append(np.clip(z0 + spread * rng.normal(size=z0.shape), lo, hi))
        return jnp.asarray(np.stack(zs))

    # ---------------------------------------------------------------- results ---------------
    def _set_params(self, z):
        self.z_ = np.asarray(z)
        self.params_ = self._params_at(z)

    def _params_at(self, z, method=None) -> xr.DataArray:
        """Every parameter (free ones from the unconstrained ``z``, fixed ones) in user units,
        as ``params_`` is laid out; ``attrs["method"]``: ``method`` or the class name."""
        values = self.space_.unpack(jnp.asarray(z))
        names = self.model_.param_names() + self.likelihood_.nuisance_names()
        return xr.DataArray(
            np.array([float(values[n]) for n in names]), dims="param",
            coords={"param": list(names),
                    "units": ("param", [self.param_units_.get(n, "") for n in names]),
                    "fixed": ("param", [n not in self.space_.free for n in names])},
            name="estimate", attrs={"method": method or type(self).__name__})

    def _interval_array(self, lower_z, upper_z, level, method) -> xr.DataArray:
        """Intervals in user units. An end that is infinite on the unconstrained scale (a
        profile that never reached the threshold on that side) is *open*: it is reported as the
        parameter's natural limit (0 for a positive parameter, -inf / inf otherwise), which is
        what the interval really is, and flagged in the boolean coordinate ``open`` (dims
        ("param", "bound")) and the attribute ``open_ends`` (e.g. ``"D:lower"``), so that a
        printed 0 is never mistaken for a measured end."""
        space = self.space_
        lower_z, upper_z = np.asarray(lower_z, float), np.asarray(upper_z, float)
        lo = np.asarray(space.to_user(jnp.asarray(lower_z)))
        hi = np.asarray(space.to_user(jnp.asarray(upper_z)))
        is_open = np.stack([np.isinf(lower_z), np.isinf(upper_z)], axis=-1)
        ends = [f"{n}:{side}" for n, row in zip(space.free, is_open, strict=True)
                for side, o in zip(("lower", "upper"), row, strict=True) if o]
        return xr.DataArray(
            np.stack([lo, hi], axis=-1), dims=("param", "bound"),
            coords={"param": list(space.free), "bound": ["lower", "upper"],
                    "units": ("param", [self.param_units_.get(n, "") for n in space.free]),
                    "open": (("param", "bound"), is_open)},
            name="interval", attrs={"level": float(level), "method": method,
                                    "open_ends": ",".join(ends)})

    def confidence_intervals(self, level: float = 0.95, method: str = "profile", **kwargs):
        """Intervals for every free parameter, in user units.

        Parameters
        ----------
        level : float in (0, 1)
        method : {"profile", "bootstrap", "wald"}
        **kwargs : passed to the method (e.g. ``n_boot``, ``kind``, ``scheme`` for bootstrap).

        Returns
        -------
        xarray.DataArray with dims ("param", "bound"), bound = ["lower", "upper"].
        """
        check_is_fitted(self, "params_")
        if method not in _CI_METHODS:
            raise ValueError(f"method must be one of {_CI_METHODS}, got {method!r}.")
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}.")
        fn = getattr(self, f"_ci_{method}", None)
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} has no {method!r} intervals.")
        return fn(float(level), **kwargs)

    # ---------------------------------------------------------------- predict / score -------
    def _points_of(self, X):
        """(time, x, y, shape, dims, coords) of the points where ``predict`` is asked for."""
        if isinstance(X, xr.Dataset | xr.DataArray):
            if "obs" in X.dims:
                t = np.asarray(X["time"].values, float)
                x = np.asarray(X["x"].values, float)
                y = np.asarray(X["y"].values, float) if "y" in X.coords else None
                return t, x, y, (len(t),), ("obs",), {k: X[k] for k in X.coords
                                                        if X[k].dims == ("obs",)}
            dims = ("time", "y", "x") if "y" in X.dims else ("time", "x")
            for d in dims:
                if d not in X.coords:
                    raise ValueError(f"predict needs coordinate {d!r} (got {list(X.coords)}).")
            grids = np.meshgrid(*[np.asarray(X[d].values, float) for d in dims], indexing="ij")
            shape = grids[0].shape
            t = grids[0].ravel()
            x = grids[-1].ravel()
            y = grids[1].ravel() if len(dims) == 3 else None
            return t, x, y, shape, dims, {d: X[d] for d in dims}
        if isinstance(X, Mapping):
            return self._points_of(xr.Dataset(coords=dict(X)))
        raise TypeError("predict expects an xarray Dataset/DataArray or a dict of coordinates "
                        f"('time', 'x'[, 'y']), got {type(X).__name__}.")

    def predict(self, X) -> xr.DataArray:
        """Model density u at the coordinates of ``X`` (gridded or scattered), user units."""
        check_is_fitted(self, "params_")
        t, x, y, shape, dims, coords = self._points_of(X)
        u = np.asarray(self._predict_points(t, x, y)).reshape(shape)
        units = self.obs_.units.get(self.obs_.target)
        return xr.DataArray(u, dims=dims, coords=coords, name="u",
                            attrs={"units": units} if units else {})

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per observation of the observations ``X`` under the fit."""
        check_is_fitted(self, "params_")
        obs = validate_observations(X, self.target, extras=self.extras,
                                    domain=self.model_.domain.as_dict())
        return float(np.mean(np.asarray(self._loglik_points(obs))))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.non_deterministic = False
        return tags


@eqx.filter_jit
def _screen_nll(nll, zs):
    return batch_map(lambda z: nll(z, None), zs)


class SolverEstimator(ReactionDiffusionEstimator):
    """Maximum likelihood through the finite-volume solver (the classical reference).

    Parameters
    ----------
    target : str
        Observed variable of the dataset.
    likelihood : str or ObservationModel
        "gaussian", "lognormal", "poisson", "negbin", "binomial", "bernoulli", or an instance
        (fixed nuisances are set on the instance, e.g. ``Poisson(kappa=2.0)``).
    diffusion_covariates, growth_covariates : sequence of str
        Covariates in log D(x) and r(x).
    competition : {"gamma", "K", None}
    boundary : {"neumann", "dirichlet"}; boundary_value : float
    initial : "first" | "gaussian" | xarray.DataArray | InitialCondition
        The first observed slice (excluded from the likelihood), fitted Gaussian introductions,
        or a known field.
    n_introductions, t0, fit_t0 : for ``initial="gaussian"``.
    fixed : dict name -> value (user units); these parameters are not estimated.
    bounds : dict name -> (lower, upper) overriding the defaults.
    initial_params : dict name -> starting value.
    domain : dict {"x": (lo, hi)[, "y": ...]}; default: ``attrs["domain_x"]`` or the coordinates.
    extras : dict of per-observation auxiliary variables (see :func:`physreg.data.validate_observations`).
    grid : int or (ny, nx); max_step : float
        Solver resolution (defaults: 256 cells in 1-D, 64 x 64 in 2-D; 200 steps over the span).
    solver_method : {"auto", "rkc", "tridiagonal", "spectral"}
        Diffusion stepper of :class:`~physreg.solvers.FiniteVolumeSolver`. The explicit ``rkc``
        needs a bound of D(x): it is taken from the parameter box (``bounds``, rounded up), so
        ``"auto"`` uses it when the box of D is tight enough for a modest number of stages
        (2-D: ~15x faster solves) and the implicit ``tridiagonal`` otherwise (the wide default
        box of D usually means ``tridiagonal``). ``solver_.plan(...)`` tells what was chosen.
    n_starts : int
        Optimiser starts: the initial guess and the best ``n_starts - 1`` of the screened
        candidates.
    n_screen : int
        Random candidate starts around the initial guess whose likelihood is evaluated (one
        solve each, cheap next to an optimisation) before choosing the starts; 0: the starts
        are random draws without screening. Screening is what finds the basin of the maximum
        when the introduction's site and the rates are far from the guess (2-D replicates:
        two unscreened starts ended in a local optimum 312 log-likelihood units worse).
    max_iter, tol : BFGS settings.
    n_boot : int
        Default number of bootstrap replicates.
    random_state : int
    verbose : bool
    """

    def __init__(self, target="density", likelihood="gaussian", diffusion_covariates=(),
                 growth_covariates=(), competition="gamma", boundary="neumann",
                 boundary_value=0.0, initial="first", n_introductions=1, t0=None, fit_t0=False,
                 fixed=None, bounds=None, initial_params=None, domain=None, extras=None,
                 grid=None, max_step=None, solver_method="auto", n_starts=4, n_screen=64,
                 max_iter=500, tol=1e-9, n_boot=200, random_state=0, verbose=False):
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
        self.domain = domain
        self.extras = extras
        self.grid = grid
        self.max_step = max_step
        self.solver_method = solver_method
        self.n_starts = n_starts
        self.n_screen = n_screen
        self.max_iter = max_iter
        self.tol = tol
        self.n_boot = n_boot
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- fit -------------------
    def fit(self, obs, covariates=None):
        """Maximum-likelihood fit. Returns self."""
        t_start = _time.perf_counter()
        for name in ("n_starts", "max_iter", "n_boot"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        if not isinstance(self.n_screen, int | np.integer) or self.n_screen < 0:
            raise ValueError(f"n_screen must be a non-negative integer, got {self.n_screen!r}.")
        self._setup(obs, covariates)
        self.solver_, self.problem_ = self._make_solver()
        starts = self._screened_starts(int(self.n_starts), int(self.n_screen))
        res = minimize_batch(self.problem_.nll, starts, None, max_steps=int(self.max_iter),
                             rtol=self.tol, atol=self.tol)
        i, best = best_of(res)
        if not np.isfinite(float(best.fun)):
            raise RuntimeError("Every optimiser start gave a non-finite likelihood; check the "
                               "data, bounds and initial_params.")
        self._set_params(best.x)
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(best.n_iter)
        self.nll_ = float(best.fun)
        self.starts_nll_ = np.asarray(res.fun)
        self.fit_time_ = _time.perf_counter() - t_start
        if not self.converged_:
            warnings.warn(f"The optimiser did not report convergence after {self.n_iter_} "
                          "iterations; raise max_iter or check the fit.", UserWarning,
                          stacklevel=2)
        lo, hi = self.space_.bounds_unconstrained()
        at_bound = [n for n, z, a, b in zip(self.space_.free, self.z_, lo, hi, strict=True)
                    if min(z - a, b - z) < 1e-3 * (b - a)]
        if at_bound:
            warnings.warn(f"Estimates at their bounds: {at_bound}; widen `bounds` or fix them.",
                          UserWarning, stacklevel=2)
        return self

    def _screened_starts(self, n_starts: int, n_screen: int) -> jnp.ndarray:
        """The initial guess plus the ``n_starts - 1`` best of ``n_screen`` random candidates
        by likelihood (plain random starts when ``n_screen < n_starts``)."""
        if n_screen < n_starts or n_starts == 1:
            return self._starts(n_starts)
        cands = self._starts(n_screen + 1)
        f = np.asarray(_screen_nll(self.problem_.nll, cands[1:]))
        self.screen_nll_ = f
        best = np.argsort(np.where(np.isfinite(f), f, np.inf))[: n_starts - 1] + 1
        return cands[np.concatenate([[0], best])]

    def _make_solver(self):
        """The solver and the problem; RKC with ``D_max`` from the parameter box when chosen."""
        method = self.solver_method
        if method not in ("auto", "rkc", "tridiagonal", "spectral"):
            raise ValueError("solver_method must be 'auto', 'rkc', 'tridiagonal' or 'spectral', "
                             f"got {method!r}.")
        implicit = "tridiagonal" if method == "auto" else method
        self.solver_ = FiniteVolumeSolver(self.model_, shape=self.grid, max_step=self.max_step,
                                          method="tridiagonal" if method == "rkc" else implicit)
        if method in ("auto", "rkc"):
            sp = self.space_
            box = dict(sp.fixed)
            box.update({n: (lo, hi) for n, lo, hi in zip(sp.free, sp.lower, sp.upper,
                                                          strict=True)})
            d_max = FiniteVolumeSolver.diffusion_bound(self.model_, box, self._grid_covariates())
            # rounded up to a power of 10^(1/16): the solver is static in D_max, so similar
            # boxes (bootstrap, replicates) share one compiled program. throw=False: a D
            # beyond D_max (the box is a smooth penalty, not a wall) gives a NaN likelihood,
            # which the line search rejects, instead of an error
            d_max = float(10.0 ** (np.ceil(16 * np.log10(d_max)) / 16))
            rkc = FiniteVolumeSolver(self.model_, shape=self.grid, max_step=self.max_step,
                                     method=method, D_max=d_max, throw=False)
            prob = self._build_problem(self.obs_, rkc)
            plan = rkc.plan(np.asarray(prob.t_save), float(np.min(prob.t0)))
            if plan["method"] == "rkc":
                # the times are traced inside the likelihood: the stage count then comes from
                # max_step, so pin it to the step the concrete plan found
                step = self.max_step if self.max_step is not None else plan["dt"] * (1 + 1e-9)
                rkc = FiniteVolumeSolver(self.model_, shape=self.grid, max_step=step,
                                         method="rkc", D_max=d_max, throw=False)
                return rkc, self._build_problem(self.obs_, rkc)
        return self.solver_, self._build_problem(self.obs_)

    def _grid_covariates(self) -> dict:
        if self.covariates_ is None:
            return {}
        from .data import interpolate_covariates

        mesh = self.solver_.mesh()
        if self.model_.ndim == 1:
            pts = {"x": np.broadcast_to(mesh[0], self.solver_.shape)}
        else:
            pts = {"x": np.broadcast_to(mesh[1], self.solver_.shape),
                   "y": np.broadcast_to(mesh[0], self.solver_.shape)}
        return interpolate_covariates(self.covariates_, **pts)

    def _build_problem(self, obs, solver=None):
        solver = self.solver_ if solver is None else solver
        u0 = t0 = keep = None
        if isinstance(self.model_.initial, FirstObservation):
            u0, t0, keep = interpolate_first_slice(obs, solver)
        ic = self.model_.initial
        t0_bounds = None
        if isinstance(ic, GaussianIntroductions) and ic.fit_t0:
            i = self.space_.free.index("ic_t0") if "ic_t0" in self.space_.free else None
            t0_bounds = (self.space_.lower[i], self.space_.upper[i]) if i is not None else None
        self._u0 = u0
        return build_problem(obs, solver, self.likelihood_, self.space_,
                             self._grid_covariates(), u0=u0, t0=t0, keep=keep,
                             ic_t0_bounds=t0_bounds)

    # ---------------------------------------------------------------- predict / score -------
    def _predict_points(self, t, x, y=None):
        prob = self.problem_
        t0 = float(prob.params(jnp.asarray(self.z_)).get("ic_t0", prob.t0))
        if np.any(t < t0 - 1e-12):
            raise ValueError(f"predict: times before the model start t0 = {t0} were asked for.")
        t_save, tidx = np.unique(t, return_inverse=True)
        us = self.solver_.solve(prob.params(jnp.asarray(self.z_)), t_save, u0=prob.u0, t0=t0,
                                cov=prob.cov)
        op = observation_operator(self.solver_, tidx, x, y)
        return op.apply(us)

    def _loglik_points(self, obs):
        prob = build_problem(obs, self.solver_, self.likelihood_, self.space_, self.problem_.cov,
                             u0=self.problem_.u0, t0=float(self.problem_.t0))
        return prob.loglik_terms(jnp.asarray(self.z_))

    # ---------------------------------------------------------------- intervals -------------
    def _ci_wald(self, level):
        res = wald(self.problem_.nll, jnp.asarray(self.z_), None, level)
        self.covariance_ = res.cov
        return self._interval_array(res.lower, res.upper, level, "wald")

    def _which(self, params):
        if params is None:
            return None
        bad = [n for n in params if n not in self.space_.free]
        if bad:
            raise ValueError(f"Cannot profile {bad}: free parameters are {list(self.space_.free)}.")
        return [self.space_.free.index(n) for n in params]

    def _ci_profile(self, level, n_points=6, max_sd=4.0, params=None):
        """Profile-likelihood intervals; ``params`` restricts the profiles to those names."""
        w = wald(self.problem_.nll, jnp.asarray(self.z_), None, level)
        res = profile(self.problem_.nll, jnp.asarray(self.z_), None, w.se, level,
                      n_points=n_points, max_sd=max_sd, max_steps=int(self.max_iter),
                      nll_hat=self.nll_, which=self._which(params), hessian=w.hessian)
        user = np.asarray(self.space_.to_user(jnp.asarray(res.grid.T))).T
        self.profiles_ = xr.Dataset(
            {"deviance": (("param", "point"), res.deviance),
             "value": (("param", "point"), user),
             "converged": (("param", "point"), res.converged)},
            coords={"param": list(self.space_.free)},
            attrs={"threshold": res.threshold, "level": level})
        unbounded = [n for n, a, b in zip(self.space_.free, res.lower, res.upper, strict=True)
                     if np.isinf(a) or np.isinf(b)]
        if unbounded:
            warnings.warn(f"The profile of {unbounded} does not reach the threshold within "
                          f"{max_sd} standard errors on one side: the interval is open there "
                          "(reported as the parameter's natural limit, 0 or +-inf, and flagged "
                          "in the 'open' coordinate). Increase max_sd if the data should bound "
                          "it.", UserWarning,
                          stacklevel=3)
        return self._interval_array(res.lower, res.upper, level, "profile")

    def _ci_bootstrap(self, level, n_boot=None, scheme="parametric", kind="percentile",
                      batch_size=None, chunk=25):
        """Bootstrap intervals: ``scheme`` = "parametric" (simulate from the fit),
        "nonparametric" (resample observations) or "block" (resample whole time slices)."""
        n_boot = int(n_boot or self.n_boot)
        prob = self.problem_
        z_hat = jnp.asarray(self.z_)
        key = jax.random.PRNGKey(np.random.default_rng(self.random_state).integers(2**31))
        n = prob.y.shape[0]
        if scheme == "parametric":
            p = prob.params(z_hat)
            nuis = {k: p[k] for k in self.likelihood_.nuisance_names()}
            mu = prob.mu(z_hat)
            keys = jax.random.split(key, n_boot)
            ys = jax.vmap(lambda k: self.likelihood_.sample(k, mu, nuis, prob.extras))(keys)
            ws = jnp.ones((n_boot, n))
        elif scheme in ("nonparametric", "block"):
            blocks = np.asarray(prob.operator.tidx) if scheme == "block" else None
            ws = resample_weights(key, n, n_boot, blocks)
            ys = jnp.broadcast_to(prob.y, (n_boot, n))
        else:
            raise ValueError(f"scheme must be 'parametric', 'nonparametric' or 'block', got "
                             f"{scheme!r}.")
        # refits start at the estimate, whitened by the Hessian there (few BFGS iterations)
        precond = jnp.asarray(whitening(wald(prob.nll, z_hat, None, level).hessian))
        zs, ok = [], []
        # refits in chunks of ``chunk`` (progress), ``batch_size`` of them vmapped together
        # (default: sequential on CPU, see physreg.inference.default_batch_size)
        chunks = range(0, n_boot, chunk)
        for s in _progress(chunks, self.verbose, desc="bootstrap", unit="chunk"):
            sl = slice(s, min(s + chunk, n_boot))
            b = ys[sl].shape[0]
            res = minimize_batch(prob.nll, jnp.broadcast_to(z_hat, (b, z_hat.shape[0])),
                                 (ys[sl], ws[sl]), max_steps=int(self.max_iter), rtol=self.tol,
                                 atol=self.tol, data_axis=0, precond=precond,
                                 batch_size=batch_size)
            zs.append(np.asarray(res.x))
            ok.append(np.asarray(res.converged))
        zb = np.concatenate(zs)
        okb = np.concatenate(ok)
        zb[~okb] = np.nan
        self.bootstrap_ = xr.DataArray(
            np.asarray(self.space_.to_user(jnp.asarray(zb))), dims=("replicate", "param"),
            coords={"param": list(self.space_.free)}, name="bootstrap_estimates",
            attrs={"scheme": scheme, "n_failed": int((~okb).sum())})
        lo, hi = bootstrap_intervals(zb, self.z_, level, kind)
        return self._interval_array(lo, hi, level, f"bootstrap-{scheme}-{kind}")
