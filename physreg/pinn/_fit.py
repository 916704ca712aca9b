"""One physics-regularised PINN fit, from the solver route's inputs to fitted parameters.

:func:`fit_pinn` takes what the solver MLE takes (model, validated observations, observation model,
fixed parameters, covariates) and returns a :class:`PINNFit`: parameters in user units, the trained
network, the loss history and divergence flags. Restarts are a ``vmap`` over network keys and
starting parameters (one compiled program trains them all); the best restart by final loss is
refined with L-BFGS.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Observations
from ..estimators import initial_guess
from ..likelihoods import ObservationModel, get_observation_model
from ..model import FirstObservation, ParameterSpace, ReactionDiffusion
from ._network import make_network
from ._problem import (
    PINNData,
    PINNProblem,
    Variables,
    build_problem,
    default_u_scale,
    loglik_at,
    loss_value,
    residuals_at,
    time_origin,
    u_hat_at,
)
from ._train import (
    Schedule,
    TrainInfo,
    compile_ahead,
    history_array,
    init_state,
    run_adam,
    run_lbfgs,
    stack_trees,
    uniform_collocation,
    unstack_tree,
)

__all__ = ["PINNFit", "fit_pinn", "parameter_space", "initial_guess"]



_HELDOUT = 8192   # fresh points of PINNFit.residual_check's held-out rms


@dataclass
class PINNFit:
    """Result of :func:`fit_pinn`.

    Attributes
    ----------
    params : dict name -> float, every model and nuisance parameter in user units.
    z : (p,) fitted free parameters, unconstrained (``space.free`` order).
    space, problem, data : the parameter space, the :class:`PINNProblem` and its :class:`PINNData`.
    variables : trained network weights and theta (:class:`Variables`).
    history : (steps, 5) loss history: total, data, pde, ic, bc (Adam steps, then L-BFGS
        iterations where the parts are NaN); ``theta_history`` (steps, p) in user units.
    n_adam : number of Adam rows at the top of ``history``.
    restart_losses : (n_restarts,) loss of each restart after Adam (inf when diverged).
    diverged : the retained run hit non-finite losses too often (see ``n_bad``).
    fit_time : seconds, wall clock.
    """

    params: dict
    z: np.ndarray
    space: ParameterSpace
    problem: PINNProblem
    data: PINNData
    variables: Variables
    history: np.ndarray
    theta_history: np.ndarray
    n_adam: int
    restart_losses: np.ndarray
    diverged: bool
    n_bad: int
    fit_time: float
    timings: dict = field(default_factory=dict)
    schedule: Schedule | None = None

    def predict(self, t, x, y=None) -> np.ndarray:
        """u at user-unit times and positions (broadcast together)."""
        xs = (x,) if y is None else (x, y)
        pts = jnp.asarray(self.problem.scales.to_unit(t, *xs))
        return self.problem.scales.u * np.asarray(u_hat_at(self.problem, self.variables, pts,
                                                           jnp.asarray(self.z)))

    def loglik_terms(self) -> np.ndarray:
        """Per-observation log-likelihood of the fitted observations."""
        return np.asarray(loglik_at(self.problem, self.variables, self.data))

    def residual_rms(self) -> float:
        """Root mean square scaled PDE residual at the fixed collocation points."""
        return self.residual_check()[0]

    def residual_rms_heldout(self, n: int = _HELDOUT, seed: int = 12345) -> float:
        """Root mean square scaled PDE residual at ``n`` fresh uniform points (times drawn as
        the collocation times are): much above :meth:`residual_rms`, the network satisfies the
        PDE only at the collocation points."""
        return self.residual_check(n, seed)[1]

    def residual_check(self, n: int = _HELDOUT, seed: int = 12345) -> tuple[float, float]:
        """(:meth:`residual_rms`, :meth:`residual_rms_heldout`) from one compiled evaluation."""
        sch = self.schedule or Schedule()
        pts = uniform_collocation(jax.random.PRNGKey(seed), n, self.data.colloc.shape[1], sch,
                                  self.data.colloc.dtype)
        nc = self.data.colloc.shape[0]
        r = residuals_at(self.problem, self.variables, self.data,
                         jnp.concatenate([self.data.colloc, pts]))
        return (float(jnp.sqrt(jnp.mean(r[:nc] ** 2))), float(jnp.sqrt(jnp.mean(r[nc:] ** 2))))


def parameter_space(model: ReactionDiffusion, likelihood: ObservationModel, *, time_scale: float,
                    u_scale: float, fixed: Mapping | None = None, bounds: Mapping | None = None,
                    cov_sd: Mapping | None = None) -> ParameterSpace:
    """The model's and the observation model's parameters with default bounds (user units)."""
    names = model.param_names() + likelihood.nuisance_names()
    transforms = {**model.transforms(), **likelihood.nuisance_transforms()}
    b = {**model.default_bounds({"time": time_scale, "u": u_scale, "cov": dict(cov_sd or {})}),
         **likelihood.nuisance_bounds()}
    for n, v in dict(bounds or {}).items():
        if n not in names:
            raise ValueError(f"bounds given for {n!r}, which is not a parameter; valid names: "
                             f"{list(names)}.")
        b[n] = tuple(float(x) for x in v)
    return ParameterSpace.build(names, transforms, b, fixed)


def _progress(verbose, total, desc):
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step")


def fit_pinn(model: ReactionDiffusion, obs: Observations, likelihood="gaussian", *,
             fixed: Mapping | None = None, bounds: Mapping | None = None,
             init: Mapping | None = None, covariates=None, random_state: int = 0,
             n_restarts: int = 1, restart_spread: float = 0.5, schedule: Schedule | None = None,
             width: int = 32, depth: int = 3, modes: int = 8, dtype=jnp.float64,
             n_collocation: int = 1024, n_initial: int = 256, n_boundary: int = 128,
             lambda_pde: float = 100.0, lambda_ic: float = 1000.0, lambda_bc: float = 10.0,
             initial: str = "model", hard_ic: bool | str = False, relative_floor: float | None = None,
             heat_rates: str = "mean",
             u_scale: float | None = None, space: ParameterSpace | None = None,
             weights=None, verbose: bool = False) -> PINNFit:
    """Fit theta and the network jointly (see :mod:`physreg.pinn`).

    Arguments
    ---------
    model, obs, likelihood : the model, validated observations (:func:`physreg.data.
        validate_observations`) and the observation model (name or instance).
    fixed : parameters held at given values (user units); bounds : overrides of the defaults.
    init : starting values (user units) overriding :func:`initial_guess`.
    covariates : validated covariates (:func:`physreg.data.validate_covariates`) or None.
    random_state : seed of the collocation points, network weights and restarts.
    n_restarts : independent Adam runs (vmapped: one compiled program), the best one by final
        loss is refined by L-BFGS; ``restart_spread`` is the sd of the log-scale jitter of the
        starting parameters of restarts after the first.
    schedule : :class:`Schedule` (Adam steps, learning rates, penalty ramp, L-BFGS iterations).
    width, depth, modes, dtype, n_collocation, n_initial, n_boundary, lambda_*, initial,
    hard_ic, relative_floor, heat_rates, u_scale : see :func:`physreg.pinn.build_problem`.
    verbose : progress bars.

    Returns
    -------
    PINNFit

    Raises
    ------
    RuntimeError if every restart diverged (non-finite losses).
    """
    t_start = time.perf_counter()
    likelihood = get_observation_model(likelihood)
    if not isinstance(obs, Observations):
        raise TypeError("obs must be validated Observations (physreg.data.validate_observations).")
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}.")
    schedule = Schedule() if schedule is None else schedule
    key = jax.random.PRNGKey(int(random_state))
    k_problem, k_restarts, k_colloc = jax.random.split(key, 3)

    t0 = time_origin(model, obs)
    T = float(obs.time.max() - t0) or 1.0
    cov_sd = {}
    if covariates is not None:
        cov_sd = {k: float(np.nanstd(v.values)) for k, v in covariates.data_vars.items()}
    if u_scale is None:
        keep = obs.time > t0 if isinstance(model.initial, FirstObservation) else slice(None)
        u_scale = default_u_scale(obs.value[keep], likelihood)
    U = float(u_scale)
    net_kw = dict(width=width, depth=depth, modes=modes, dtype=dtype)
    build_kw = dict(covariates=covariates, initial=initial, u_scale=u_scale,
                    n_collocation=n_collocation, n_initial=n_initial, n_boundary=n_boundary,
                    time_power=schedule.time_power, time_margin=schedule.time_margin,
                    lambda_pde=lambda_pde, lambda_ic=lambda_ic,
                    lambda_bc=lambda_bc, hard_ic=hard_ic, relative_floor=relative_floor,
                    heat_rates=heat_rates,
                    **net_kw)
    if space is None:
        space = parameter_space(model, likelihood, time_scale=T, u_scale=U, fixed=fixed,
                                bounds=bounds, cov_sd=cov_sd)
    problem, data, weights0 = build_problem(model, obs, likelihood, space, key=k_problem,
                                            **{**build_kw, "u_scale": U})
    if weights is not None:
        weights0 = weights
    guess = initial_guess(model, obs, likelihood, space, time_scale=T, u_scale=U, init=init)
    z0 = np.asarray(space.pack(guess))

    # restarts: network keys and jittered starting parameters
    keys = jax.random.split(k_restarts, n_restarts)
    rng = np.random.default_rng(int(random_state))
    lo, hi = space.bounds_unconstrained()
    spread = np.where(space.is_log, restart_spread, restart_spread * (hi - lo) / 20.0)
    states = []
    for i in range(n_restarts):
        w = weights0 if i == 0 else make_network(keys[i], model.ndim, **net_kw,
                                                 features=_features(problem))[1]
        zi = z0 if i == 0 else np.clip(z0 + spread * rng.normal(size=z0.shape), lo, hi)
        states.append(init_state(problem, w, zi, data, schedule,
                                 key=jax.random.fold_in(k_colloc, i)))
    ahead = _compile_ahead(problem, states[0], data, schedule)
    bar = _progress(verbose, schedule.n_adam + schedule.n_lbfgs, "PINN fit")
    cb = None if bar is None else (lambda done, s, b=bar: b.update(schedule.chunk))
    t_adam = time.perf_counter()
    if n_restarts == 1:
        state, info = run_adam(problem, states[0], data, schedule, callback=cb)
        finals = np.array([_final_loss(problem, state, data)])
        best = 0
    else:
        batch = stack_trees(states)
        datas = stack_trees([data] * n_restarts)
        bstate, binfo = run_adam(problem, batch, datas, schedule, batched=True, callback=cb)
        finals = np.array([_final_loss(problem, unstack_tree(bstate, i), data)
                           for i in range(n_restarts)])
        finals[np.asarray(bstate.diverged)] = np.inf
        best = int(np.argmin(np.where(np.isfinite(finals), finals, np.inf)))
        state = unstack_tree(bstate, best)
        info = TrainInfo(*(x[best] for x in binfo))
    t_adam = time.perf_counter() - t_adam
    if not np.isfinite(finals[best]):
        raise RuntimeError("Every PINN restart diverged (non-finite loss); lower the learning "
                           "rate (Schedule.lr), check the data, bounds and init.")
    ahead.result()
    t_lbfgs = time.perf_counter()
    # With resampling the fit keeps its initial points for the loss, the residual check and
    # the interval refits. Tried: the last L-BFGS chunk's points instead; the network fits
    # those closely, refits on them absorb any theta and the profiles of 2 of 4 replicates
    # stayed open both ways (studies/results/coverage_pinn_heat_profile_lam300_resample_
    # lastchunk.csv).
    state, info2 = run_lbfgs(problem, state, data, schedule, callback=cb)
    t_lbfgs = time.perf_counter() - t_lbfgs
    if bar is not None:
        bar.close()
    diverged = bool(state.diverged)
    if diverged:
        warnings.warn(f"PINN training hit {int(state.n_bad)} non-finite steps; the fit may be "
                      "unreliable (lower Schedule.lr).", RuntimeWarning, stacklevel=2)
    z = np.asarray(problem.theta(state.variables, data))
    values = space.unpack(jnp.asarray(z))
    names = model.param_names() + likelihood.nuisance_names()
    hist = np.concatenate([history_array(info), history_array(info2)])
    th = np.concatenate([np.asarray(info.theta), np.asarray(info2.theta)])
    return PINNFit(
        params={n: float(values[n]) for n in names}, z=z, space=space, problem=problem,
        data=data, variables=state.variables, history=hist,
        theta_history=np.asarray(space.to_user(jnp.asarray(th))), n_adam=int(info.loss.shape[0]),
        restart_losses=finals, diverged=diverged, n_bad=int(state.n_bad),
        fit_time=time.perf_counter() - t_start,
        timings={"adam": t_adam, "lbfgs": t_lbfgs}, schedule=schedule)


def _compile_ahead(problem, state, data, schedule):
    """While Adam compiles and trains, compile what runs after it: the L-BFGS chunk, the loss
    and the residual check (``PINNFit.residual_check``'s default points). A first 1-D fit on 2
    cores: 80 s instead of 88 s (``benchmarks/bench_pinn_fit_time.py``; XLA already compiles
    each program on about 1.6 cores, so the overlap is partial)."""
    jobs = []
    if schedule.n_lbfgs > 0:
        jobs.append((("lbfgs", min(schedule.chunk, schedule.n_lbfgs)),
                     (problem, state, data, schedule)))
    jobs.append((loss_value, (problem, state.variables, data)))
    n, dim = data.colloc.shape
    pts = jnp.zeros((n + _HELDOUT, dim), data.colloc.dtype)
    jobs.append((residuals_at, (problem, state.variables, data, pts)))
    return compile_ahead(jobs)


def _features(problem: PINNProblem) -> str:
    from ._network import BoxFeatures

    return "box" if isinstance(problem.network.network.input_transform, BoxFeatures) else "cosine"


def _final_loss(problem, state, data) -> float:
    loss = float(loss_value(problem, state.variables, data))
    return loss if np.isfinite(loss) and not bool(state.diverged) else np.inf
